package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/scheduler"
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
	sch, err := scheduler.New(asynq.RedisClientOpt{Addr: e.cfg.RedisAddr(), Password: e.cfg.RedisPassword, DB: e.cfg.RedisDB}, e.st, scheduler.Config{
		Interval:     e.cfg.CronIntervalDuration(),
		Queue:        e.cfg.Queue,
		TaskTimeout:  time.Minute,
		SyncInterval: 100 * time.Millisecond,
		LogLevel:     e.cfg.LogLevel,
	}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sch.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("scheduler: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("scheduler did not stop within 30 s")
			}
		})
	})
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
