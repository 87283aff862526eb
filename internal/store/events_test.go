package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func eventTypes(t *testing.T, s *store.Store, id string) []string {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), id)
	if err != nil {
		t.Fatalf("list events of %s: %v", id, err)
	}
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func create(t *testing.T, s *store.Store, ns ...store.NewMessage) {
	t.Helper()
	if _, err := s.Create(context.Background(), ns); err != nil {
		t.Fatalf("create: %v", err)
	}
}

// The trigger writes exactly one event per reportable change, whoever
// makes it, none at creation, none for a change it does not report and
// none for a receipt that repeats the stored delivery status.
func TestEventsOnePerChange(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	create(t, s,
		store.NewMessage{ID: "c", Content: "x", PhoneNumber: "+905551111111"},
		store.NewMessage{ID: "f", Content: "x", PhoneNumber: "+905551111111", StatusCallback: "https://hooks.example.com/a"},
		store.NewMessage{ID: "e", Content: "x", PhoneNumber: "+905551111111"},
		store.NewMessage{ID: "s", Content: "x", PhoneNumber: "+905551111111"},
	)
	for _, id := range []string{"c", "f", "e", "s"} {
		if got := eventTypes(t, s, id); len(got) != 0 {
			t.Fatalf("events at creation of %s: %v", id, got)
		}
	}
	if _, err := s.Cancel(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, "c"); err != nil { // canceled again: no change
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE messages SET status = 'sending', attempts = 1 WHERE id IN ('f', 's')`)
	exec(t, pool, `UPDATE messages SET status = 'failed' WHERE id = 'f'`)
	if _, err := s.RetryFailed(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE messages SET status = 'failed' WHERE id = 'f'`)
	exec(t, pool, `UPDATE messages SET status = 'expired' WHERE id = 'e'`)
	got, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: store.Claimed{ID: "s", Attempt: 1},
		Status: messaging.StatusSent, RemoteID: "r-s", SentAt: time.Now().UTC().Truncate(time.Microsecond)}})
	if err != nil || !got["s"] {
		t.Fatalf("record: %v %v", got, err)
	}
	for _, r := range []store.Receipt{
		{RemoteID: "r-s", Status: "delivered"},
		{RemoteID: "r-s", Status: "delivered"}, // newer, same status: no event
		{RemoteID: "r-s", Status: "undelivered", Error: "30003"},
	} {
		if _, err := s.ApplyReceipt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string][]string{
		"c": {"message.canceled"},
		"f": {"message.failed", "message.failed"},
		"e": {"message.expired"},
		"s": {"message.sent", "message.delivered", "message.undelivered"},
	} {
		if got := eventTypes(t, s, id); !cmp.Equal(got, want) {
			t.Errorf("events of %s: %v, want %v", id, got, want)
		}
	}
	// The snapshot is the row right after the change: the last event of s
	// reads back as the message does now.
	var snap []byte
	if err := pool.QueryRow(ctx, `SELECT snapshot FROM message_events WHERE message_id = 's' ORDER BY seq DESC LIMIT 1`).Scan(&snap); err != nil {
		t.Fatal(err)
	}
	fromEvent, err := store.DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	now, err := s.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(now, fromEvent); d != "" {
		t.Errorf("snapshot differs from the row (-row +snapshot):\n%s", d)
	}
	var url string
	if err := pool.QueryRow(ctx, `SELECT callback_url FROM message_events WHERE message_id = 'f' LIMIT 1`).Scan(&url); err != nil || url != "https://hooks.example.com/a" {
		t.Fatalf("callback_url %q %v", url, err)
	}
	if _, err := s.ListEvents(ctx, "nope"); !errors.Is(err, messaging.ErrNotFound) {
		t.Fatalf("events of an unknown message: %v", err)
	}
}

// A change that rolls back leaves no event: a cancel that loses its race
// to a claim (the claim holds the row lock and commits 'sending' first)
// finds no pending row and writes no message.canceled, and a cancel whose
// transaction rolls back leaves nothing either.
func TestEventsRolledBackChangeWritesNone(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	create(t, s, store.NewMessage{ID: "raced", Content: "x", PhoneNumber: "+905551111111"},
		store.NewMessage{ID: "rolled", Content: "x", PhoneNumber: "+905551111111"})

	// The claim locks the row first, in an open transaction.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE messages SET status = 'sending', attempts = attempts + 1,
        lease_expires_at = now() + interval '1 minute' WHERE id = 'raced' AND status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	canceled := make(chan error, 1)
	go func() {
		_, err := s.Cancel(ctx, "raced")
		canceled <- err
	}()
	// The cancel waits on the claim's row lock.
	testenv.Eventually(t, 10*time.Second, "the cancel waits for the claim's lock", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		return err == nil && waiting
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-canceled:
		if !errors.Is(err, messaging.ErrNotCancelable) {
			t.Fatalf("cancel after the claim: %v, want ErrNotCancelable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not return")
	}
	if got := eventTypes(t, s, "raced"); len(got) != 0 {
		t.Fatalf("events of a cancel that lost its race: %v", got)
	}

	tx2, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.Exec(ctx, `UPDATE messages SET status = 'canceled' WHERE id = 'rolled'`); err != nil {
		t.Fatal(err)
	}
	var inside int
	if err := tx2.QueryRow(ctx, `SELECT count(*) FROM message_events WHERE message_id = 'rolled'`).Scan(&inside); err != nil || inside != 1 {
		t.Fatalf("the change's own transaction sees %d events (%v), want 1", inside, err)
	}
	if err := tx2.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(t, s, "rolled"); len(got) != 0 {
		t.Fatalf("events of a rolled-back cancel: %v", got)
	}
}

func claimEvents(t *testing.T, s *store.Store, lease time.Duration, withDefault bool) []store.ClaimedEvent {
	t.Helper()
	got, err := s.ClaimEvents(context.Background(), 100, lease, withDefault)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func cancelAll(t *testing.T, pool *pgxpool.Pool, ids ...string) {
	t.Helper()
	exec(t, pool, `UPDATE messages SET status = 'canceled' WHERE id = ANY($1)`, ids)
}

// A message's events are claimed one at a time, oldest first; other
// messages do not wait; an outcome is fenced by its claim; a lease that
// runs out hands the event to the next claim with the same id; a failed
// event no longer holds later ones back; redelivery puts even a failed
// event back in line with a fresh round.
func TestEventsClaimOrderAndFence(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	create(t, s, store.NewMessage{ID: "a", Content: "x", PhoneNumber: "+905551111111"},
		store.NewMessage{ID: "b", Content: "x", PhoneNumber: "+905551111111", StatusCallback: "https://own.example.com/"})
	exec(t, pool, `UPDATE messages SET status = 'sent', remote_message_id = 'ra', sent_at = now() WHERE id = 'a'`)
	exec(t, pool, `UPDATE messages SET delivery_status = 'delivered', delivered_at = now() WHERE id = 'a'`)
	cancelAll(t, pool, "b")

	// Without a default URL only b's event, which has its own, goes out.
	got := claimEvents(t, s, time.Minute, false)
	if len(got) != 1 || got[0].MessageID != "b" || got[0].URL != "https://own.example.com/" || got[0].Round != 1 {
		t.Fatalf("claim without a default URL: %+v", got)
	}
	if ok, err := s.RecordEvent(ctx, store.EventOutcome{ID: got[0].ID, Attempt: got[0].Attempts, Status: store.EventDelivered}); err != nil || !ok {
		t.Fatalf("record b: %v %v", ok, err)
	}
	got = claimEvents(t, s, time.Minute, true)
	if len(got) != 1 || got[0].Type != "message.sent" || got[0].Message.Status != messaging.StatusSent || got[0].Message.DeliveryStatus != "" {
		t.Fatalf("first claim of a: %+v", got)
	}
	sent := got[0]
	if again := claimEvents(t, s, time.Minute, true); len(again) != 0 {
		t.Fatalf("claimed while the earlier event is in flight: %+v", again)
	}
	// The lease runs out: the next claim takes the same event again.
	exec(t, pool, `UPDATE message_events SET lease_expires_at = now() - interval '1 second' WHERE id = $1::uuid`, sent.ID)
	re := claimEvents(t, s, time.Minute, true)
	if len(re) != 1 || re[0].ID != sent.ID || re[0].Attempts != sent.Attempts+1 || re[0].Round != 2 {
		t.Fatalf("claim after the lease: %+v", re)
	}
	// The first claim's outcome is fenced off.
	if ok, err := s.RecordEvent(ctx, store.EventOutcome{ID: sent.ID, Attempt: sent.Attempts, Status: store.EventDelivered}); err != nil || ok {
		t.Fatalf("a lost claim recorded: %v %v", ok, err)
	}
	if ok, err := s.RecordEvent(ctx, store.EventOutcome{ID: sent.ID, Attempt: re[0].Attempts, Status: store.EventFailed, Error: "callback answered 500"}); err != nil || !ok {
		t.Fatalf("record failed: %v %v", ok, err)
	}
	// Failed, it no longer holds the delivered event back.
	got = claimEvents(t, s, time.Minute, true)
	if len(got) != 1 || got[0].Type != "message.delivered" || got[0].Message.DeliveryStatus != "delivered" {
		t.Fatalf("claim after a failed event: %+v", got)
	}
	if ok, err := s.RecordEvent(ctx, store.EventOutcome{ID: got[0].ID, Attempt: got[0].Attempts, Status: store.EventPending,
		NextAt: time.Now().Add(time.Hour), Error: "callback answered 503"}); err != nil || !ok {
		t.Fatalf("record retry: %v %v", ok, err)
	}
	if again := claimEvents(t, s, time.Minute, true); len(again) != 0 {
		t.Fatalf("claimed before next_attempt_at: %+v", again)
	}
	// Redelivery: the failed event is pending again, due now, round 1.
	ev, err := s.RedeliverEvent(ctx, sent.ID)
	if err != nil || ev.Status != store.EventPending || ev.LastError != "callback answered 500" {
		t.Fatalf("redeliver: %+v %v", ev, err)
	}
	got = claimEvents(t, s, time.Minute, true)
	if len(got) != 1 || got[0].ID != sent.ID || got[0].Round != 1 {
		t.Fatalf("claim after redelivery: %+v", got)
	}
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
		if _, err := s.RedeliverEvent(ctx, id); !errors.Is(err, messaging.ErrEventNotFound) {
			t.Fatalf("redeliver %q: %v", id, err)
		}
	}
	if n, err := s.PendingEvents(ctx); err != nil || n != 2 {
		t.Fatalf("pending events %d %v, want 2", n, err)
	}
	evs, err := s.ListEvents(ctx, "a")
	if err != nil || len(evs) != 2 || evs[0].ID != sent.ID || evs[1].LastError != "callback answered 503" {
		t.Fatalf("list: %+v %v", evs, err)
	}
}

// The retention purge deletes a purged message's events; an erasure
// scrubs the number and text out of their snapshots.
func TestEventsPurgedAndErased(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	const phone = "+905551234567"
	create(t, s, store.NewMessage{ID: "old", Content: "x", PhoneNumber: "+905551111111"},
		store.NewMessage{ID: "mine", Content: "secret text", PhoneNumber: phone})
	exec(t, pool, `UPDATE messages SET status = 'failed', last_error = 'provider said secret text to 905551234567' WHERE id IN ('old', 'mine')`)
	exec(t, pool, `UPDATE messages SET finished_at = now() - interval '2 days' WHERE id = 'old'`)
	ids, err := s.PurgeBatch(ctx, 24*time.Hour, 10, nil)
	if err != nil || !cmp.Equal(ids, []string{"old"}) {
		t.Fatalf("purge: %v %v", ids, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM message_events WHERE message_id = 'old'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("events of a purged message: %d %v", n, err)
	}
	if _, err := s.Erase(ctx, phone, nil); err != nil {
		t.Fatal(err)
	}
	var snap []byte
	err = pool.QueryRow(ctx, `SELECT snapshot FROM message_events WHERE message_id = 'mine'`).Scan(&snap)
	if errors.Is(err, pgx.ErrNoRows) || err != nil {
		t.Fatalf("event of the erased message: %v", err)
	}
	m, err := store.DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	if m.Content != "" || m.PhoneNumber != store.ErasedNumber || m.LastError != "provider said erased to erased" {
		t.Fatalf("erased snapshot: %+v", m)
	}
}
