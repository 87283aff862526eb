package faults_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
)

// row is one scenario's line in the report.
type row struct {
	Scenario string
	e2e.Ledger
	Took time.Duration
	Note string
}

var (
	reportMu sync.Mutex
	reported []row
)

func record(r row) {
	reportMu.Lock()
	defer reportMu.Unlock()
	reported = append(reported, r)
}

// printReport writes the table `make faults` shows.
func printReport() {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(reported) == 0 {
		return
	}
	sort.Slice(reported, func(i, j int) bool { return reported[i].Scenario < reported[j].Scenario })
	var b strings.Builder
	b.WriteString("\n| scenario | messages | delivered | failed (deliberate) | repeats | lost | time | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range reported {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s |\n",
			r.Scenario, r.Messages, r.Delivered, r.Failed, r.Repeats, r.Lost, r.Took.Round(100*time.Millisecond), r.Note)
	}
	_, _ = fmt.Fprint(os.Stdout, b.String())
}

// ledgerRow checks the ledger (every row not in wantFailed must be sent)
// and starts the scenario's row with its counts.
func ledgerRow(t *testing.T, pool *pgxpool.Pool, s *sink.Sink, wantFailed map[string]bool) row {
	t.Helper()
	return row{Ledger: e2e.CheckLedger(t, pool, s, wantFailed)}
}
