package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

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
	if m.Status != messaging.StatusPending || m.Priority != 0 || m.SendAt != nil || m.ExpiresAt != nil || m.DeliveryStatus != "" || m.DeliveredAt != nil {
		t.Fatalf("legacy row %+v", m)
	}
	setBudget(t, pool, 5)
	if got := claimIDs(t, s, 5); len(got) != 1 {
		t.Fatalf("legacy row not claimed: %v", got)
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
		if err != nil || m.Status != messaging.StatusCanceled {
			t.Fatalf("cancel %s: %+v %v", id, m, err)
		}
		if m, err := s.Cancel(ctx, id); err != nil || m.Status != messaging.StatusCanceled {
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
		if _, err := s.Cancel(ctx, id); !errors.Is(err, messaging.ErrNotCancelable) {
			t.Fatalf("cancel %s: %v, want ErrNotCancelable", st, err)
		}
	}
	if _, err := s.Cancel(ctx, "nope"); !errors.Is(err, messaging.ErrNotFound) {
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
		case cancelErr == nil && len(claimed) == 0 && canceled.Status == messaging.StatusCanceled:
			wins["cancel"]++
		case errors.Is(cancelErr, messaging.ErrNotCancelable) && len(claimed) == 1:
			wins["claim"]++
			done, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: claimed[0], Status: messaging.StatusSent, SentAt: time.Now(), StartedAt: time.Now(), Kind: "sent"}})
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
		if m.Status != messaging.StatusCanceled && m.Status != messaging.StatusSent {
			t.Fatalf("run %d: ended %s", i, m.Status)
		}
	}
	t.Logf("200 races: %v", wins)
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
	var dup *messaging.DuplicateIDError
	if !errors.As(err, &dup) || dup.Index != 1 || !errors.Is(err, messaging.ErrDuplicate) {
		t.Fatalf("conflict: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows after a refused batch (%v), want 2", n, err)
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
	page, more, err := s.ListMessages(ctx, store.ListFilter{Status: messaging.StatusCanceled, Priority: &two}, nil, 2)
	if err != nil || !more || len(page) != 2 || page[0].ID != ids[5] || page[1].ID != ids[4] {
		t.Fatalf("filtered %v %v %v", page, more, err)
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil || len(counts) != len(messaging.Statuses) || counts[messaging.StatusCanceled] != 3 || counts[messaging.StatusExpired] != 0 {
		t.Fatalf("counts %v %v", counts, err)
	}
}
