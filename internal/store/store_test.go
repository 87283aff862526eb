package store_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// schema describes a database's public schema as sorted lines, so that two
// databases can be compared whatever order they were built in.
func schema(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	const q = `
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || COALESCE('(' || character_maximum_length || ')', '')
       || ' null=' || is_nullable || ' default=' || COALESCE(column_default, '-')
       || ' pos=' || ordinal_position
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name <> 'goose_db_version'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'goose_db_version'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename <> 'goose_db_version'
UNION ALL
SELECT 'row dispatch_control ' || running || ' ' || budget FROM dispatch_control`
	rows, err := pool.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestInitScriptsMatchMigrations(t *testing.T) {
	t.Parallel()
	_, migrated, _ := testenv.MigratedStore(t)

	initPool := testenv.NewPool(t, testenv.NewDatabase(t))
	testenv.RunInitScripts(t, initPool)
	if diff := cmp.Diff(schema(t, migrated), schema(t, initPool)); diff != "" {
		t.Fatalf("init/ and the migrations build different schemas (-migrated +init):\n%s", diff)
	}

	// The programs migrate a database init/ made: nothing changes, and the
	// sample rows are still pending.
	if err := store.Migrate(context.Background(), initPool, testenv.Logger(t)); err != nil {
		t.Fatalf("migrate over init/: %v", err)
	}
	if diff := cmp.Diff(schema(t, migrated), schema(t, initPool)); diff != "" {
		t.Fatalf("migrating over init/ changed the schema (-migrated +init):\n%s", diff)
	}
	var pending int
	if err := initPool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'pending' AND NOT is_sent`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("init/ sample rows are missing or not pending")
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	uri := testenv.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(context.Background(), uri)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- store.Migrate(context.Background(), pool, testenv.Logger(t))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	pool := testenv.NewPool(t, uri)
	before := schema(t, pool)
	if err := store.Migrate(context.Background(), pool, testenv.Logger(t)); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if diff := cmp.Diff(before, schema(t, pool)); diff != "" {
		t.Fatalf("second migrate changed the schema:\n%s", diff)
	}
}

// A deployment made from the seed has only the four original columns and
// may already have sent rows; migrating must keep them sent.
func TestMigrateSeedEraDatabase(t *testing.T) {
	t.Parallel()
	pool := testenv.NewPool(t, testenv.NewDatabase(t))
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
CREATE TABLE messages (
    id VARCHAR(36) PRIMARY KEY, content VARCHAR(255) NOT NULL,
    phone_number VARCHAR(20) NOT NULL, is_sent BOOLEAN NOT NULL DEFAULT FALSE);
INSERT INTO messages VALUES ('old-sent', 'hi', '+905551111111', true), ('old-new', 'hi', '+905551111112', false)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	s := store.New(pool)
	for id, want := range map[string]string{"old-sent": store.StatusSent, "old-new": store.StatusPending} {
		m, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != want {
			t.Errorf("%s: status %q, want %q", id, m.Status, want)
		}
	}
}

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
		return store.Outcome{Claimed: c, Status: store.StatusSent, RemoteID: remote, SentAt: time.Now()}
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
	if m.Status != store.StatusSent || m.RemoteMessageID != "r-1" || m.Attempts != 2 {
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
	if m.Status != store.StatusFailed || !strings.Contains(m.LastError, "lease expired") {
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
	if m := get(t, s, ids[0]); m.Status != store.StatusFailed || m.Attempts != maxAttempts ||
		m.LastError != "lease expired on the last attempt: the worker stopped during delivery" {
		t.Fatalf("exhausted row %+v, want failed with the cleanup's reason", m)
	}
	if m := get(t, s, ids[2]); m.Status != store.StatusSending || m.Attempts != maxAttempts {
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
			fill("'r'::text"), fill("now()"), fill("''::text"), fill("now()"), fill("1"), fill("200"), fill("'sent'::text")}, ", ")},
		{"release", store.ReleaseSQL, idArray + ", " + fill("1")},
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

// One statement records a mixed batch: sent, retried and failed rows each
// get their own columns, and nothing else changes.
func TestRecordOutcomesBatch(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 3)
	setBudget(t, pool, 10)
	c, err := s.Claim(ctx, 3, time.Minute, maxAttempts)
	if err != nil || len(c) != 3 {
		t.Fatalf("claim: %v %v", c, err)
	}
	sentAt := time.Now().UTC().Truncate(time.Microsecond)
	next := sentAt.Add(time.Hour)
	done, err := s.RecordOutcomes(ctx, []store.Outcome{
		{Claimed: c[0], Status: store.StatusSent, RemoteID: "r-0", SentAt: sentAt},
		{Claimed: c[1], Status: store.StatusPending, NextAt: next, Error: "webhook answered 503"},
		{Claimed: c[2], Status: store.StatusFailed, Error: "webhook answered 400"},
	})
	if err != nil || len(done) != 3 {
		t.Fatalf("record: %v %v", done, err)
	}
	m0, m1, m2 := get(t, s, ids[0]), get(t, s, ids[1]), get(t, s, ids[2])
	if m0.Status != store.StatusSent || m0.RemoteMessageID != "r-0" || !m0.SentAt.Equal(sentAt) || m0.LastError != "" {
		t.Errorf("sent row %+v", m0)
	}
	if m1.Status != store.StatusPending || !m1.NextAttemptAt.Equal(next) || m1.LastError != "webhook answered 503" || m1.SentAt != nil {
		t.Errorf("retried row %+v", m1)
	}
	if m2.Status != store.StatusFailed || m2.LastError != "webhook answered 400" || m2.SentAt != nil {
		t.Errorf("failed row %+v", m2)
	}
}
