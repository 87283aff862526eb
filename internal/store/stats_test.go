package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// The chart's counts: calls bucketed by the minute they started, only sent
// and failed outcomes, only the last n minutes, every minute present.
func TestMinuteCounts(t *testing.T) {
	t.Parallel()
	_, pool, st := testenv.MigratedStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 30, 40, 0, time.UTC)
	at := func(m, s int) time.Time {
		return now.Truncate(time.Minute).Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	type call struct {
		at      time.Time
		outcome string
	}
	for i, c := range []call{
		{at(0, 0), "sent"}, {at(0, 10), "sent"}, {at(0, 30), "failed"}, // the current minute, so far
		{at(-1, 59), "sent"},
		{at(-1, 0), "retry"}, {at(-1, 1), "gone"}, // neither sent nor failed
		{at(-59, 0), "failed"}, // the oldest minute shown
		{at(-60, 59), "sent"},  // just before it
		{at(1, 0), "sent"},     // after now (clock skew between hosts)
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, status_code, outcome)
VALUES ($1, 1, $2, 5, 202, $3)`, "m"+string(rune('a'+i)), c.at, c.outcome); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.MinuteCounts(ctx, now, 60)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 {
		t.Fatalf("%d minutes, want 60", len(got))
	}
	want := make([]store.MinuteCount, 60)
	for i := range want {
		want[i].Minute = at(i-59, 0)
	}
	want[0].Failed = 1
	want[58].Sent = 1
	want[59].Sent, want[59].Failed = 2, 1
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("minute counts (-want +got):\n%s", d)
	}
	if _, err := st.MinuteCounts(ctx, now, 0); err == nil {
		t.Fatalf("0 minutes: no error")
	}
}
