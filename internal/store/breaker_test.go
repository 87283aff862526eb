package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// The write that closes the breaker after an outage makes due at once the
// messages whose last call failed retryably since the outage began, and
// nothing else: not a retry scheduled before the outage, not a scheduled
// message (send_at stays), not a row that is no longer pending.
func TestClosingBreakerMakesHeldBackRetriesDue(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 6)
	held, before, failed, scheduled, twice, due := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
	attempt := func(id string, n int, startedAgo time.Duration, outcome string) {
		t.Helper()
		exec(t, pool, `INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, outcome)
VALUES ($1, $2, now() - $3::float8 * interval '1 second', 5, $4)`, id, n, startedAgo.Seconds(), outcome)
	}
	// The outage began 60 s ago.
	since := time.Now().Add(-time.Minute)
	exec(t, pool, `UPDATE messages SET attempts = 1, next_attempt_at = now() + interval '2 minutes', last_error = 'webhook answered 500'
WHERE id = ANY($1)`, []string{held, before, failed, twice, due})
	attempt(held, 1, 30*time.Second, "retry")
	attempt(before, 1, 5*time.Minute, "retry")
	attempt(failed, 1, 30*time.Second, "retry")
	exec(t, pool, `UPDATE messages SET status = 'failed' WHERE id = $1`, failed)
	// A retry during the outage, and an earlier one before it: the last
	// call counts.
	attempt(twice, 1, 5*time.Minute, "retry")
	attempt(twice, 2, 20*time.Second, "retry")
	exec(t, pool, `UPDATE messages SET attempts = 2 WHERE id = $1`, twice)
	exec(t, pool, `UPDATE messages SET send_at = now() + interval '1 hour', next_attempt_at = now() + interval '1 hour', attempts = 0 WHERE id = $1`, scheduled)
	attempt(due, 1, 30*time.Second, "retry")
	exec(t, pool, `UPDATE messages SET next_attempt_at = now() - interval '1 second' WHERE id = $1`, due)

	wantSendAt := get(t, s, scheduled).SendAt
	row, n, err := s.UpdateBreaker(ctx, func(cur store.BreakerRow, _ time.Time) store.BreakerChange {
		return store.BreakerChange{Row: cur, Write: true, DueSince: since}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || row.State != "closed" {
		t.Fatalf("made %d due (row %+v), want 2", n, row)
	}
	var dbNow time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{held, twice} {
		if m := get(t, s, id); m.Status != messaging.StatusPending || m.NextAttemptAt.After(dbNow) {
			t.Errorf("%s: %s, next attempt at %s; want due now", id, m.Status, m.NextAttemptAt)
		}
	}
	if m := get(t, s, before); m.NextAttemptAt.Before(dbNow.Add(time.Minute)) {
		t.Errorf("a retry from before the outage was made due: %s", m.NextAttemptAt)
	}
	if m := get(t, s, failed); m.Status != messaging.StatusFailed {
		t.Errorf("failed row changed: %+v", m)
	}
	if m := get(t, s, scheduled); m.NextAttemptAt.Before(dbNow.Add(50*time.Minute)) || m.SendAt == nil || !m.SendAt.Equal(*wantSendAt) {
		t.Errorf("scheduled row changed: %+v", m)
	}

	// A write that ends no outage makes nothing due.
	exec(t, pool, `UPDATE messages SET next_attempt_at = now() + interval '2 minutes' WHERE id = $1`, held)
	if _, n, err := s.UpdateBreaker(ctx, func(cur store.BreakerRow, _ time.Time) store.BreakerChange {
		return store.BreakerChange{Row: cur, Write: true}
	}); err != nil || n != 0 {
		t.Fatalf("a plain write made %d due (%v)", n, err)
	}
	if m := get(t, s, held); !m.NextAttemptAt.After(dbNow) {
		t.Fatalf("a plain write made %s due", held)
	}
}
