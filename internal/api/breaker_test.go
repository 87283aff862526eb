package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
)

// GET /api/v1/scheduler and /metrics show the shared breaker as the
// workers left it in PostgreSQL.
func TestSchedulerShowsTheBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, _, b := e.get("/api/v1/scheduler")
	st := decode[api.SchedulerStatus](t, b)
	if status != 200 || st.Breaker.State != "closed" || st.Breaker.Since.IsZero() || st.Breaker.FailureRate != 0 {
		t.Fatalf("fresh breaker: %d %s", status, b)
	}
	since := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if _, err := e.pool.Exec(context.Background(),
		`UPDATE delivery_breaker SET state = 'open', since = $1, reason = '20 of 20 calls failed', failure_rate = 1, trips = 3`, since); err != nil {
		t.Fatal(err)
	}
	_, _, b = e.get("/api/v1/scheduler")
	st = decode[api.SchedulerStatus](t, b)
	if st.Breaker.State != "open" || !st.Breaker.Since.Equal(since) || st.Breaker.Reason != "20 of 20 calls failed" || st.Breaker.FailureRate != 1 {
		t.Fatalf("open breaker: %s", b)
	}
	if !strings.Contains(string(b), `"since":"2026-11-30T12:00:00Z"`) {
		t.Fatalf("since is not RFC 3339 UTC: %s", b)
	}
	_, _, m := e.get("/metrics")
	for _, want := range []string{`messaging_breaker_state{provider="default",state="open"} 1`, `messaging_breaker_state{provider="default",state="closed"} 0`, `messaging_breaker_trips_total{provider="default"} 3`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
