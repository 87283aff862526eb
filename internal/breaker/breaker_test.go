package breaker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recvTransition waits for the next transition signalled.
func recvTransition(t *testing.T, sig *breaker.TestSignals) breaker.Transition {
	t.Helper()
	select {
	case tr := <-sig.Transition:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no breaker transition within 10 s")
		return breaker.Transition{}
	}
}

// A worker reports healthy calls without a write per batch, and failures
// with the batch that carries them; the shared row trips once.
func TestSharedTripAndBatchedWrites(t *testing.T) {
	t.Parallel()
	_, _, st := testenv.MigratedStore(t)
	ctx := context.Background()
	set := breaker.Settings{Window: 30 * time.Second, MinCalls: 20, FailureRate: 0.5, Cooldown: time.Hour, ProbeTimeout: time.Minute}
	now := time.Now()
	clock := func() time.Time { return now } // the local clock stands still: only forced writes happen
	sig := &breaker.TestSignals{Transition: make(chan breaker.Transition, 10)}
	b := breaker.New(breaker.Deps{Store: st, Settings: set, Now: clock, Log: testenv.Logger(t), Signals: sig})

	// The first report writes (nothing written yet this life), then healthy
	// batches wait for FlushEvery.
	for range 50 {
		b.Report(ctx, breaker.Tally{Calls: 10})
	}
	row, _, err := st.Breaker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if row.Calls != 10 {
		t.Fatalf("shared calls %d after 50 healthy batches with a still clock, want only the first batch's 10", row.Calls)
	}
	// A batch with failures writes at once, with what waited.
	b.Report(ctx, breaker.Tally{Calls: 5, Failures: 1, LastError: "HTTP 500"})
	if row, _, err = st.Breaker(ctx); err != nil {
		t.Fatal(err)
	}
	if row.Calls != 505 || row.Failures != 1 || row.State != "closed" {
		t.Fatalf("after a failing batch: %+v", row)
	}
	if len(sig.Transition) != 0 {
		t.Fatalf("%d transitions signalled before the trip", len(sig.Transition))
	}
	// Enough failures trip it; the worker's view follows its own write.
	b.Report(ctx, breaker.Tally{Calls: 600, Failures: 600, LastError: "HTTP 503"})
	if row, _, err = st.Breaker(ctx); err != nil {
		t.Fatal(err)
	}
	if row.State != "open" || row.Trips != 1 || row.Reason == "" {
		t.Fatalf("after the outage batch: %+v", row)
	}
	if tr := recvTransition(t, sig); tr.From != breaker.Closed || tr.To != breaker.Open || tr.Reason != row.Reason {
		t.Fatalf("signalled %+v, want closed -> open with the row's reason %q", tr, row.Reason)
	}
	if ok, _ := b.Allow(ctx); ok {
		t.Fatal("a call was allowed while open")
	}
	if a := b.Admit(ctx, 5); a.N != 0 || !a.Until.After(now) {
		t.Fatalf("admitted %+v while open", a)
	}
	st2, err := breaker.Read(ctx, st)
	if err != nil || st2.State != breaker.Open || st2.FailureRate < 0.5 {
		t.Fatalf("read %+v %v", st2, err)
	}
}

// The breaker race: several workers see the trip at once and all ask to
// probe as fast as they can; across all of them there is one probe per
// cooldown.
func TestOneProbePerCooldownAcrossWorkers(t *testing.T) {
	t.Parallel()
	_, _, st := testenv.MigratedStore(t)
	ctx := context.Background()
	const workers = 8
	cooldown := 500 * time.Millisecond
	set := breaker.Settings{Window: 30 * time.Second, MinCalls: 20, FailureRate: 0.5, Cooldown: cooldown, ProbeTimeout: time.Minute}
	bs := make([]*breaker.Breaker, workers)
	// One channel hears the transitions of every worker.
	sig := &breaker.TestSignals{Transition: make(chan breaker.Transition, 1000)}
	for i := range bs {
		bs[i] = breaker.New(breaker.Deps{Store: st, Settings: set, Log: testenv.Logger(t), RefreshEvery: time.Millisecond, Signals: sig})
	}
	// Every worker reports its share of the outage at the same moment.
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() { b.Report(ctx, breaker.Tally{Calls: 5, Failures: 5, LastError: "HTTP 500"}) })
	}
	wg.Wait()
	row, _, err := st.Breaker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != "open" || row.Trips != 1 {
		t.Fatalf("after the concurrent reports: %+v", row)
	}
	if tr := recvTransition(t, sig); tr.From != breaker.Closed || tr.To != breaker.Open || len(sig.Transition) != 0 {
		t.Fatalf("signalled %+v and %d more, want one closed -> open across the workers", tr, len(sig.Transition))
	}

	var (
		mu     sync.Mutex
		probes []time.Time
	)
	run := 4 * cooldown
	start := time.Now()
	for _, b := range bs {
		wg.Go(func() {
			for time.Since(start) < run {
				a := b.Admit(ctx, 8)
				if a.N == 0 {
					continue // asking again at once: the race is the point
				}
				if !a.Probe || a.N != 1 {
					t.Errorf("admitted %+v while the provider is down", a)
					return
				}
				ok, probe := b.Allow(ctx)
				if !ok || !probe {
					t.Errorf("won the probe but Allow said %t %t", ok, probe)
					return
				}
				mu.Lock()
				probes = append(probes, time.Now())
				mu.Unlock()
				b.Report(ctx, breaker.Tally{Probe: breaker.ProbeFailed, LastError: "HTTP 500"})
			}
		})
	}
	wg.Wait()
	if len(probes) < 2 || len(probes) > int(run/cooldown) {
		t.Fatalf("%d probes in %s with a cooldown of %s", len(probes), run, cooldown)
	}
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].Sub(probes[i-1]); gap < cooldown-20*time.Millisecond {
			t.Fatalf("probes %d and %d only %s apart", i-1, i, gap)
		}
	}
	// Each probe was claimed once (open -> half_open) and failed once
	// (half_open -> open), by whichever worker won it.
	for i := range probes {
		claim, fail := recvTransition(t, sig), recvTransition(t, sig)
		if claim.From != breaker.Open || claim.To != breaker.HalfOpen || fail.From != breaker.HalfOpen || fail.To != breaker.Open {
			t.Fatalf("probe %d signalled %+v then %+v", i, claim, fail)
		}
	}
	if n := len(sig.Transition); n != 0 {
		t.Fatalf("%d transitions more than the %d probes made", n, len(probes))
	}
	// A probe success closes it for everyone.
	testenv.Eventually(t, 2*time.Second, "a probe to be due", func() bool { return bs[0].Admit(ctx, 1).Probe })
	if ok, probe := bs[0].Allow(ctx); !ok || !probe {
		t.Fatal("probe not allowed")
	}
	if tr := recvTransition(t, sig); tr.To != breaker.HalfOpen {
		t.Fatalf("signalled %+v, want the probe's claim", tr)
	}
	bs[0].Report(ctx, breaker.Tally{Probe: breaker.ProbeSucceeded})
	if tr := recvTransition(t, sig); tr.From != breaker.HalfOpen || tr.To != breaker.Closed {
		t.Fatalf("signalled %+v, want half_open -> closed", tr)
	}
	for i, b := range bs {
		if ok, _ := b.Allow(ctx); !ok {
			t.Fatalf("worker %d still refuses calls after the probe succeeded", i)
		}
	}
	row, _, err = st.Breaker(ctx)
	if err != nil || row.State != "closed" || row.Trips != 1 {
		t.Fatalf("after the probe succeeded: %+v %v", row, err)
	}
}

// A process stops calling as soon as the failures its executors observed
// would trip the breaker, before the completer's report writes them; the
// report then writes the trip, and counts each call once.
func TestObservedFailuresStopCallsBeforeTheWrite(t *testing.T) {
	t.Parallel()
	_, _, st := testenv.MigratedStore(t)
	ctx := context.Background()
	b := freshBreaker(t, st)
	for range 19 {
		b.Observe(true)
	}
	if ok, _ := b.Allow(ctx); !ok {
		t.Fatal("refused below BREAKER_MIN_CALLS")
	}
	b.Observe(true)
	if ok, _ := b.Allow(ctx); ok {
		t.Fatal("allowed a call after 20 observed failures of 20")
	}
	if a := b.Admit(ctx, 5); a.N != 0 {
		t.Fatalf("admitted %+v after 20 observed failures", a)
	}
	row, _, err := st.Breaker(ctx)
	if err != nil || row.State != "closed" || row.Calls != 0 {
		t.Fatalf("observing wrote the shared row: %+v %v", row, err)
	}
	b.Report(ctx, breaker.Tally{Calls: 20, Failures: 20, LastError: "HTTP 500"})
	if row, _, err = st.Breaker(ctx); err != nil {
		t.Fatal(err)
	}
	if row.State != "open" || row.Trips != 1 {
		t.Fatalf("after the report: %+v", row)
	}
}

// While the report that carries this process's failures is being written,
// they still count: executors must not call on for the length of the
// write. The write is held by a transaction that locks the shared row.
func TestFailuresBeingWrittenStillStopCalls(t *testing.T) {
	t.Parallel()
	_, pool, st := testenv.MigratedStore(t)
	ctx := context.Background()
	b := freshBreaker(t, st)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM delivery_breaker FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b.Observe(true)
	}
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		b.Report(ctx, breaker.Tally{Calls: 20, Failures: 20, LastError: "HTTP 500"})
	}()
	// The report's write waits on the lock; its tally is out of pending.
	testenv.Eventually(t, 5*time.Second, "the report's write to wait on the row lock", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%delivery_breaker%')`).Scan(&waiting)
		return err == nil && waiting
	})
	if ok, _ := b.Allow(ctx); ok {
		t.Error("allowed a call while the 20 failures that trip the breaker were being written")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("the report did not finish after the lock was released")
	}
	row, _, err := st.Breaker(ctx)
	if err != nil || row.State != "open" {
		t.Fatalf("after the report: %+v %v", row, err)
	}
}

// freshBreaker is a breaker over st that trips at 20 calls of which half
// failed and stays open an hour, checked to allow its first call.
func freshBreaker(t *testing.T, st *store.Store) *breaker.Breaker {
	t.Helper()
	set := breaker.Settings{Window: 30 * time.Second, MinCalls: 20, FailureRate: 0.5, Cooldown: time.Hour, ProbeTimeout: time.Minute}
	b := breaker.New(breaker.Deps{Store: st, Settings: set, Log: testenv.Logger(t)})
	if ok, _ := b.Allow(context.Background()); !ok {
		t.Fatal("a fresh breaker refused a call")
	}
	return b
}
