package faults_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/sink"
)

// row is one scenario's line in the report.
type row struct {
	Scenario                    string
	Messages, Delivered, Failed int
	Repeats, Lost               int
	Took                        time.Duration
	Note                        string
}

var (
	reportMu sync.Mutex
	report   []row
)

func record(r row) {
	reportMu.Lock()
	defer reportMu.Unlock()
	report = append(report, r)
}

// printReport writes the table `make faults` shows.
func printReport() {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(report) == 0 {
		return
	}
	sort.Slice(report, func(i, j int) bool { return report[i].Scenario < report[j].Scenario })
	var b strings.Builder
	b.WriteString("\n| scenario | messages | delivered | failed (deliberate) | repeats | lost | time | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range report {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s |\n",
			r.Scenario, r.Messages, r.Delivered, r.Failed, r.Repeats, r.Lost, r.Took.Round(100*time.Millisecond), r.Note)
	}
	_, _ = fmt.Fprint(os.Stdout, b.String())
}

// checkLedger is the check every scenario ends with. wantFailed lists ids
// that were meant to fail; every other row must be sent. It fails t on any
// loss and returns the scenario's counts.
func checkLedger(t *testing.T, pool *pgxpool.Pool, s *sink.Sink, wantFailed map[string]bool) row {
	t.Helper()
	type dbRow struct{ status, content string }
	rows, err := pool.Query(context.Background(), `SELECT id, status, content FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]dbRow{}
	idByContent := map[string]string{}
	for rows.Next() {
		var id string
		var r dbRow
		if err := rows.Scan(&id, &r.status, &r.content); err != nil {
			t.Fatal(err)
		}
		byID[id] = r
		idByContent[r.content] = id
	}
	rows.Close()

	accepted := map[string]int{}
	for _, d := range s.Accepted() {
		accepted[d.IdempotencyKey]++
		if id := idByContent[d.Content]; id != d.IdempotencyKey {
			t.Errorf("content of %s arrived with Idempotency-Key %q", id, d.IdempotencyKey)
		}
	}
	out := row{Messages: len(byID)}
	for id, r := range byID {
		switch {
		case r.status == "sent" && accepted[id] > 0:
			out.Delivered++
			out.Repeats += accepted[id] - 1
		case r.status == "failed" && wantFailed[id]:
			out.Failed++
		default:
			out.Lost++
			if out.Lost <= 5 {
				t.Errorf("lost: %s is %s after %d accepted deliveries (deliberate failure: %v)", id, r.status, accepted[id], wantFailed[id])
			}
		}
	}
	if out.Lost > 0 {
		t.Errorf("%d of %d messages lost", out.Lost, out.Messages)
	}
	return out
}
