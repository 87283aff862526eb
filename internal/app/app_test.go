package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// system runs schedulers and workers in this process, each with its own
// connections as separate processes would have.
type system struct {
	t      *testing.T
	cfg    config.Config
	deps   *app.Deps
	sink   *sink.Sink
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newSystem(t *testing.T, vars ...string) *system {
	t.Helper()
	uri := testenv.NewDatabase(t)
	s := &system{t: t, cancel: func() {}}
	var hookURL string
	s.sink, hookURL = e2e.NewReceiver(t, nil)
	base := []string{"WEBHOOK_URL=" + hookURL, "METRICS_PORT=0", "CRON_INTERVAL=1", "WEBHOOK_TIMEOUT=2"}
	s.cfg = testenv.Config(t, uri, testenv.Queue(t), append(base, vars...)...)
	s.deps = s.open()
	return s
}

func (s *system) open() *app.Deps {
	d, err := app.Open(context.Background(), s.cfg, testenv.Logger(s.t), 8, nil)
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	// Stop the programs before their connections close, as a process would.
	s.t.Cleanup(func() { s.stop(); d.Close() })
	return d
}

func (s *system) run(name string, f func(ctx context.Context) error) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(ctx); err != nil {
			s.t.Errorf("%s: %v", name, err)
		}
	}()
	prev := s.cancel
	s.cancel = func() { cancel(); prev() }
	return cancel
}

func (s *system) worker() *app.Worker { return s.workerWith(nil) }

// workerWith starts a worker whose delivery engine reports to sig.
func (s *system) workerWith(sig *delivery.TestSignals) *app.Worker {
	w := app.NewWorker(s.cfg, s.open(), app.Tuning{PollInterval: 50 * time.Millisecond, BackoffBase: 50 * time.Millisecond, Signals: sig})
	s.run("worker", w.Run)
	return w
}

// recv receives from ch or fails the test after timeout.
func recv[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
		panic("unreachable")
	}
}

func (s *system) scheduler() context.CancelFunc {
	sch, err := app.NewScheduler(s.cfg, s.open(), 100*time.Millisecond)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.run("scheduler", sch.Run)
}

func (s *system) stop() {
	s.cancel()
	s.wg.Wait()
}

func (s *system) count(status string) int {
	var n int
	if err := s.deps.Pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = $1`, status).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func (s *system) dropCache(ids []string) {
	for _, id := range ids {
		if err := s.deps.Redis.Del(context.Background(), cache.Key(id)).Err(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Two scheduler replicas each enqueue a dispatch per interval; the sends per
// interval must still stay within MESSAGE_FETCH_LIMIT.
func TestTwoSchedulersKeepTheBudget(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "MESSAGE_FETCH_LIMIT=3", "CRON_INTERVAL=1")
	ids := testenv.InsertMessages(t, s.deps.Pool, 200)
	defer s.dropCache(ids)
	start := time.Now()
	s.scheduler()
	s.scheduler()
	w1, w2 := s.worker(), s.worker()
	dispatches := func() (d, ticks int64) {
		a, b := w1.Service().Stats(), w2.Service().Stats()
		return a.Dispatches + b.Dispatches, a.Ticks + b.Ticks
	}

	// Wait until both replicas have enqueued several ticks each.
	testenv.Eventually(t, 20*time.Second, "8 dispatches", func() bool { d, _ := dispatches(); return d >= 8 })
	s.stop()
	elapsed := time.Since(start)
	got := len(s.sink.Accepted())
	d, ticks := dispatches()
	t.Logf("%d dispatch tasks, %d ticks, %d deliveries in %s", d, ticks, got, elapsed.Round(time.Millisecond))
	// Ticks are at least 0.9 s apart (delivery.Service.minGap).
	if maxTicks := int64(elapsed/(900*time.Millisecond)) + 1; ticks > maxTicks {
		t.Fatalf("%d ticks refilled the budget in %s; at most %d may", ticks, elapsed, maxTicks)
	}
	if d <= ticks {
		t.Fatalf("the second scheduler enqueued nothing: %d dispatches, %d ticks", d, ticks)
	}
	if int64(got) > 3*ticks {
		t.Fatalf("%d deliveries over %d ticks: more than MESSAGE_FETCH_LIMIT=3 per tick", got, ticks)
	}
	// Oldest first: the accepted ones are the first ids in age order.
	accepted := map[string]bool{}
	for _, d := range s.sink.Accepted() {
		accepted[d.IdempotencyKey] = true
	}
	for _, id := range ids[:got] {
		if !accepted[id] {
			t.Fatalf("%s was skipped: not oldest first", id)
		}
	}
}

// Three worker processes and two schedulers drain a backlog; every message
// reaches the webhook exactly once.
func TestWorkersDeliverEachMessageOnce(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow")
	}
	s := newSystem(t, "MESSAGE_FETCH_LIMIT=5000", "CRON_INTERVAL=1", "MAX_CONCURRENT_JOBS=4")
	const total = 2000
	ids := testenv.InsertMessages(t, s.deps.Pool, total)
	defer s.dropCache(ids)
	s.scheduler()
	s.scheduler()
	for range 3 {
		s.worker()
	}
	for i := range total {
		recv(t, s.sink.Received(), 60*time.Second, fmt.Sprintf("delivery %d of %d", i+1, total))
	}
	s.stop()
	if n := s.count("sent"); n != total {
		t.Fatalf("%d messages recorded sent, want %d", n, total)
	}
	calls := s.sink.Calls()
	for _, id := range ids {
		if calls[id] != 1 {
			t.Fatalf("%s reached the webhook %d times", id, calls[id])
		}
	}
}

// Stopping sending through the shared switch stops deliveries; starting it
// resumes them.
func TestStopAndStart(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "MESSAGE_FETCH_LIMIT=2", "CRON_INTERVAL=1")
	ids := testenv.InsertMessages(t, s.deps.Pool, 20)
	defer s.dropCache(ids)
	s.scheduler()
	sig := &delivery.TestSignals{Claimed: make(chan int, 1<<12)}
	w := s.workerWith(sig)
	for i := range 2 {
		recv(t, s.sink.Received(), 10*time.Second, fmt.Sprintf("delivery %d", i+1))
	}

	if _, err := s.deps.Store.SetRunning(context.Background(), false, ""); err != nil {
		t.Fatal(err)
	}
	// Calls in flight end and are recorded (no row is left sending). Every
	// claim that returned rows did so before its rows were sent, so its
	// signal is in the channel by then: drop those.
	testenv.Eventually(t, 10*time.Second, "calls in flight to end", func() bool { return s.count("sending") == 0 })
	stoppedAt := len(s.sink.Accepted())
	for len(sig.Claimed) > 0 {
		<-sig.Claimed
	}
	for len(s.sink.Received()) > 0 {
		<-s.sink.Received()
	}
	// A dispatch that reaches the worker while sending is stopped (one the
	// scheduler enqueued before it read the switch) claims nothing, even
	// with budget left: each of three ends in a claim of no row, so no call
	// can start.
	if _, err := s.deps.Pool.Exec(context.Background(), `UPDATE dispatch_control SET budget = 100`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Service().HandleDispatch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if n := recv(t, sig.Claimed, 10*time.Second, fmt.Sprintf("claim %d while stopped", i+1)); n != 0 {
			t.Fatalf("a claim while stopped returned %d rows", n)
		}
	}
	if got := len(s.sink.Accepted()); got != stoppedAt {
		t.Fatalf("sent %d messages while stopped", got-stoppedAt)
	}

	if _, err := s.deps.Store.SetRunning(context.Background(), true, ""); err != nil {
		t.Fatal(err)
	}
	recv(t, s.sink.Received(), 10*time.Second, "deliveries to resume")
}
