package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	pool  *pgxpool.Pool
	store *store.Store
	rdb   *redis.Client
	sink  *sink.Sink
	url   string
}

func newEnv(t *testing.T, respond sink.Responder) *env {
	t.Helper()
	_, pool, st := testenv.MigratedStore(t)
	s := sink.New(respond, nil)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{pool: pool, store: st, rdb: testenv.NewRedis(t), sink: s, url: srv.URL}
}

// start builds a Service over the env's sink, runs it (see engine) and
// stops it when the test ends.
func (e *env) start(t *testing.T, cfg delivery.Config) *engine {
	t.Helper()
	return e.startWith(t, cfg, nil)
}

// startWith is start with a circuit breaker seam (nil: none).
func (e *env) startWith(t *testing.T, cfg delivery.Config, gate delivery.Gate) *engine {
	t.Helper()
	return e.startFull(t, cfg, gate, nil)
}

// startFull is start with a circuit breaker seam and a tick announcer
// (nil: none).
func (e *env) startFull(t *testing.T, cfg delivery.Config, gate delivery.Gate, ticks delivery.TickAnnouncer) *engine {
	t.Helper()
	g := newEngine(t, e.params(t, cfg, gate, ticks))
	g.start()
	return g
}

// params are the Params of a Service over the env's sink and stores, with
// test defaults: a budget no test spends, hour-long ticks, a minute's lease.
func (e *env) params(t *testing.T, cfg delivery.Config, gate delivery.Gate, ticks delivery.TickAnnouncer) delivery.Params {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Budget == 0 {
		cfg.Budget = 100000
	}
	if cfg.Lease == 0 {
		cfg.Lease = time.Minute
	}
	hook := webhook.New(webhook.Options{URL: e.url, Timeout: 5 * time.Second, AuthHeader: "x-ins-auth-key", MaxConns: cfg.Concurrency})
	t.Cleanup(hook.Close)
	return delivery.Params{Config: cfg, Store: e.store, Sender: hook, Cache: cache.New(e.rdb, time.Hour), Log: testenv.Logger(t), Breaker: gate, Ticks: ticks}
}

// engine is a Service driven as a worker drives it, through Run, with its
// test signals: the test waits on what the engine says it did, never on
// time. It keeps the running sums of the claim, record and hand-back
// signals it has read; every claimed row ends in one record or one
// hand-back, so once the engine settles the sums balance.
type engine struct {
	*delivery.Service
	t   *testing.T
	sig *delivery.TestSignals
	ran chan struct{} // closed when Run returned

	stopOnce sync.Once
	// claims are the sizes of the claims read so far; claimed, recorded
	// and handedBack are the sums of the signals read so far.
	claims                        []int
	claimed, recorded, handedBack int
}

// signalRoom is each signal channel's buffer: more signals than any test
// here emits, so none is dropped.
const signalRoom = 1 << 16

// newEngine builds a Service from p with test signals; start runs it.
func newEngine(t *testing.T, p delivery.Params) *engine {
	t.Helper()
	p.Signals = &delivery.TestSignals{
		Claimed: make(chan int, signalRoom), Recorded: make(chan int, signalRoom), HandedBack: make(chan int, signalRoom),
		Idle: make(chan struct{}, signalRoom), RecordFailed: make(chan struct{}, signalRoom), RecordRecovered: make(chan struct{}, signalRoom),
	}
	return &engine{Service: delivery.New(p), t: t, sig: p.Signals, ran: make(chan struct{})}
}

// start runs the Service's Run as a worker does, until stop (which the
// test's cleanup calls too).
func (g *engine) start() {
	go func() { defer close(g.ran); g.Run(context.Background()) }()
	g.t.Cleanup(g.stop)
}

// stop drains the service and waits until Run returned, every unstarted
// row was handed back and every outcome recorded.
func (g *engine) stop() {
	g.t.Helper()
	g.stopOnce.Do(func() {
		g.Drain()
		recv(g.t, g.ran, 30*time.Second, "Run to return")
		g.Wait()
	})
}

// dispatch runs one tick as the worker's dispatch task does and waits
// until it settled; it returns how many claimed rows were recorded in it
// (calls made, and invalid rows failed without a call).
func (g *engine) dispatch() int {
	g.t.Helper()
	before := g.recorded
	if err := g.HandleDispatch(context.Background(), nil); err != nil {
		g.t.Fatal(err)
	}
	g.settle()
	return g.recorded - before
}

// settle waits until the producer is idle (it claims nothing more until
// woken) and every row it claimed was recorded or handed back.
func (g *engine) settle() {
	g.t.Helper()
	recv(g.t, g.sig.Idle, 30*time.Second, "the producer to go idle")
	g.take()
	for g.recorded+g.handedBack < g.claimed {
		g.recorded += recv(g.t, g.sig.Recorded, 30*time.Second,
			fmt.Sprintf("outcomes to be recorded: %d claimed, %d recorded, %d handed back", g.claimed, g.recorded, g.handedBack))
	}
	if g.recorded+g.handedBack != g.claimed {
		g.t.Fatalf("%d rows claimed, but %d recorded and %d handed back", g.claimed, g.recorded, g.handedBack)
	}
}

// take adds the signals already sent to the sums.
func (g *engine) take() {
	for {
		select {
		case n := <-g.sig.Claimed:
			g.claims = append(g.claims, n)
			g.claimed += n
		case n := <-g.sig.HandedBack:
			g.handedBack += n
		case n := <-g.sig.Recorded:
			g.recorded += n
		default:
			return
		}
	}
}

// awaitRecorded waits for the next record batch and returns its size.
func (g *engine) awaitRecorded(what string) int {
	g.t.Helper()
	n := recv(g.t, g.sig.Recorded, 30*time.Second, what)
	g.recorded += n
	return n
}

// awaitHandedBack waits for the next hand-back and returns its size.
func (g *engine) awaitHandedBack(what string) int {
	g.t.Helper()
	n := recv(g.t, g.sig.HandedBack, 30*time.Second, what)
	g.handedBack += n
	return n
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

func (e *env) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) message(t *testing.T, id string) store.Message {
	t.Helper()
	m, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendsRecordsAndCaches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 3)
	g := e.start(t, delivery.Config{Concurrency: 2, MaxAttempts: 3})

	if n := g.dispatch(); n != 3 {
		t.Fatalf("dispatched %d, want 3", n)
	}
	got := e.sink.Accepted()
	if len(got) != 3 {
		t.Fatalf("sink got %d", len(got))
	}
	for _, id := range ids {
		m := e.message(t, id)
		if m.Status != messaging.StatusSent || m.RemoteMessageID == "" || m.SentAt == nil || m.Attempts != 1 {
			t.Fatalf("row %+v", m)
		}
		raw, err := e.rdb.Get(context.Background(), "message:sent:"+id).Bytes()
		if err != nil {
			t.Fatalf("cache: %v", err)
		}
		var rec map[string]string
		if err := json.Unmarshal(raw, &rec); err != nil || len(rec) != 2 {
			t.Fatalf("cache value %s: %v", raw, err)
		}
		if rec["message_id"] != m.RemoteMessageID {
			t.Fatalf("cached id %q, row %q", rec["message_id"], m.RemoteMessageID)
		}
		at, err := time.Parse(time.RFC3339, rec["sent_at"])
		if err != nil || !at.Equal(*m.SentAt) {
			t.Fatalf("cached sent_at %q (%v), row %s", rec["sent_at"], err, m.SentAt)
		}
		ttl := e.rdb.TTL(context.Background(), "message:sent:"+id).Val()
		if ttl <= 0 || ttl > time.Hour {
			t.Fatalf("ttl %s", ttl)
		}
		e.rdb.Del(context.Background(), "message:sent:"+id)
	}
}

func TestRetriesWithBackoffThenFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	ids := testenv.InsertMessages(t, e.pool, 1)
	// The policy decides the delay; the test checks the engine asks it
	// with the attempt number and keeps the row until the delay is over,
	// with no clock to race: the delays are hours, and the test makes the
	// row due by hand.
	var mu sync.Mutex
	var asked []int
	delay := func(attempt int, retryAfter time.Duration) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, attempt)
		if retryAfter != 0 {
			t.Errorf("retryAfter %s without a Retry-After header", retryAfter)
		}
		return time.Duration(attempt) * time.Hour
	}
	g := e.start(t, delivery.Config{Concurrency: 1, MaxAttempts: 3, RetryDelay: delay})

	for attempt := 1; attempt <= 3; attempt++ {
		before := time.Now()
		if n := g.dispatch(); n != 1 {
			t.Fatalf("attempt %d: dispatched %d, want 1", attempt, n)
		}
		after := time.Now()
		m := e.message(t, ids[0])
		if m.Attempts != attempt {
			t.Fatalf("attempts %d, want %d", m.Attempts, attempt)
		}
		if attempt == 3 {
			if m.Status != messaging.StatusFailed || !strings.Contains(m.LastError, "gave up after 3 attempts") {
				t.Fatalf("after the last attempt: %+v", m)
			}
			break
		}
		d := time.Duration(attempt) * time.Hour
		if m.Status != messaging.StatusPending || m.NextAttemptAt.Before(before.Add(d).Truncate(time.Microsecond)) || m.NextAttemptAt.After(after.Add(d)) {
			t.Fatalf("attempt %d: status %s, next at %s, want %s after the call", attempt, m.Status, m.NextAttemptAt, d)
		}
		if n := g.dispatch(); n != 0 {
			t.Fatalf("retried before its delay: dispatched %d", n)
		}
		e.exec(t, `UPDATE messages SET next_attempt_at = now() WHERE id = $1`, ids[0])
	}
	if calls := e.sink.Calls()[ids[0]]; calls != 3 {
		t.Fatalf("webhook called %d times, want 3", calls)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(asked) != "[1 2]" {
		t.Fatalf("policy asked for attempts %v, want [1 2]", asked)
	}
}

// The default policy honours Retry-After and otherwise backs off
// exponentially within Backoff's jitter range.
func TestExponentialBackoffPolicy(t *testing.T) {
	t.Parallel()
	p := delivery.ExponentialBackoff(time.Second, 10*time.Second)
	if got := p(3, 7*time.Second); got != 7*time.Second {
		t.Fatalf("with Retry-After 7s: %s", got)
	}
	for range 100 {
		if got := p(3, 0); got < 2*time.Second || got >= 4*time.Second {
			t.Fatalf("attempt 3: %s, want in [2s, 4s)", got)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, n int) bool {
		if n > 1 {
			return false
		}
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	ids := testenv.InsertMessages(t, e.pool, 1)
	g := e.start(t, delivery.Config{Concurrency: 1, MaxAttempts: 5, BackoffBase: time.Millisecond})
	before := time.Now()
	if n := g.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want 1", n)
	}
	m := e.message(t, ids[0])
	if wait := m.NextAttemptAt.Sub(before); m.Status != messaging.StatusPending || wait < 2500*time.Millisecond || wait > 4*time.Second {
		t.Fatalf("status %s, next attempt in %s, want about 3s", m.Status, wait)
	}
	if !strings.Contains(m.LastError, "429") {
		t.Fatalf("last_error %q", m.LastError)
	}
}

func TestClientErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
		http.Error(w, "invalid phone number", http.StatusBadRequest)
		return true
	})
	ids := testenv.InsertMessages(t, e.pool, 1)
	g := e.start(t, delivery.Config{Concurrency: 1, MaxAttempts: 5})
	if n := g.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want 1", n)
	}
	m := e.message(t, ids[0])
	if m.Status != messaging.StatusFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "400") || !strings.Contains(m.LastError, "invalid phone number") {
		t.Fatalf("%+v", m)
	}
}

func TestCacheOutageDoesNotBlockSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 2)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	p := e.params(t, delivery.Config{Budget: 10, Concurrency: 2, MaxAttempts: 3}, nil, nil)
	p.Cache = cache.New(dead, time.Hour)
	g := newEngine(t, p)
	g.start()
	if n := g.dispatch(); n != 2 {
		t.Fatalf("dispatched %d, want 2", n)
	}
	for _, id := range ids {
		if m := e.message(t, id); m.Status != messaging.StatusSent {
			t.Fatalf("%s: %s", id, m.Status)
		}
	}
	if got := g.Stats().CacheErrors; got != 2 {
		t.Fatalf("cache errors counted: %d, want 2", got)
	}
}

// Many services dispatching at once (as many worker processes would) share
// one tick's budget exactly.
func TestBudgetHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	testenv.InsertMessages(t, e.pool, 60)
	engines := make([]*engine, 4)
	for i := range engines {
		engines[i] = e.start(t, delivery.Config{Budget: 7, Concurrency: 3, MaxAttempts: 3})
	}
	dispatchAtOnce(t, engines)
	if got := len(e.sink.Accepted()); got != 7 {
		t.Fatalf("one tick sent %d messages, budget is 7", got)
	}
}

// Several services drain thousands of rows concurrently; each row reaches
// the webhook exactly once.
func TestExactlyOnceAcrossWorkers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow")
	}
	e := newEnv(t, nil)
	const total = 3000
	ids := testenv.InsertMessages(t, e.pool, total)
	engines := make([]*engine, 4)
	for i := range engines {
		engines[i] = e.start(t, delivery.Config{Budget: total, Concurrency: 8, MaxAttempts: 3})
	}
	dispatchAtOnce(t, engines)
	calls := e.sink.Calls()
	if len(calls) != total {
		t.Fatalf("webhook saw %d distinct messages, want %d", len(calls), total)
	}
	for _, id := range ids {
		if calls[id] != 1 {
			t.Fatalf("%s delivered %d times", id, calls[id])
		}
	}
	var sent int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'sent' AND is_sent`).Scan(&sent); err != nil || sent != total {
		t.Fatalf("sent rows %d (%v)", sent, err)
	}
	e.rdb.Del(context.Background(), keys(ids)...)
}

// dispatchAtOnce starts a tick on every engine at the same moment, as the
// dispatch tasks of one tick reach several worker processes, and waits
// until each has settled.
func dispatchAtOnce(t *testing.T, engines []*engine) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(engines))
	for _, g := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- g.HandleDispatch(context.Background(), nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range engines {
		g.settle()
	}
}

func keys(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = cache.Key(id)
	}
	return out
}

// Drain lets the calls in flight finish and record, and claims nothing more.
func TestDrainFinishesInFlightAndClaimsNoMore(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, _ sink.Delivery, _ int) bool {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	ids := testenv.InsertMessages(t, e.pool, 5)
	g := e.start(t, delivery.Config{Concurrency: 2, MaxAttempts: 3})
	if err := g.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	recv(t, entered, 10*time.Second, "the first call")
	recv(t, entered, 10*time.Second, "the second call")
	g.Drain()
	close(release)
	g.stop()
	for i, id := range ids {
		m := e.message(t, id)
		want := messaging.StatusPending
		if i < 2 {
			want = messaging.StatusSent
		}
		if m.Status != want {
			t.Fatalf("message %d: %s, want %s", i, m.Status, want)
		}
		if i >= 2 && m.Attempts != 0 {
			t.Fatalf("untouched message %d counts %d attempts", i, m.Attempts)
		}
	}
}

// Abort cuts calls that outlive the grace period; their rows are due again
// at once, with the attempt counted.
func TestAbortReturnsCutCallsAtOnce(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, _ sink.Delivery, _ int) bool {
		entered <- struct{}{}
		<-r.Context().Done()
		return true
	})
	ids := testenv.InsertMessages(t, e.pool, 1)
	g := e.start(t, delivery.Config{Concurrency: 1, MaxAttempts: 3, BackoffBase: time.Hour})
	if err := g.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	recv(t, entered, 10*time.Second, "the call")
	g.Abort()
	g.stop()
	m := e.message(t, ids[0])
	if m.Status != messaging.StatusPending || m.Attempts != 1 || time.Until(m.NextAttemptAt) > time.Second {
		t.Fatalf("%+v", m)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, maxD := time.Second, 10*time.Second
	cases := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.999999, 999999500 * time.Nanosecond},
		{2, 0, time.Second},
		{3, 0, 2 * time.Second},
		{4, 0.5, 6 * time.Second},
		{10, 0, 5 * time.Second},
		{1000, 0, 5 * time.Second},
	}
	for _, tc := range cases {
		if got := delivery.Backoff(tc.attempt, base, maxD, tc.jitter); got != tc.want {
			t.Errorf("Backoff(%d, %v) = %s, want %s", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}

// A 410 pauses sending for everyone, with a reason, and keeps the message.
func TestGonePausesSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
		w.WriteHeader(http.StatusGone)
		return true
	})
	ids := testenv.InsertMessages(t, e.pool, 5)
	g := e.start(t, delivery.Config{Concurrency: 1, MaxAttempts: 3})
	if n := g.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want only the call answered 410", n)
	}
	ctl, err := e.store.Control(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ctl.Running || !strings.Contains(ctl.PausedReason, "410") {
		t.Fatalf("control %+v", ctl)
	}
	if calls := len(e.sink.Calls()); calls != 1 {
		t.Fatalf("%d calls after the 410; sending should stop at the first", calls)
	}
	if m := e.message(t, ids[0]); m.Status != messaging.StatusPending || time.Until(m.NextAttemptAt) > time.Second {
		t.Fatalf("message after 410: %+v", m)
	}
}

// Rows other systems insert directly may break the rules: they fail at once
// with a clear reason, never reach the webhook, and do not hold up the rows
// behind them.
func TestInvalidRowsFailWithoutACall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.pool.Exec(context.Background(), `
INSERT INTO messages (id, content, phone_number, created_at) VALUES
  ('bad-phone', 'hello', '05551111111', now() - interval '3 minutes'),
  ('bad-content', repeat('x', 200), '+905551111111', now() - interval '2 minutes'),
  ('blank', '   ', '+905551111111', now() - interval '1 minute'),
  ('good', 'hello', '+905551111111', now())`)
	if err != nil {
		t.Fatal(err)
	}
	g := e.start(t, delivery.Config{Concurrency: 2, MaxAttempts: 3, MaxContent: 160})
	if n := g.dispatch(); n != 4 {
		t.Fatalf("dispatched %d, want the 4 rows", n)
	}
	for id, want := range map[string]string{"bad-phone": "phone_number", "bad-content": "at most 160", "blank": "blank"} {
		m := e.message(t, id)
		if m.Status != messaging.StatusFailed || !strings.Contains(m.LastError, want) || !strings.HasPrefix(m.LastError, "not sent: invalid message") {
			t.Errorf("%s: %+v", id, m)
		}
	}
	if m := e.message(t, "good"); m.Status != messaging.StatusSent {
		t.Fatalf("good row: %+v", m)
	}
	if calls := e.sink.Calls(); len(calls) != 1 || calls["good"] != 1 {
		t.Fatalf("webhook calls %v, want only the good row", calls)
	}
	e.rdb.Del(context.Background(), cache.Key("good"))
}

// Rows inserted around the API are sent to their number's E.164 form, and
// a row for a country ALLOWED_COUNTRIES leaves out fails with reason
// country_not_allowed and no call.
func TestInsertedRowsNormalisedAndCountriesChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, err := e.pool.Exec(context.Background(), `
INSERT INTO messages (id, content, phone_number, created_at) VALUES
  ('formatted', 'hello', '+1 (201) 555-0123', now() - interval '2 minutes'),
  ('turkey', 'hello', '+905012345678', now() - interval '1 minute'),
  ('britain', 'hello', '+447400123456', now())`)
	if err != nil {
		t.Fatal(err)
	}
	g := e.start(t, delivery.Config{Concurrency: 2, MaxAttempts: 3, MaxContent: 160,
		Countries: message.NewCountries([]string{"US", "GB"})})
	if n := g.dispatch(); n != 3 {
		t.Fatalf("%d rows recorded, want 3", n)
	}
	if m := e.message(t, "turkey"); m.Status != messaging.StatusFailed || m.LastError != "country_not_allowed" {
		t.Fatalf("turkey: %+v", m)
	}
	to := map[string]string{}
	for _, d := range e.sink.Accepted() {
		to[d.IdempotencyKey] = d.To
	}
	if len(to) != 2 || to["formatted"] != "+12015550123" || to["britain"] != "+447400123456" {
		t.Fatalf("webhook calls %v, want formatted in E.164 and britain", to)
	}
	for _, id := range []string{"formatted", "britain"} {
		if m := e.message(t, id); m.Status != messaging.StatusSent {
			t.Fatalf("%s: %+v", id, m)
		}
	}
	if err := e.rdb.Del(context.Background(), cache.Key("formatted"), cache.Key("britain")).Err(); err != nil {
		t.Fatal(err)
	}
}

// Workers run one driver; dispatch tasks only start the tick and wake it.
// Many dispatches at once still drain through that one loop, and the driver
// stops when the service drains.
func TestHandleDispatchWakesTheDriver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 50)
	g := e.start(t, delivery.Config{Concurrency: 4, MaxAttempts: 3})
	for range 5 {
		if err := g.HandleDispatch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		recv(t, e.sink.Received(), 10*time.Second, fmt.Sprintf("delivery %d", i+1))
	}
	g.stop()
	if st := g.Stats(); st.Dispatches != 5 || st.Ticks != 1 {
		t.Fatalf("stats %+v: want 5 dispatches and 1 refill", st)
	}
	// Run returns only after the outcomes of its calls are recorded.
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'sent'`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("%d rows sent (%v), want 50", n, err)
	}
	e.rdb.Del(context.Background(), keys(ids)...)
}

// A 410 stops this process dead: once it has read the 410, no further call
// starts, although the other calls of the same burst free their slots
// right after and rows wait claimed in the queue. The receiver holds the
// oldest message's answer until every call of the first burst has arrived,
// answers it 410, and holds the other answers until the engine has
// recorded the 410 (so it has read it); then no request may arrive.
func TestGoneStopsEveryCallAfterIt(t *testing.T) {
	t.Parallel()
	const concurrency, backlog = 8, 40
	var (
		mu      sync.Mutex
		arrived int
		goneAt  time.Time // when the 410 was answered
		late    []string  // requests that arrived after it
		oldest  string
		burst   = make(chan struct{})
		others  = make(chan struct{}) // closed once the 410 is recorded
	)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, d sink.Delivery, _ int) bool {
		mu.Lock()
		if !goneAt.IsZero() {
			late = append(late, d.IdempotencyKey)
		}
		arrived++
		if arrived == concurrency {
			close(burst)
		}
		first := d.IdempotencyKey == oldest
		mu.Unlock()
		if first {
			select {
			case <-burst:
			case <-time.After(10 * time.Second): // the test fails on the count
			}
			mu.Lock()
			goneAt = time.Now()
			mu.Unlock()
			w.WriteHeader(http.StatusGone)
			return true
		}
		select {
		case <-others:
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
		return false
	})
	ids := testenv.InsertMessages(t, e.pool, backlog)
	mu.Lock()
	oldest = ids[0]
	mu.Unlock()
	g := e.start(t, delivery.Config{Concurrency: concurrency, MaxAttempts: 3})
	if err := g.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if n := g.awaitRecorded("the 410 to be recorded"); n != 1 {
		t.Fatalf("the first batch recorded %d outcomes, want only the 410", n)
	}
	close(others)
	g.settle()
	mu.Lock()
	defer mu.Unlock()
	if goneAt.IsZero() {
		t.Fatal("the receiver never answered 410")
	}
	if len(late) != 0 {
		t.Fatalf("%d requests arrived after the 410 was answered: %v", len(late), late)
	}
	if g.recorded != concurrency || arrived != concurrency {
		t.Fatalf("%d calls recorded, %d arrived; want only the first burst of %d", g.recorded, arrived, concurrency)
	}
	ctl, err := e.store.Control(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ctl.Running || !strings.Contains(ctl.PausedReason, "410") {
		t.Fatalf("control %+v", ctl)
	}
	// The rows claimed ahead were handed back, uncounted; none is left
	// claimed.
	var sending, untouched int
	if err := e.pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE status = 'sending'), count(*) FILTER (WHERE status = 'pending' AND attempts = 0) FROM messages`).Scan(&sending, &untouched); err != nil {
		t.Fatal(err)
	}
	if sending != 0 || untouched != backlog-concurrency {
		t.Fatalf("%d rows left sending, %d untouched; want 0 and %d", sending, untouched, backlog-concurrency)
	}
}

// The producer claims deep ahead only while calls are fast. When calls turn
// slow at once, a queued row waits MaxQueueWait, and the producer hands
// back every queued row beyond Concurrency: what it keeps starts within one
// call's time, inside its lease.
func TestSlowCallsHandBackTheDeepQueue(t *testing.T) {
	t.Parallel()
	const concurrency, fast, backlog = 2, 4, 30
	var calls atomic.Int64
	hold := make(chan struct{})
	e := newEnv(t, func(_ http.ResponseWriter, r *http.Request, _ sink.Delivery, _ int) bool {
		if calls.Add(1) > fast {
			select {
			case <-hold:
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}
		return false
	})
	ids := testenv.InsertMessages(t, e.pool, backlog)
	defer e.rdb.Del(context.Background(), keys(ids)...)
	g := e.start(t, delivery.Config{Concurrency: concurrency, QueueSize: 8, MaxQueueWait: 200 * time.Millisecond, MaxAttempts: 3})
	if err := g.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// Two calls hang and two rows wait behind them; the rest went back.
	if n := g.awaitHandedBack("the deep queue to be handed back"); n == 0 {
		t.Fatal("an empty hand-back")
	}
	var sending int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'sending'`).Scan(&sending); err != nil {
		t.Fatal(err)
	}
	if sending != 2*concurrency {
		t.Fatalf("%d rows still claimed after the hand-back, want %d (in calls and next in the queue)", sending, 2*concurrency)
	}
	close(hold)
	g.settle()
	var sent int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'sent' AND attempts = 1`).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if calls := e.sink.Calls(); sent != backlog || len(calls) != backlog {
		t.Fatalf("%d sent on the first attempt, %d distinct messages received; want %d", sent, len(calls), backlog)
	}
	for id, n := range e.sink.Calls() {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
}

// announceFunc hands announced ticks to a function, in process: the Redis
// channel that carries them between processes is tested in internal/wake.
type announceFunc func()

func (f announceFunc) TickStarted(context.Context) error { f(); return nil }

var _ delivery.TickAnnouncer = announceFunc(nil)

// A worker that took no dispatch task sends as soon as another process
// announces a fresh tick; a duplicate tick announces nothing.
func TestFreshTickWakesTheOtherWorkers(t *testing.T) {
	t.Parallel()
	const backlog = 20
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, backlog)
	defer e.rdb.Del(context.Background(), keys(ids)...)
	other := e.start(t, delivery.Config{Concurrency: 4, MaxAttempts: 3})

	var announced atomic.Int64
	// The taker only starts ticks; it never runs a producer of its own.
	taker := newEngine(t, e.params(t, delivery.Config{Concurrency: 4, MaxAttempts: 3}, nil, announceFunc(func() {
		announced.Add(1)
		other.Wake()
	})))
	for range 2 {
		if err := taker.HandleDispatch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := announced.Load(); n != 1 {
		t.Fatalf("%d ticks announced for one fresh tick and one duplicate", n)
	}
	other.settle()
	if st := other.Stats(); st.Sent != backlog {
		t.Fatalf("the other worker sent %d of %d", st.Sent, backlog)
	}
	if st := taker.Stats(); st.Sent != 0 || st.Claims != 0 {
		t.Fatalf("the taker claimed: %+v", st)
	}
}
