package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/sink"
)

// Ledger is what a run delivered, row by row of the messages table.
type Ledger struct {
	Messages  int // rows in the table
	Delivered int // sent and accepted by the receiver at least once
	Failed    int // failed, and meant to
	Repeats   int // acceptances beyond the first
	Lost      int // neither delivered nor a deliberate failure
}

// CheckLedger is the check every system test ends with. wantFailed lists
// the ids that were meant to fail (may be nil); every other row must be
// sent and accepted by s, and a message accepted more than once must have
// carried its own id as Idempotency-Key every time. It fails t on any loss
// or query error and returns the counts.
func CheckLedger(t testing.TB, pool *pgxpool.Pool, s *sink.Sink, wantFailed map[string]bool) Ledger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT id, status, content FROM messages`)
	if err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	status := map[string]string{}
	idByContent := map[string]string{}
	for rows.Next() {
		var id, st, content string
		if err := rows.Scan(&id, &st, &content); err != nil {
			rows.Close()
			t.Fatalf("read the ledger: %v", err)
		}
		status[id], idByContent[content] = st, id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	accepted := map[string]int{}
	for _, d := range s.Accepted() {
		accepted[d.IdempotencyKey]++
		if id := idByContent[d.Content]; id != d.IdempotencyKey {
			t.Errorf("content of %s arrived with Idempotency-Key %q", id, d.IdempotencyKey)
		}
	}
	l := Ledger{Messages: len(status)}
	for id, st := range status {
		switch {
		case st == "sent" && accepted[id] > 0:
			l.Delivered++
			l.Repeats += accepted[id] - 1
		case st == "failed" && wantFailed[id]:
			l.Failed++
		default:
			l.Lost++
			if l.Lost <= 5 {
				t.Errorf("lost: %s is %s after %d accepted deliveries (deliberate failure: %v)", id, st, accepted[id], wantFailed[id])
			}
		}
	}
	if l.Lost > 0 {
		t.Errorf("%d of %d messages lost", l.Lost, l.Messages)
	}
	return l
}
