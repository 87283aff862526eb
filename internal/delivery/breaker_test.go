package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// gate is a breaker seam the test sets: how many calls a claim may make,
// whether each call may start, and what the batches reported.
type gate struct {
	mu     sync.Mutex
	admit  int // -1: all
	allow  bool
	allows int // calls asked right before they start
	admits int // claims asked
	// closesAt, when set, is when an open gate (admit 0) closes by itself,
	// as the breaker's cooldown ends; Admit tells it as Until.
	closesAt time.Time
	reports  []breaker.Tally
}

var _ delivery.Gate = (*gate)(nil)

func (g *gate) Admit(_ context.Context, n int) breaker.Admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.admits++
	if g.admit == 0 && !g.closesAt.IsZero() && !time.Now().Before(g.closesAt) {
		g.admit = -1
	}
	if g.admit < 0 {
		return breaker.Admission{N: n}
	}
	if g.admit == 0 {
		if !g.closesAt.IsZero() {
			return breaker.Admission{Until: g.closesAt}
		}
		return breaker.Admission{Until: time.Now().Add(time.Hour)}
	}
	return breaker.Admission{N: min(n, g.admit)}
}

// Allow answers like the real breaker: once it refuses a call, the next
// claim is admitted nothing either (it is open).
func (g *gate) Allow(context.Context) (bool, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.allows++
	if !g.allow {
		g.admit = 0
	}
	return g.allow, false
}

func (g *gate) Observe(bool) {}

func (g *gate) Report(_ context.Context, t breaker.Tally) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reports = append(g.reports, t)
}

func (g *gate) total() breaker.Tally {
	g.mu.Lock()
	defer g.mu.Unlock()
	var t breaker.Tally
	for _, r := range g.reports {
		t = t.Add(r)
	}
	return t
}

// While the breaker is open nothing is claimed; when it opens between a
// claim and the call, the executor is refused and every claimed row goes
// back through the producer's hand-back, with no attempt charged and no
// call made.
func TestOpenBreakerStartsNoCallAndChargesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 6)

	g := &gate{admit: 0}
	eng := e.startWith(t, delivery.Config{Concurrency: 3, MaxAttempts: 3}, g)
	if n := eng.dispatch(); n != 0 || len(eng.claims) != 0 {
		t.Fatalf("dispatch while open: %d recorded in %d claims", n, len(eng.claims))
	}

	g.mu.Lock()
	g.admit, g.allow = -1, false // admitted, then opened before the call
	g.mu.Unlock()
	if n := eng.dispatch(); n != 0 {
		t.Fatalf("dispatch after the trip: %d recorded", n)
	}
	for _, id := range ids {
		if m := e.message(t, id); m.Status != messaging.StatusPending || m.Attempts != 0 {
			t.Fatalf("%s is %s with %d attempts, want pending and uncharged", id, m.Status, m.Attempts)
		}
	}
	if calls := len(e.sink.Calls()); calls != 0 {
		t.Fatalf("%d calls while open", calls)
	}
	// One claim fills the slots and the queue (3 + 3): all 6 go back.
	if st := eng.Stats(); st.Released != 6 || st.Claims != 1 || eng.handedBack != 6 {
		t.Fatalf("released %d in %d claims, want the 6 claimed in 1", st.Released, st.Claims)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.allows == 0 {
		t.Fatal("no executor asked the breaker before a call")
	}
}

// The batches report calls and retryable failures; 400s count as calls
// only, and the retry schedule sets the next attempt.
func TestBatchesReportToTheBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, d sink.Delivery, _ int) bool {
		switch d.Content {
		case "message 1", "message 2":
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case "message 3":
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		return false
	})
	ids := testenv.InsertMessages(t, e.pool, 6)
	g := &gate{admit: -1, allow: true}
	sched := retry.MustParse("1h")
	eng := e.startWith(t, delivery.Config{Concurrency: 2, MaxAttempts: 3, RetryDelay: delivery.Scheduled(sched)}, g)
	before := time.Now()
	if n := eng.dispatch(); n != 6 {
		t.Fatalf("dispatched %d, want 6", n)
	}
	got := g.total()
	if got.Calls != 6 || got.Failures != 2 || got.Probe != breaker.NoProbe || got.LastError == "" {
		t.Fatalf("reported %+v, want 6 calls, 2 failures", got)
	}
	m := e.message(t, ids[0])
	if wait := m.NextAttemptAt.Sub(before); m.Status != messaging.StatusPending || wait < 48*time.Minute || wait > 73*time.Minute {
		t.Fatalf("retry due in %s (%s), want the schedule's 1h ±20%%", wait, m.Status)
	}
}

// A worker's producer that found the breaker open claims nothing, and wakes
// by itself when the cooldown ends, without waiting for the next tick; it
// does not spin meanwhile.
func TestOpenBreakerWakesTheProducerAtTheCooldown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 5)
	g := &gate{admit: 0, allow: true, closesAt: time.Now().Add(300 * time.Millisecond)}
	eng := e.startWith(t, delivery.Config{Concurrency: 2, MaxAttempts: 3}, g)
	if err := eng.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		recv(t, e.sink.Received(), 10*time.Second, fmt.Sprintf("delivery %d after the cooldown", i+1))
	}
	eng.stop()
	g.mu.Lock()
	admits := g.admits
	g.mu.Unlock()
	// One refused claim, one at the cooldown's end, a few while draining
	// the 5 rows: nothing like a loop.
	if admits > 8 {
		t.Fatalf("%d admissions asked for 5 messages: the producer spun while open", admits)
	}
	for _, id := range ids {
		if m := e.message(t, id); m.Status != messaging.StatusSent || m.Attempts != 1 {
			t.Fatalf("%s is %s with %d attempts", id, m.Status, m.Attempts)
		}
	}
	e.rdb.Del(context.Background(), keys(ids)...)
}
