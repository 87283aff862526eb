package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Right after a start, before the live scheduler has published its entry
// to Redis, next_run_at already says when the first tick comes: the start
// plus CRON_INTERVAL.
func TestSchedulerNextRunRightAfterStart(t *testing.T) {
	t.Parallel()
	const interval = time.Hour
	e := newEnv(t, "CRON_INTERVAL=3600")
	// Stopped before the scheduler starts, so it never publishes an entry
	// until the start below.
	if status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/scheduler/stop"}); status != 200 {
		t.Fatalf("stop: %d %s", status, b)
	}
	startScheduler(t, e)
	testenv.Eventually(t, 15*time.Second, "the scheduler's heartbeat", func() bool {
		_, _, b := e.get("/api/v1/scheduler")
		st := decode[api.SchedulerStatus](t, b)
		if st.NextRunAt != nil {
			t.Fatalf("next_run_at %v while stopped", st.NextRunAt)
		}
		return st.SchedulerAlive
	})

	before := time.Now()
	status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/scheduler/start"})
	started := decode[api.SchedulerStatus](t, b)
	_, _, b = e.get("/api/v1/scheduler")
	read := decode[api.SchedulerStatus](t, b)
	after := time.Now()
	if status != 200 || !started.Running || !started.SchedulerAlive {
		t.Fatalf("start: %d %+v", status, started)
	}
	// The first tick is one interval after the start, give or take the
	// scheduler's sync (100 ms here) and the clocks of this host and the
	// database, which are the same machine.
	const slack = 2 * time.Second
	for name, st := range map[string]api.SchedulerStatus{"POST start": started, "GET right after": read} {
		if st.NextRunAt == nil {
			t.Fatalf("%s: next_run_at is null while running with a live scheduler", name)
		}
		if lo, hi := before.Add(interval-slack), after.Add(interval+slack); st.NextRunAt.Before(lo) || st.NextRunAt.After(hi) {
			t.Fatalf("%s: next_run_at %v, want between %v and %v", name, st.NextRunAt, lo, hi)
		}
	}
}
