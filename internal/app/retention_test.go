package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// With RETENTION_PERIOD=2s and RETENTION_INTERVAL=1s the scheduler purges
// finished messages of 500 mixed ones, with their attempts and cached
// records, and leaves the scheduled, pending and in-flight ones alone.
func TestRetentionPurgeInScheduler(t *testing.T) {
	s := newSystem(t, "RETENTION_PERIOD=2s", "RETENTION_INTERVAL=1s", "RETENTION_BATCH=100")
	ctx := context.Background()
	pool := s.deps.Pool
	ids := testenv.InsertMessages(t, pool, 500)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Sending stays off, so no worker or tick changes the rows.
	exec(`UPDATE dispatch_control SET running = false`)
	finished := ids[:400]
	for i, st := range []string{"sent", "failed", "expired", "canceled"} {
		exec(`UPDATE messages SET status = $2, sent_at = CASE WHEN $2 = 'sent' THEN now() END WHERE id = ANY($1)`, ids[i*100:(i+1)*100], st)
	}
	scheduled, pending, inFlight := ids[400], ids[401], ids[402]
	exec(`UPDATE messages SET send_at = now() + interval '1 hour' WHERE id = $1`, scheduled)
	exec(`UPDATE messages SET status = 'sending', attempts = 1, lease_expires_at = now() + interval '1 hour' WHERE id = $1`, inFlight)
	exec(`INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, outcome)
SELECT id, 1, now(), 5, 'failed' FROM unnest($1::text[]) AS id`, ids)
	c := cache.New(s.deps.Redis, time.Hour)
	recs := make([]cache.Sent, len(ids))
	for i, id := range ids {
		recs[i] = cache.Sent{ID: id, MessageID: "remote-" + id, SentAt: time.Now()}
	}
	if err := c.PutSent(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), ids...); err != nil {
			t.Error(err)
		}
	})
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM messages WHERE id = ANY($1)`, finished); n != 400 {
		t.Fatalf("%d finished messages before the purge, want 400", n)
	}
	s.scheduler()
	testenv.Eventually(t, 15*time.Second, "the finished messages purged", func() bool {
		return count(`SELECT count(*) FROM messages WHERE id = ANY($1)`, finished) == 0
	})
	if n := count(`SELECT count(*) FROM message_attempts WHERE message_id = ANY($1)`, finished); n != 0 {
		t.Fatalf("%d attempts of purged messages left", n)
	}
	for _, id := range finished {
		if _, err := c.GetSent(ctx, id); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("cached record of purged %s: %v", id, err)
		}
	}
	// The 100 untouched pending rows, the scheduled and the in-flight one
	// all stay, with their attempts and records, however old.
	if n := count(`SELECT count(*) FROM messages WHERE id = ANY($1)`, ids[400:]); n != 100 {
		t.Fatalf("%d of 100 unfinished messages left", n)
	}
	if n := count(`SELECT count(*) FROM message_attempts WHERE message_id = ANY($1)`, ids[400:]); n != 100 {
		t.Fatalf("%d of 100 attempts of unfinished messages left", n)
	}
	for _, id := range []string{scheduled, pending, inFlight} {
		if _, err := c.GetSent(ctx, id); err != nil {
			t.Fatalf("cached record of %s: %v", id, err)
		}
	}
	// The run records its count after its last batch committed, so the
	// rows may be gone a moment before the count is written.
	testenv.Eventually(t, 5*time.Second, "the purge's count recorded", func() bool {
		r, err := s.deps.Store.Retention(ctx)
		if err != nil {
			t.Fatalf("retention state: %v", err)
		}
		return r.LastRunAt != nil && r.PurgedTotal == 400
	})
}
