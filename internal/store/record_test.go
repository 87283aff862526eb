package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

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
		{Claimed: c[0], Status: messaging.StatusSent, RemoteID: "r-0", SentAt: sentAt},
		{Claimed: c[1], Status: messaging.StatusPending, NextAt: next, Error: "webhook answered 503"},
		{Claimed: c[2], Status: messaging.StatusFailed, Error: "webhook answered 400"},
	})
	if err != nil || len(done) != 3 {
		t.Fatalf("record: %v %v", done, err)
	}
	m0, m1, m2 := get(t, s, ids[0]), get(t, s, ids[1]), get(t, s, ids[2])
	if m0.Status != messaging.StatusSent || m0.RemoteMessageID != "r-0" || !m0.SentAt.Equal(sentAt) || m0.LastError != "" {
		t.Errorf("sent row %+v", m0)
	}
	if m1.Status != messaging.StatusPending || !m1.NextAttemptAt.Equal(next) || m1.LastError != "webhook answered 503" || m1.SentAt != nil {
		t.Errorf("retried row %+v", m1)
	}
	if m2.Status != messaging.StatusFailed || m2.LastError != "webhook answered 400" || m2.SentAt != nil {
		t.Errorf("failed row %+v", m2)
	}
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
		{Claimed: c[0], Status: messaging.StatusPending, NextAt: time.Now(), Error: "webhook answered 503: busy",
			StartedAt: t0, Duration: 1500 * time.Microsecond, StatusCode: 503, Kind: "retry"},
		// An invalid row: no call, no attempt.
		{Claimed: c[1], Status: messaging.StatusFailed, Error: "not sent: invalid message"},
	})
	if err != nil || len(done) != 2 {
		t.Fatalf("record %v %v", done, err)
	}
	c2, err := s.Claim(ctx, 1, time.Minute, maxAttempts)
	if err != nil || len(c2) != 1 {
		t.Fatalf("claim again %v %v", c2, err)
	}
	// The stale first claim's duplicate outcome is fenced out.
	if done, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c[0], Status: messaging.StatusSent, StartedAt: t0, Kind: "sent"}}); err != nil || len(done) != 0 {
		t.Fatalf("stale record %v %v", done, err)
	}
	if _, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c2[0], Status: messaging.StatusFailed, Error: "webhook call failed: timeout",
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
	if _, err := s.RecordOutcomes(ctx, []store.Outcome{{Claimed: c3[0], Status: messaging.StatusSent, RemoteID: "r", SentAt: time.Now(),
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
	if _, err := s.Attempts(ctx, "nope"); !errors.Is(err, messaging.ErrNotFound) {
		t.Fatalf("attempts of unknown: %v", err)
	}
}
