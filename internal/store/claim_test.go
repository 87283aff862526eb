package store_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// maxAttempts is the MAX_ATTEMPTS the tests claim with.
const maxAttempts = 3

// claim runs Claim and fails the test on an error, so that a failing call
// cannot pass for "claimed nothing".
func claim(t *testing.T, s *store.Store, n int, lease time.Duration) []store.Claimed {
	t.Helper()
	got, err := s.Claim(context.Background(), n, lease, maxAttempts)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return got
}

func reserveTick(t *testing.T, s *store.Store, budget int, minGap time.Duration, maxAttempts int) bool {
	t.Helper()
	ok, err := s.ReserveTick(context.Background(), budget, minGap, maxAttempts)
	if err != nil {
		t.Fatalf("reserve tick: %v", err)
	}
	return ok
}

func get(t *testing.T, s *store.Store, id string) store.Message {
	t.Helper()
	m, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return m
}

func setBudget(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	exec(t, pool, `UPDATE dispatch_control SET budget = $1`, n)
}

func exec(t *testing.T, pool *pgxpool.Pool, q string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func claimIDs(t *testing.T, s *store.Store, n int) []string {
	t.Helper()
	got, err := s.Claim(context.Background(), n, time.Minute, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, c := range got {
		ids[i] = c.ID
	}
	return ids
}

func TestClaimOldestFirstWithinBudget(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 10)
	setBudget(t, pool, 3)

	got, err := s.Claim(ctx, 5, time.Minute, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("claimed %d, want the budget of 3", len(got))
	}
	for i, c := range got {
		if c.ID != ids[i] || c.Attempt != 1 {
			t.Errorf("claim %d = %s attempt %d, want %s attempt 1", i, c.ID, c.Attempt, ids[i])
		}
	}
	if more := claim(t, s, 5, time.Minute); len(more) != 0 {
		t.Fatalf("claimed %d beyond the budget", len(more))
	}

	// Stopped: nothing is claimed whatever the budget.
	setBudget(t, pool, 100)
	if _, err := s.SetRunning(ctx, false, ""); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, 5, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %d while stopped", len(got))
	}
}

func TestReserveTickSpacing(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ok, err := s.ReserveTick(ctx, 2, time.Hour, 5)
	if err != nil || !ok {
		t.Fatalf("first tick: %v %v", ok, err)
	}
	if reserveTick(t, s, 2, time.Hour, 5) {
		t.Fatal("a second tick within the gap refilled the budget")
	}
	if !reserveTick(t, s, 2, 0, 5) {
		t.Fatal("a tick after the gap did not refill the budget")
	}
	if _, err := s.SetRunning(ctx, false, "test"); err != nil {
		t.Fatal(err)
	}
	if reserveTick(t, s, 2, 0, 5) {
		t.Fatal("a tick refilled the budget while stopped")
	}
	_ = pool
}

func TestLeaseExpiryAndFencing(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	testenv.InsertMessages(t, pool, 1)
	setBudget(t, pool, 10)

	first, err := s.Claim(ctx, 1, time.Millisecond, maxAttempts)
	if err != nil || len(first) != 1 {
		t.Fatalf("claim: %v %v", first, err)
	}
	// The worker died; after its lease the row is due again.
	testenv.Eventually(t, 5*time.Second, "lease to expire", func() bool {
		again, err := s.Claim(ctx, 1, time.Minute, maxAttempts)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) == 1 {
			if again[0].ID != first[0].ID || again[0].Attempt != 2 {
				t.Fatalf("reclaimed %+v", again[0])
			}
			first = append(first, again[0])
			return true
		}
		return false
	})
	// The first worker's late outcome must not overwrite the second claim.
	sent := func(c store.Claimed, remote string) store.Outcome {
		return store.Outcome{Claimed: c, Status: messaging.StatusSent, RemoteID: remote, SentAt: time.Now()}
	}
	if done, err := s.RecordOutcomes(ctx, []store.Outcome{sent(first[0], "late")}); err != nil || done[first[0].ID] {
		t.Fatalf("stale claim recorded: %v err=%v", done, err)
	}
	if done, err := s.RecordOutcomes(ctx, []store.Outcome{sent(first[1], "r-1")}); err != nil || !done[first[1].ID] {
		t.Fatalf("current claim not recorded: %v err=%v", done, err)
	}
	m, err := s.Get(ctx, first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != messaging.StatusSent || m.RemoteMessageID != "r-1" || m.Attempts != 2 {
		t.Fatalf("got %+v", m)
	}
	var isSent bool
	if err := pool.QueryRow(ctx, `SELECT is_sent FROM messages WHERE id = $1`, m.ID).Scan(&isSent); err != nil || !isSent {
		t.Fatalf("is_sent = %v (%v), want true", isSent, err)
	}
}

func TestReleaseHandsBackAtOnce(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	testenv.InsertMessages(t, pool, 3)
	setBudget(t, pool, 10)
	claimed, err := s.Claim(ctx, 3, time.Hour, maxAttempts)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %v %v", len(claimed), err)
	}
	n, err := s.Release(ctx, claimed[1:])
	if err != nil || n != 2 {
		t.Fatalf("release: %d %v", n, err)
	}
	again, err := s.Claim(ctx, 3, time.Hour, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].Attempt != 1 {
		t.Fatalf("released rows were not due at once with the attempt uncounted: %+v", again)
	}
}

// A hand-back gives the budget back to the tick that spent it, and only
// to that tick: the rows may still go out in it, and no tick sends more
// than its budget.
func TestReleaseRefundsTheCurrentTick(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	testenv.InsertMessages(t, pool, 5)
	budget := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT budget FROM dispatch_control WHERE id = 1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if fresh, err := s.ReserveTick(ctx, 3, 0, maxAttempts); err != nil || !fresh {
		t.Fatalf("reserve: %v %v", fresh, err)
	}
	claimed, err := s.Claim(ctx, 3, time.Hour, maxAttempts)
	if err != nil || len(claimed) != 3 || budget() != 0 {
		t.Fatalf("claim: %d rows, budget %d, %v", len(claimed), budget(), err)
	}
	if n, err := s.Release(ctx, claimed[2:]); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	if b := budget(); b != 1 {
		t.Fatalf("budget after handing back 1 row of this tick: %d, want 1", b)
	}
	// A new tick: the old tick's rows refund nothing.
	exec(t, pool, `UPDATE dispatch_control SET last_tick_at = last_tick_at - interval '1 hour'`)
	if fresh, err := s.ReserveTick(ctx, 3, 0, maxAttempts); err != nil || !fresh {
		t.Fatalf("second reserve: %v %v", fresh, err)
	}
	if n, err := s.Release(ctx, claimed[:2]); err != nil || n != 2 {
		t.Fatalf("release: %d %v", n, err)
	}
	if b := budget(); b != 3 {
		t.Fatalf("budget after handing back rows of an earlier tick: %d, want 3", b)
	}
}

func TestExpiredLeaseOnLastAttemptFails(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 1)
	exec(t, pool, `UPDATE messages SET status = 'sending', attempts = 3, lease_expires_at = now() - interval '1 second'`)
	if _, err := s.ReserveTick(ctx, 5, 0, 3); err != nil {
		t.Fatal(err)
	}
	m, err := s.Get(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != messaging.StatusFailed || !strings.Contains(m.LastError, "lease expired") {
		t.Fatalf("got %+v", m)
	}
}

// The claim itself never re-takes a row whose lease ran out on its last
// allowed attempt: it fails it, with the cleanup's reason, in the same
// statement; a row with attempts left is taken again.
func TestClaimFailsExpiredLeaseOnLastAttempt(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 3)
	exec(t, pool, `UPDATE messages SET status = 'sending', attempts = $2, lease_expires_at = now() - interval '1 second' WHERE id = $1`, ids[0], maxAttempts)
	exec(t, pool, `UPDATE messages SET status = 'sending', attempts = $2, lease_expires_at = now() - interval '1 second' WHERE id = $1`, ids[1], maxAttempts-1)
	// In flight on its last attempt, lease still running: left alone.
	exec(t, pool, `UPDATE messages SET status = 'sending', attempts = $2, lease_expires_at = now() + interval '1 hour' WHERE id = $1`, ids[2], maxAttempts)
	setBudget(t, pool, 10)
	got := claim(t, s, 10, time.Minute)
	if len(got) != 1 || got[0].ID != ids[1] || got[0].Attempt != maxAttempts {
		t.Fatalf("claimed %+v, want only %s on attempt %d", got, ids[1], maxAttempts)
	}
	if m := get(t, s, ids[0]); m.Status != messaging.StatusFailed || m.Attempts != maxAttempts ||
		m.LastError != "lease expired on the last attempt: the worker stopped during delivery" {
		t.Fatalf("exhausted row %+v, want failed with the cleanup's reason", m)
	}
	if m := get(t, s, ids[2]); m.Status != messaging.StatusSending || m.Attempts != maxAttempts {
		t.Fatalf("row in flight %+v, want untouched", m)
	}
	var budget int
	if err := pool.QueryRow(context.Background(), `SELECT budget FROM dispatch_control`).Scan(&budget); err != nil {
		t.Fatal(err)
	}
	if budget != 9 {
		t.Fatalf("budget %d after one claimed row, want 9: failing a row spends none", budget)
	}
	if again := claim(t, s, 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed %+v after the exhausted row was failed", again)
	}
}

// The claim must never walk sent rows nor the whole backlog: with the partial
// index the plan reads only the pending and sending rows it needs, however
// much history and backlog the table holds.
func TestClaimPlanUsesPartialIndex(t *testing.T) {
	t.Parallel()
	_, pool, _ := testenv.MigratedStore(t)
	ctx := context.Background()
	exec(t, pool, `
INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at)
SELECT 'sent-' || g, 'x', '+905551111111', 'sent', true, now() FROM generate_series(1, 20000) g;
ANALYZE messages`)
	// A large backlog too: a join-shaped update once made the planner scan
	// the whole table here.
	exec(t, pool, `
INSERT INTO messages (id, content, phone_number)
SELECT 'pending-' || g, 'x', '+905551111111' FROM generate_series(1, 50000) g;
ANALYZE messages`)
	setBudget(t, pool, 5)
	rows, err := pool.Query(ctx, "EXPLAIN "+store.ClaimSQL, 32, 60.0, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "messages_claim_priority_idx") || strings.Contains(text, "Seq Scan on messages") {
		t.Fatalf("claim plan does not use the partial index:\n%s", text)
	}
}

// The batch statements must stay linear in the batch whatever the
// statistics say. The worst case for the planner: statistics taken while
// nothing was in flight (so "status = 'sending'" looks like one row), a
// batch parameter it guesses at 10 rows, and in truth 2,000 rows in flight
// and a batch of 1,000. Both plan kinds a prepared statement can get are
// run (in a transaction rolled back), and no join may compare more pairs
// than the batch has rows: a nested loop of rows in flight against the
// batch once made each record of 1,000 outcomes take 0.8 s.
func TestBatchPlansAreLinear(t *testing.T) {
	t.Parallel()
	_, pool, _ := testenv.MigratedStore(t)
	const batch = 1000
	exec(t, pool, `
INSERT INTO messages (id, content, phone_number)
SELECT 'm-' || g, 'x', '+905551111111' FROM generate_series(1, 20000) g;
ANALYZE messages`)
	exec(t, pool, `
UPDATE messages SET status = 'sending', attempts = 1, lease_expires_at = now() + interval '1 minute'
WHERE id IN (SELECT 'm-' || g FROM generate_series(1, 2000) g)`)
	ids := make([]string, batch)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"m-%d"`, 2*i+1) // every other row in flight
	}
	idArray := "'{" + strings.Join(ids, ",") + "}'"
	fill := func(v string) string { return fmt.Sprintf("array_fill(%s, ARRAY[%d])", v, batch) }
	statements := []struct {
		name, sql, args string
	}{
		{"record", store.RecordSQL, strings.Join([]string{idArray, fill("1"), fill("'sent'::text"), fill("now()"),
			fill("'r'::text"), fill("now()"), fill("''::text"), fill("now()"), fill("1"), fill("200"), fill("'sent'::text"),
			fill("'p'::text"), fill("''::text")}, ", ")},
		{"release", store.ReleaseSQL, idArray + ", " + fill("1") + ", " + fill("now()") + ", " + fill("NULL::timestamptz")},
	}
	removed := regexp.MustCompile(`Rows Removed by Join Filter: (\d+)`)
	for _, st := range statements {
		for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
			plan := explainPrepared(t, pool, mode, st.sql, st.args)
			for _, m := range removed.FindAllStringSubmatch(plan, -1) {
				if n, err := strconv.Atoi(m[1]); err != nil || n > batch {
					t.Errorf("%s, %s: a join compared %s pairs for a batch of %d:\n%s", st.name, mode, m[1], batch, plan)
				}
			}
		}
	}
}

// explainPrepared prepares sql, runs it once under plan_cache_mode mode
// with args (SQL expressions) inside a transaction that it rolls back, and
// returns EXPLAIN ANALYZE's plan.
func explainPrepared(t *testing.T, pool *pgxpool.Pool, mode, sql, args string) string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
	}()
	for _, q := range []string{"SET LOCAL plan_cache_mode = " + mode, "PREPARE plan_under_test AS " + sql} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE plan_under_test("+args+")")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DEALLOCATE plan_under_test"); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// Priority first, then age; a future send_at set directly by another
// system holds a row back even though next_attempt_at was defaulted.
func TestClaimOrderAndSchedule(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 6)
	exec(t, pool, `UPDATE messages SET priority = 9 WHERE id = $1`, ids[4])
	exec(t, pool, `UPDATE messages SET priority = 5 WHERE id = $1`, ids[5])
	exec(t, pool, `UPDATE messages SET send_at = now() + interval '1 hour' WHERE id = $1`, ids[0])
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, send_at, priority)
        VALUES ('future-direct', 'x', '+905551111111', now() + interval '1 hour', 9),
               ('past-direct', 'x', '+905551111111', now() - interval '1 hour', 0)`)
	setBudget(t, pool, 100)
	got := claimIDs(t, s, 100)
	want := []string{ids[4], ids[5], ids[1], ids[2], ids[3], "past-direct"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	// Once send_at passes the row is due.
	exec(t, pool, `UPDATE messages SET send_at = now() - interval '1 second' WHERE id IN ($1, 'future-direct')`, ids[0])
	if got := claimIDs(t, s, 100); strings.Join(got, ",") != "future-direct,"+ids[0] {
		t.Fatalf("after send_at claimed %v", got)
	}
}

// An expired row reached by a claim becomes 'expired' without a call and
// without spending budget, whether it was new or waiting for a retry.
func TestClaimExpires(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 4)
	exec(t, pool, `UPDATE messages SET expires_at = now() - interval '1 second' WHERE id = ANY($1)`, ids[:2])
	exec(t, pool, `UPDATE messages SET attempts = 2, last_error = 'webhook answered 503', expires_at = now() - interval '1 second' WHERE id = $1`, ids[1])
	exec(t, pool, `UPDATE messages SET expires_at = now() + interval '1 hour' WHERE id = $1`, ids[2])
	setBudget(t, pool, 2)
	got := claimIDs(t, s, 10)
	if strings.Join(got, ",") != ids[2]+","+ids[3] {
		t.Fatalf("claimed %v, want the two live rows within a budget of 2", got)
	}
	for _, id := range ids[:2] {
		m, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != messaging.StatusExpired || !strings.Contains(m.LastError, "expired") {
			t.Fatalf("expired row %+v", m)
		}
	}
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT attempts FROM messages WHERE id = $1`, ids[0]).Scan(&attempts); err != nil || attempts != 0 {
		t.Fatalf("expiry counted an attempt: %d %v", attempts, err)
	}
}

// The extended claim keeps its plan: the priority-ordered partial index
// for the due rows and the expiry index for expiry, never a scan of the
// table, with a large history, a large backlog, scheduled and expiring
// rows.
func TestClaimPlanWithLifecycleRows(t *testing.T) {
	t.Parallel()
	_, pool, _ := testenv.MigratedStore(t)
	exec(t, pool, `
INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at)
SELECT 'sent-' || g, 'x', '+905551111111', 'sent', true, now() FROM generate_series(1, 20000) g;
INSERT INTO messages (id, content, phone_number, priority)
SELECT 'pending-' || g, 'x', '+905551111111', g % 10 FROM generate_series(1, 30000) g;
INSERT INTO messages (id, content, phone_number, send_at, expires_at)
SELECT 'sched-' || g, 'x', '+905551111111', now() + interval '1 day', now() + interval '2 days' FROM generate_series(1, 20000) g;
ANALYZE messages`)
	setBudget(t, pool, 5)
	rows, err := pool.Query(context.Background(), "EXPLAIN "+store.ClaimSQL, 32, 60.0, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	for _, want := range []string{"messages_claim_priority_idx", "messages_expiry_idx"} {
		if !strings.Contains(text, want) {
			t.Fatalf("claim plan does not use %s:\n%s", want, text)
		}
	}
	// The only sort allowed is of the few claimed rows, after the update.
	if strings.Contains(text, "Seq Scan on messages") || strings.Contains(text, "Sort Key: messages.priority") {
		t.Fatalf("claim plan scans or sorts the table:\n%s", text)
	}
}

// A claim says which rows the API created (their number was checked at the
// create) and which other systems inserted.
func TestClaimSaysWhetherTheAPICheckedTheNumber(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	if _, err := s.Create(ctx, []store.NewMessage{{ID: "by-api", Content: "hi", PhoneNumber: "+905551111111"}}); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `INSERT INTO messages (id, content, phone_number) VALUES ('inserted', 'hi', '+90 555 111 11 12')`)
	setBudget(t, pool, 10)
	claimed, err := s.Claim(ctx, 10, time.Hour, maxAttempts)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d rows, %v", len(claimed), err)
	}
	for _, c := range claimed {
		if want := c.ID == "by-api"; c.PhoneChecked != want {
			t.Errorf("%s: PhoneChecked %v, want %v", c.ID, c.PhoneChecked, want)
		}
	}
}
