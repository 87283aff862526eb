package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// mixed makes 500 rows a year old: 400 in the four final statuses, each
// with an attempt and a cached record, and pending, scheduled and
// in-flight ones that must survive however old they are. It returns the
// finished ids and the survivors.
func mixed(t *testing.T, pool *pgxpool.Pool, c *cache.Cache) (finished, kept []string) {
	t.Helper()
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 500)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	statuses := []string{"sent", "failed", "expired", "canceled"}
	for i, st := range statuses {
		part := ids[i*100 : (i+1)*100]
		exec(`UPDATE messages SET status = $2, sent_at = CASE WHEN $2 = 'sent' THEN now() END WHERE id = ANY($1)`, part, st)
		finished = append(finished, part...)
	}
	// The trigger stamped finished_at; move it a year back, as time would.
	exec(`UPDATE messages SET finished_at = now() - interval '365 days', created_at = now() - interval '366 days' WHERE id = ANY($1)`, finished)
	exec(`INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, outcome, error)
SELECT id, 1, now() - interval '365 days', 5, 'failed', 'HTTP 400' FROM unnest($1::text[]) AS id`, ids)
	rest := ids[400:]
	exec(`UPDATE messages SET created_at = now() - interval '366 days' WHERE id = ANY($1)`, rest)
	exec(`UPDATE messages SET send_at = now() + interval '1 day' WHERE id = ANY($1)`, rest[:30])
	exec(`UPDATE messages SET status = 'sending', attempts = 1, lease_expires_at = now() + interval '1 minute' WHERE id = ANY($1)`, rest[30:60])
	// A failed message an operator retried is pending again: kept.
	exec(`UPDATE messages SET status = 'failed' WHERE id = ANY($1)`, rest[60:70])
	exec(`UPDATE messages SET status = 'pending', finished_at = now() - interval '365 days' WHERE id = ANY($1)`, rest[60:70])
	recs := make([]cache.Sent, len(ids))
	for i, id := range ids {
		recs[i] = cache.Sent{ID: id, MessageID: "remote-" + id, SentAt: time.Now()}
	}
	if err := c.PutSent(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return finished, rest
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A purge deletes finished messages with their attempts and cached
// records, batch by batch, and never a pending, scheduled or in-flight
// one; a second process is kept out by the lock while a batch runs.
func TestPurgeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	c := cache.New(rdb, time.Hour)
	finished, kept := mixed(t, pool, c)
	t.Cleanup(func() {
		if err := c.Delete(context.Background(), append(finished, kept...)...); err != nil {
			t.Error(err)
		}
	})
	drop := func(ctx context.Context, ids []string) error { return c.Delete(ctx, ids...) }

	// While one batch holds the lock, another process is refused.
	var inner error
	ids, err := st.PurgeBatch(ctx, 2*time.Second, 150, func(ctx context.Context, ids []string) error {
		_, inner = st.PurgeBatch(ctx, 2*time.Second, 150, nil)
		return drop(ctx, ids)
	})
	if err != nil || len(ids) != 150 {
		t.Fatalf("first batch: %d ids, %v", len(ids), err)
	}
	if !errors.Is(inner, store.ErrPurgeBusy) {
		t.Fatalf("a purge beside a running batch: %v, want ErrPurgeBusy", inner)
	}
	total := len(ids)
	for {
		ids, err := st.PurgeBatch(ctx, 2*time.Second, 150, drop)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 150 {
			t.Fatalf("a batch of %d, limit 150", len(ids))
		}
		total += len(ids)
		if len(ids) < 150 {
			break
		}
	}
	if total != len(finished) {
		t.Fatalf("purged %d, want the %d finished", total, len(finished))
	}
	if n := count(t, pool, `SELECT count(*) FROM messages WHERE id = ANY($1)`, finished); n != 0 {
		t.Fatalf("%d finished messages left", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM message_attempts WHERE message_id = ANY($1)`, finished); n != 0 {
		t.Fatalf("%d attempts of purged messages left", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM messages WHERE id = ANY($1)`, kept); n != len(kept) {
		t.Fatalf("%d of %d pending, scheduled and in-flight messages left", n, len(kept))
	}
	if n := count(t, pool, `SELECT count(*) FROM message_attempts WHERE message_id = ANY($1)`, kept); n != len(kept) {
		t.Fatalf("%d of %d attempts of kept messages left", n, len(kept))
	}
	for _, id := range finished {
		if _, err := c.GetSent(ctx, id); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("cached record of purged %s: %v", id, err)
		}
	}
	for _, id := range kept {
		if _, err := c.GetSent(ctx, id); err != nil {
			t.Fatalf("cached record of kept %s: %v", id, err)
		}
	}
}

// A failing cache delete deletes nothing: the rows stay for the next run.
func TestPurgeBatchKeepsRowsWhenCacheFails(t *testing.T) {
	t.Parallel()
	_, pool, st := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 3)
	if _, err := pool.Exec(context.Background(), `UPDATE messages SET status = 'canceled' WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
	_, err := st.PurgeBatch(context.Background(), 0, 10, func(context.Context, []string) error { return errors.New("redis down") })
	if err == nil {
		t.Fatal("purge succeeded with a failing cache delete")
	}
	if n := count(t, pool, `SELECT count(*) FROM messages WHERE id = ANY($1)`, ids); n != 3 {
		t.Fatalf("%d of 3 rows left after a failed purge", n)
	}
}

// Every way a row becomes final stamps finished_at, and only those: the
// purge's clock.
func TestFinishedAtStamped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool, st := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 4)
	stamped := func(id string) bool {
		t.Helper()
		return count(t, pool, `SELECT count(*) FROM messages WHERE id = $1 AND finished_at IS NOT NULL`, id) == 1
	}
	if slices.ContainsFunc(ids, stamped) {
		t.Fatal("a pending row has finished_at")
	}
	if _, err := st.Cancel(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ReserveTick(ctx, 10, 0, 3)
	if err != nil || !claimed {
		t.Fatalf("reserve tick: %v %v", claimed, err)
	}
	cs, err := st.Claim(ctx, 10, time.Minute, 3)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %d %v", len(cs), err)
	}
	if slices.ContainsFunc(ids[1:], stamped) {
		t.Fatal("a claimed row has finished_at")
	}
	outs := []store.Outcome{
		{Claimed: cs[0], Status: messaging.StatusSent, SentAt: time.Now(), RemoteID: "r"},
		{Claimed: cs[1], Status: messaging.StatusFailed, Error: "HTTP 400"},
		{Claimed: cs[2], Status: messaging.StatusPending, NextAt: time.Now().Add(time.Hour), Error: "HTTP 500"},
	}
	if _, err := st.RecordOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want bool
	}{{ids[0], true}, {cs[0].ID, true}, {cs[1].ID, true}, {cs[2].ID, false}} {
		if stamped(tt.id) != tt.want {
			t.Errorf("%s: finished_at set %v, want %v", tt.id, !tt.want, tt.want)
		}
	}
}

// The purge's run is stored for the api.
func TestRecordPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, st := testenv.MigratedStore(t)
	r, err := st.Retention(ctx)
	if err != nil || r.LastRunAt != nil || r.PurgedTotal != 0 {
		t.Fatalf("fresh state: %+v %v", r, err)
	}
	for _, n := range []int64{5, 7} {
		if err := st.RecordPurge(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	r, err = st.Retention(ctx)
	if err != nil || r.LastRunAt == nil || r.LastPurged != 7 || r.PurgedTotal != 12 {
		t.Fatalf("after two runs: %+v %v", r, err)
	}
}
