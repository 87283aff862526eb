package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

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

// A row inserted the old way keeps behaving as before: pending, due at
// once, priority 0, no expiry.
func TestLegacyInsertDefaults(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 1)
	m, err := s.Get(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != store.StatusPending || m.Priority != 0 || m.SendAt != nil || m.ExpiresAt != nil || m.DeliveryStatus != "" || m.DeliveredAt != nil {
		t.Fatalf("legacy row %+v", m)
	}
	setBudget(t, pool, 5)
	if got := claimIDs(t, s, 5); len(got) != 1 {
		t.Fatalf("legacy row not claimed: %v", got)
	}
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
		if m.Status != store.StatusExpired || !strings.Contains(m.LastError, "expired") {
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

// Cancel: pending (scheduled, due, awaiting retry) becomes canceled, again
// is harmless, any other status is not cancelable, unknown is not found.
func TestCancel(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 3)
	exec(t, pool, `UPDATE messages SET send_at = now() + interval '1 day' WHERE id = $1`, ids[0])
	exec(t, pool, `UPDATE messages SET attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE id = $1`, ids[1])
	for _, id := range ids {
		m, err := s.Cancel(ctx, id)
		if err != nil || m.Status != store.StatusCanceled {
			t.Fatalf("cancel %s: %+v %v", id, m, err)
		}
		if m, err := s.Cancel(ctx, id); err != nil || m.Status != store.StatusCanceled {
			t.Fatalf("cancel again %s: %+v %v", id, m, err)
		}
	}
	setBudget(t, pool, 10)
	if got := claimIDs(t, s, 10); len(got) != 0 {
		t.Fatalf("claimed canceled rows %v", got)
	}
	for _, st := range []string{"sending", "sent", "failed", "expired"} {
		id := "c-" + st
		exec(t, pool, `INSERT INTO messages (id, content, phone_number, status) VALUES ($1, 'x', '+905551111111', $2)`, id, st)
		if _, err := s.Cancel(ctx, id); !errors.Is(err, store.ErrNotCancelable) {
			t.Fatalf("cancel %s: %v, want ErrNotCancelable", st, err)
		}
	}
	if _, err := s.Cancel(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
}

// A cancel racing a claim: either the cancel wins (the claim skips the row)
// or the claim wins (the cancel is refused and the call's outcome lands);
// never both. Run 200 times.
func TestCancelRacesClaim(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	wins := map[string]int{}
	for i := range 200 {
		id := fmt.Sprintf("race-%03d", i)
		exec(t, pool, `INSERT INTO messages (id, content, phone_number) VALUES ($1, 'x', '+905551111111')`, id)
		setBudget(t, pool, 1)
		var (
			wg        sync.WaitGroup
			claimed   []store.Claimed
			claimErr  error
			canceled  store.Message
			cancelErr error
		)
		wg.Add(2)
		go func() { defer wg.Done(); claimed, claimErr = s.Claim(ctx, 1, time.Minute, maxAttempts) }()
		go func() { defer wg.Done(); canceled, cancelErr = s.Cancel(ctx, id) }()
		wg.Wait()
		if claimErr != nil {
			t.Fatal(claimErr)
		}
		switch {
		case cancelErr == nil && len(claimed) == 0 && canceled.Status == store.StatusCanceled:
			wins["cancel"]++
		case errors.Is(cancelErr, store.ErrNotCancelable) && len(claimed) == 1:
			wins["claim"]++
			done, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: claimed[0], Status: store.StatusSent, SentAt: time.Now(), StartedAt: time.Now(), Kind: "sent"}})
			if err != nil || !done[id] {
				t.Fatalf("run %d: record after a lost cancel: %v %v", i, done, err)
			}
		default:
			t.Fatalf("run %d: claim %v, cancel %+v %v: both or neither won", i, claimed, canceled, cancelErr)
		}
		m, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != store.StatusCanceled && m.Status != store.StatusSent {
			t.Fatalf("run %d: ended %s", i, m.Status)
		}
	}
	t.Logf("200 races: %v", wins)
}

// Recording an outcome appends its call to message_attempts in the same
// statement; a fenced (stale) outcome and a call that was never made write
// nothing; a manual retry continues the numbering.
func TestRecordWritesAttempts(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 2)
	setBudget(t, pool, 100)
	c, err := s.Claim(ctx, 2, time.Minute, maxAttempts)
	if err != nil || len(c) != 2 {
		t.Fatalf("claim %v %v", c, err)
	}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	done, err := s.RecordOutcomes(ctx, []store.Outcome{
		{Claimed: c[0], Status: store.StatusPending, NextAt: time.Now(), Error: "webhook answered 503: busy",
			StartedAt: t0, Duration: 1500 * time.Microsecond, StatusCode: 503, Kind: "retry"},
		// An invalid row: no call, no attempt.
		{Claimed: c[1], Status: store.StatusFailed, Error: "not sent: invalid message"},
	})
	if err != nil || len(done) != 2 {
		t.Fatalf("record %v %v", done, err)
	}
	c2, err := s.Claim(ctx, 1, time.Minute, maxAttempts)
	if err != nil || len(c2) != 1 {
		t.Fatalf("claim again %v %v", c2, err)
	}
	// The stale first claim's duplicate outcome is fenced out.
	if done, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c[0], Status: store.StatusSent, StartedAt: t0, Kind: "sent"}}); err != nil || len(done) != 0 {
		t.Fatalf("stale record %v %v", done, err)
	}
	if _, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c2[0], Status: store.StatusFailed, Error: "webhook call failed: timeout",
		StartedAt: t0.Add(time.Second), Duration: 10 * time.Second, Kind: "failed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetryFailed(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	c3, err := s.Claim(ctx, 1, time.Minute, maxAttempts)
	if err != nil || len(c3) != 1 || c3[0].Attempt != 1 {
		t.Fatalf("claim after retry %v %v", c3, err)
	}
	if _, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c3[0], Status: store.StatusSent, RemoteID: "r", SentAt: time.Now(),
		StartedAt: t0.Add(2 * time.Second), Duration: 3 * time.Millisecond, StatusCode: 202, Kind: "sent"}}); err != nil {
		t.Fatal(err)
	}
	as, err := s.Attempts(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("attempts %+v, want 3", as)
	}
	want := []struct {
		n, ms int
		code  *int
		out   string
	}{{1, 2, ptr(503), "retry"}, {2, 10000, nil, "failed"}, {3, 3, ptr(202), "sent"}}
	for i, w := range want {
		a := as[i]
		if a.Attempt != w.n || a.DurationMS != w.ms || a.Outcome != w.out || (a.StatusCode == nil) != (w.code == nil) ||
			a.StatusCode != nil && *a.StatusCode != *w.code || !a.StartedAt.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("attempt %d = %+v, want %+v", i, a, w)
		}
	}
	if as[0].Error != "webhook answered 503: busy" || as[2].Error != "" {
		t.Errorf("errors %q %q", as[0].Error, as[2].Error)
	}
	if as, err := s.Attempts(ctx, ids[1]); err != nil || len(as) != 0 {
		t.Fatalf("invalid row has attempts %v %v", as, err)
	}
	if _, err := s.Attempts(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attempts of unknown: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateIdempotentAndAllOrNothing(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	a := store.NewMessage{ID: "a", Content: "hi", PhoneNumber: "+905551111111", SendAt: &at, Validity: time.Hour, Priority: 3}
	b := store.NewMessage{ID: "b", Content: "hi", PhoneNumber: "+905551111111", Validity: 90 * time.Second}
	got, err := s.Create(ctx, []store.NewMessage{a, b})
	if err != nil || len(got) != 2 || !got[0].New || !got[1].New {
		t.Fatalf("create %+v %v", got, err)
	}
	if !got[0].ExpiresAt.Equal(at.Add(time.Hour)) || !got[1].ExpiresAt.Equal(got[1].CreatedAt.Add(90*time.Second)) || got[0].Priority != 3 {
		t.Fatalf("created %+v", got)
	}
	// A replay returns the same rows, stores nothing new.
	again, err := s.Create(ctx, []store.NewMessage{b, a})
	if err != nil || again[0].New || again[1].New || again[0].ID != "b" || !again[0].CreatedAt.Equal(got[1].CreatedAt) {
		t.Fatalf("replay %+v %v", again, err)
	}
	// A different body under a known id refuses the whole batch.
	c := store.NewMessage{ID: "c", Content: "hi", PhoneNumber: "+905551111111"}
	a2 := a
	a2.Priority = 4
	_, err = s.Create(ctx, []store.NewMessage{c, a2})
	var dup *store.DuplicateIDError
	if !errors.As(err, &dup) || dup.Index != 1 || !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("conflict: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows after a refused batch (%v), want 2", n, err)
	}
}

func TestReceipts(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id)
        VALUES ('m1', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r1'),
               ('m2', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r2')`)
	t1 := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Microsecond)
	m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", Error: "30003", At: &t1})
	if err != nil || m.ID != "m2" || m.DeliveryStatus != "undelivered" || m.DeliveryError != "30003" || !m.DeliveredAt.Equal(t1) {
		t.Fatalf("receipt: %+v %v", m, err)
	}
	t2 := t1.Add(time.Minute)
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "delivered", At: &t2}); err != nil || m.DeliveryStatus != "delivered" || m.DeliveryError != "" {
		t.Fatalf("newer receipt: %+v %v", m, err)
	}
	// An older one changes nothing and still answers with the message.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", At: &t1}); err != nil || m.DeliveryStatus != "delivered" || !m.DeliveredAt.Equal(t2) {
		t.Fatalf("older receipt: %+v %v", m, err)
	}
	// So does one with the same timestamp: the first of equal ones wins.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", Error: "30003", At: &t2}); err != nil ||
		m.DeliveryStatus != "delivered" || m.DeliveryError != "" || !m.DeliveredAt.Equal(t2) {
		t.Fatalf("equal receipt: %+v %v", m, err)
	}
	if m, err := s.Get(ctx, "m1"); err != nil || m.DeliveryStatus != "" {
		t.Fatalf("other message touched: %+v %v", m, err)
	}
	if _, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "nope", Status: "delivered"}); !errors.Is(err, store.ErrRemoteNotFound) {
		t.Fatalf("unknown remote id: %v", err)
	}
	// Without a timestamp, the database's now: newer than t2.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered"}); err != nil || m.DeliveryStatus != "undelivered" || !m.DeliveredAt.After(t2) {
		t.Fatalf("receipt without a timestamp: %+v %v", m, err)
	}
}

// A receipt that cannot name one message, or whose time is out of range,
// changes nothing and says why.
func TestReceiptsRefused(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	// twice-a and twice-b share a remote id; legacy was sent before
	// sent_at was recorded.
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id) VALUES
        ('twice-a', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'twice'),
        ('twice-b', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'twice'),
        ('one', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'one'),
        ('legacy', 'x', '+905551111111', 'sent', true, NULL, 'legacy'),
        ('failed-twice', 'x', '+905551111111', 'failed', false, NULL, 'failed-dup')`)
	var sentAt time.Time
	if err := pool.QueryRow(ctx, `SELECT sent_at FROM messages WHERE id = 'one'`).Scan(&sentAt); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) *time.Time { v := time.Now().Add(d).UTC().Truncate(time.Microsecond); return &v }
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	beforeSent := sentAt.Add(-store.ReceiptClockSkew - time.Second)
	for _, c := range []struct {
		name string
		r    store.Receipt
		want error
	}{
		{"ambiguous", store.Receipt{RemoteID: "twice", Status: "delivered"}, store.ErrAmbiguousRemoteID},
		{"ambiguous with a timestamp", store.Receipt{RemoteID: "twice", Status: "undelivered", At: at(-time.Minute)}, store.ErrAmbiguousRemoteID},
		{"year 9999", store.Receipt{RemoteID: "one", Status: "delivered", At: &year9999}, store.ErrReceiptFuture},
		{"six minutes ahead", store.Receipt{RemoteID: "one", Status: "delivered", At: at(6 * time.Minute)}, store.ErrReceiptFuture},
		{"before sent_at", store.Receipt{RemoteID: "one", Status: "delivered", At: &beforeSent}, store.ErrReceiptBeforeSent},
		{"not sent", store.Receipt{RemoteID: "failed-dup", Status: "delivered"}, store.ErrRemoteNotFound},
	} {
		if _, err := s.ApplyReceipt(ctx, c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	var touched int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages
        WHERE delivery_status IS NOT NULL OR delivered_at IS NOT NULL OR delivery_error IS NOT NULL`).Scan(&touched); err != nil {
		t.Fatal(err)
	}
	if touched != 0 {
		t.Fatalf("refused receipts changed %d messages", touched)
	}
	// Within the margins they apply: four minutes ahead, four minutes
	// before sent_at, and any time for a message without sent_at.
	withinBefore := sentAt.Add(-4 * time.Minute)
	for _, c := range []store.Receipt{
		{RemoteID: "one", Status: "undelivered", At: &withinBefore},
		{RemoteID: "one", Status: "delivered", At: at(4 * time.Minute)},
		{RemoteID: "legacy", Status: "delivered", At: &beforeSent},
	} {
		if m, err := s.ApplyReceipt(ctx, c); err != nil || m.DeliveryStatus != c.Status || !m.DeliveredAt.Equal(*c.At) {
			t.Errorf("%+v: %+v %v", c, m, err)
		}
	}
}

// Receipts with one timestamp arriving at once: the first applies, every
// other changes nothing, and every answer shows the winner.
func TestEqualReceiptsAtOnce(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id)
        VALUES ('m', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r')`)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	const n = 8
	answers := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := store.Receipt{RemoteID: "r", Status: "delivered", At: &at}
			if i%2 == 1 {
				r.Status, r.Error = "undelivered", "30003"
			}
			m, err := s.ApplyReceipt(ctx, r)
			answers[i], errs[i] = m.DeliveryStatus+"/"+m.DeliveryError, err
		})
	}
	wg.Wait()
	final, err := s.Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || answers[i] != final.DeliveryStatus+"/"+final.DeliveryError {
			t.Fatalf("answer %d: %q %v; stored %q/%q", i, answers[i], errs[i], final.DeliveryStatus, final.DeliveryError)
		}
	}
}

func TestReceiptTarget(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	sent := now.Add(-time.Hour)
	msg := store.Message{ID: "m", SentAt: &sent}
	legacy := store.Message{ID: "old"}
	at := func(t time.Time) *time.Time { return &t }
	for _, c := range []struct {
		name    string
		r       store.Receipt
		matches []store.Message
		wantAt  time.Time
		wantErr error
	}{
		{"none", store.Receipt{}, nil, time.Time{}, store.ErrRemoteNotFound},
		{"two", store.Receipt{}, []store.Message{msg, legacy}, time.Time{}, store.ErrAmbiguousRemoteID},
		{"no timestamp: now", store.Receipt{}, []store.Message{msg}, now, nil},
		{"exactly the margin ahead", store.Receipt{At: at(now.Add(store.ReceiptClockSkew))}, []store.Message{msg}, now.Add(store.ReceiptClockSkew), nil},
		{"a microsecond past the margin", store.Receipt{At: at(now.Add(store.ReceiptClockSkew + time.Microsecond))}, []store.Message{msg}, time.Time{}, store.ErrReceiptFuture},
		{"year 9999", store.Receipt{At: at(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))}, []store.Message{legacy}, time.Time{}, store.ErrReceiptFuture},
		{"exactly the margin before sent", store.Receipt{At: at(sent.Add(-store.ReceiptClockSkew))}, []store.Message{msg}, sent.Add(-store.ReceiptClockSkew), nil},
		{"before sent past the margin", store.Receipt{At: at(sent.Add(-store.ReceiptClockSkew - time.Microsecond))}, []store.Message{msg}, time.Time{}, store.ErrReceiptBeforeSent},
		{"long before, no sent_at", store.Receipt{At: at(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))}, []store.Message{legacy}, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), nil},
	} {
		m, gotAt, err := store.ReceiptTarget(c.r, now, c.matches)
		if !errors.Is(err, c.wantErr) || !gotAt.Equal(c.wantAt) || err == nil && m.ID != c.matches[0].ID {
			t.Errorf("%s: %+v %v %v, want %v %v", c.name, m, gotAt, err, c.wantAt, c.wantErr)
		}
	}
}

func TestListMessagesPages(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	ids := testenv.InsertMessages(t, pool, 7)
	exec(t, pool, `UPDATE messages SET status = 'canceled', priority = 2 WHERE id = ANY($1)`, []string{ids[1], ids[4], ids[5]})
	var all []string
	var after *store.ListCursor
	for {
		page, more, err := s.ListMessages(ctx, store.ListFilter{}, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			all = append(all, m.ID)
		}
		if !more {
			break
		}
		last := page[len(page)-1]
		after = &store.ListCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	want := []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
	if strings.Join(all, ",") != strings.Join(want, ",") {
		t.Fatalf("walk %v, want %v", all, want)
	}
	two := 2
	page, more, err := s.ListMessages(ctx, store.ListFilter{Status: store.StatusCanceled, Priority: &two}, nil, 2)
	if err != nil || !more || len(page) != 2 || page[0].ID != ids[5] || page[1].ID != ids[4] {
		t.Fatalf("filtered %v %v %v", page, more, err)
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil || len(counts) != len(store.Statuses) || counts[store.StatusCanceled] != 3 || counts[store.StatusExpired] != 0 {
		t.Fatalf("counts %v %v", counts, err)
	}
}
