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

func (e *env) service(t *testing.T, cfg delivery.Config) *delivery.Service {
	t.Helper()
	return e.serviceWith(t, cfg, nil)
}

// serviceWith builds a Service with a circuit breaker seam (nil: none).
func (e *env) serviceWith(t *testing.T, cfg delivery.Config, gate delivery.Gate) *delivery.Service {
	t.Helper()
	return e.serviceFull(t, cfg, gate, nil)
}

// serviceFull builds a Service with a circuit breaker seam and a tick
// announcer (nil: none).
func (e *env) serviceFull(t *testing.T, cfg delivery.Config, gate delivery.Gate, ticks delivery.TickAnnouncer) *delivery.Service {
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
	return delivery.New(delivery.Params{Config: cfg, Store: e.store, Sender: hook, Cache: cache.New(e.rdb, time.Hour), Log: testenv.Logger(t), Breaker: gate, Ticks: ticks})
}

// runDriver runs svc's driver as a worker does; the stop it returns drains
// the service and waits until Run returned and every outcome is recorded.
func runDriver(t *testing.T, svc *delivery.Service) (stop func()) {
	t.Helper()
	ran := make(chan struct{})
	go func() { defer close(ran); svc.Run(context.Background()) }()
	return func() {
		t.Helper()
		svc.Drain()
		recv(t, ran, 10*time.Second, "Run to return")
		svc.Wait()
	}
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
	svc := e.service(t, delivery.Config{Concurrency: 2, MaxAttempts: 3})

	n, err := svc.Dispatch(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("dispatch: %d %v", n, err)
	}
	got := e.sink.Accepted()
	if len(got) != 3 {
		t.Fatalf("sink got %d", len(got))
	}
	for _, id := range ids {
		m := e.message(t, id)
		if m.Status != store.StatusSent || m.RemoteMessageID == "" || m.SentAt == nil || m.Attempts != 1 {
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
	svc := e.service(t, delivery.Config{Concurrency: 1, MaxAttempts: 3, RetryDelay: delay})

	for attempt := 1; attempt <= 3; attempt++ {
		before := time.Now()
		n, err := svc.Dispatch(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("attempt %d: dispatched %d (%v), want 1", attempt, n, err)
		}
		after := time.Now()
		m := e.message(t, ids[0])
		if m.Attempts != attempt {
			t.Fatalf("attempts %d, want %d", m.Attempts, attempt)
		}
		if attempt == 3 {
			if m.Status != store.StatusFailed || !strings.Contains(m.LastError, "gave up after 3 attempts") {
				t.Fatalf("after the last attempt: %+v", m)
			}
			break
		}
		d := time.Duration(attempt) * time.Hour
		if m.Status != store.StatusPending || m.NextAttemptAt.Before(before.Add(d).Truncate(time.Microsecond)) || m.NextAttemptAt.After(after.Add(d)) {
			t.Fatalf("attempt %d: status %s, next at %s, want %s after the call", attempt, m.Status, m.NextAttemptAt, d)
		}
		n, err = svc.Dispatch(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("retried before its delay: dispatched %d (%v)", n, err)
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
	svc := e.service(t, delivery.Config{Concurrency: 1, MaxAttempts: 5, BackoffBase: time.Millisecond})
	before := time.Now()
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := e.message(t, ids[0])
	if wait := m.NextAttemptAt.Sub(before); m.Status != store.StatusPending || wait < 2500*time.Millisecond || wait > 4*time.Second {
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
	svc := e.service(t, delivery.Config{Concurrency: 1, MaxAttempts: 5})
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := e.message(t, ids[0])
	if m.Status != store.StatusFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "400") || !strings.Contains(m.LastError, "invalid phone number") {
		t.Fatalf("%+v", m)
	}
}

func TestCacheOutageDoesNotBlockSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 2)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	hook := webhook.New(webhook.Options{URL: e.url, Timeout: 5 * time.Second, MaxConns: 2})
	t.Cleanup(hook.Close)
	svc := delivery.New(delivery.Params{
		Config: delivery.Config{Budget: 10, Interval: time.Hour, Concurrency: 2, MaxAttempts: 3},
		Store:  e.store, Sender: hook, Cache: cache.New(dead, time.Hour), Log: testenv.Logger(t),
	})
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if m := e.message(t, id); m.Status != store.StatusSent {
			t.Fatalf("%s: %s", id, m.Status)
		}
	}
	if got := svc.Stats().CacheErrors; got != 2 {
		t.Fatalf("cache errors counted: %d, want 2", got)
	}
}

// Many services dispatching at once (as many worker processes would) share
// one tick's budget exactly.
func TestBudgetHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	testenv.InsertMessages(t, e.pool, 60)
	var wg sync.WaitGroup
	for range 4 {
		svc := e.service(t, delivery.Config{Budget: 7, Concurrency: 3, MaxAttempts: 3})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Dispatch(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
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
	var wg sync.WaitGroup
	for range 4 {
		svc := e.service(t, delivery.Config{Budget: total, Concurrency: 8, MaxAttempts: 3})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Dispatch(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
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
	svc := e.service(t, delivery.Config{Concurrency: 2, MaxAttempts: 3})
	done := make(chan error, 1)
	go func() { _, err := svc.Dispatch(context.Background()); done <- err }()
	recv(t, entered, 10*time.Second, "the first call")
	recv(t, entered, 10*time.Second, "the second call")
	svc.Drain()
	close(release)
	if err := recv(t, done, 10*time.Second, "dispatch to return"); err != nil {
		t.Fatal(err)
	}
	svc.Wait()
	for i, id := range ids {
		m := e.message(t, id)
		want := store.StatusPending
		if i < 2 {
			want = store.StatusSent
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
	svc := e.service(t, delivery.Config{Concurrency: 1, MaxAttempts: 3, BackoffBase: time.Hour})
	done := make(chan error, 1)
	go func() { _, err := svc.Dispatch(context.Background()); done <- err }()
	recv(t, entered, 10*time.Second, "the call")
	svc.Abort()
	if err := recv(t, done, 10*time.Second, "dispatch to return"); err != nil {
		t.Fatal(err)
	}
	m := e.message(t, ids[0])
	if m.Status != store.StatusPending || m.Attempts != 1 || time.Until(m.NextAttemptAt) > time.Second {
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
	svc := e.service(t, delivery.Config{Concurrency: 1, MaxAttempts: 3})
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
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
	if m := e.message(t, ids[0]); m.Status != store.StatusPending || time.Until(m.NextAttemptAt) > time.Second {
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
	svc := e.service(t, delivery.Config{Concurrency: 2, MaxAttempts: 3, MaxContent: 160})
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"bad-phone": "phone_number", "bad-content": "at most 160", "blank": "blank"} {
		m := e.message(t, id)
		if m.Status != store.StatusFailed || !strings.Contains(m.LastError, want) || !strings.HasPrefix(m.LastError, "not sent: invalid message") {
			t.Errorf("%s: %+v", id, m)
		}
	}
	if m := e.message(t, "good"); m.Status != store.StatusSent {
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
	svc := e.service(t, delivery.Config{Concurrency: 2, MaxAttempts: 3, MaxContent: 160,
		Countries: message.NewCountries([]string{"US", "GB"})})
	if _, err := svc.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, "turkey"); m.Status != store.StatusFailed || m.LastError != "country_not_allowed" {
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
		if m := e.message(t, id); m.Status != store.StatusSent {
			t.Fatalf("%s: %+v", id, m)
		}
	}
	e.rdb.Del(context.Background(), cache.Key("formatted"), cache.Key("britain"))
}

// Workers run one driver; dispatch tasks only start the tick and wake it.
// Many dispatches at once still drain through that one loop, and the driver
// stops when the service drains.
func TestHandleDispatchWakesTheDriver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ids := testenv.InsertMessages(t, e.pool, 50)
	svc := e.service(t, delivery.Config{Concurrency: 4, MaxAttempts: 3})
	stop := runDriver(t, svc)
	for range 5 {
		if err := svc.HandleDispatch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		recv(t, e.sink.Received(), 10*time.Second, fmt.Sprintf("delivery %d", i+1))
	}
	stop()
	if st := svc.Stats(); st.Dispatches != 5 || st.Ticks != 1 {
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
// starts, although the other calls of the same burst free their slots at
// the same moment and rows wait claimed in the queue. The receiver holds
// the oldest message's answer until every call of the first burst has
// arrived (or 5 s), answers it 410, and holds the other answers until
// 50 ms after that, so the 410 is read first; then no request may arrive.
func TestGoneStopsEveryCallAfterIt(t *testing.T) {
	t.Parallel()
	const concurrency, backlog = 8, 40
	var (
		mu       sync.Mutex
		arrived  int
		goneAt   time.Time // when the 410 was answered
		late     []string  // requests that arrived after it
		burst    = make(chan struct{})
		answered = make(chan struct{})
		oldest   string
	)
	ids := make(chan []string, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, d sink.Delivery, _ int) bool {
		mu.Lock()
		if !goneAt.IsZero() {
			late = append(late, d.IdempotencyKey)
		}
		arrived++
		if arrived == concurrency {
			close(burst)
		}
		if oldest == "" {
			oldest = recv(t, ids, 5*time.Second, "the message ids")[0]
		}
		first := d.IdempotencyKey == oldest
		mu.Unlock()
		if first {
			select {
			case <-burst:
			case <-time.After(5 * time.Second):
			}
			time.Sleep(50 * time.Millisecond) //nolint:forbidigo // the receiver holds its answer
			mu.Lock()
			goneAt = time.Now()
			mu.Unlock()
			w.WriteHeader(http.StatusGone)
			close(answered)
			return true
		}
		select {
		case <-answered:
			time.Sleep(50 * time.Millisecond) //nolint:forbidigo // answer after the 410 was read
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
		return false
	})
	ids <- testenv.InsertMessages(t, e.pool, backlog)
	svc := e.service(t, delivery.Config{Concurrency: concurrency, MaxAttempts: 3})
	n, err := svc.Dispatch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if goneAt.IsZero() {
		t.Fatal("the receiver never answered 410")
	}
	if len(late) != 0 {
		t.Fatalf("%d requests arrived after the 410 was answered: %v", len(late), late)
	}
	if n != concurrency || arrived != concurrency {
		t.Fatalf("%d calls started, %d arrived; want only the first burst of %d", n, arrived, concurrency)
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
	svc := e.service(t, delivery.Config{Concurrency: concurrency, QueueSize: 8, MaxQueueWait: 200 * time.Millisecond, MaxAttempts: 3})
	done := make(chan error, 1)
	go func() { _, err := svc.Dispatch(context.Background()); done <- err }()

	sending := func() int {
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'sending'`).Scan(&n); err != nil {
			t.Error(err)
		}
		return n
	}
	// Two calls hang and two rows wait behind them; the rest went back.
	testenv.Eventually(t, 5*time.Second, "the deep queue handed back", func() bool {
		return svc.Stats().Released > 0 && sending() == 2*concurrency
	})
	close(hold)
	if err := recv(t, done, 30*time.Second, "the drain"); err != nil {
		t.Fatal(err)
	}
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
	other := e.service(t, delivery.Config{Concurrency: 4, MaxAttempts: 3})
	defer runDriver(t, other)()

	var announced atomic.Int64
	taker := e.serviceFull(t, delivery.Config{Concurrency: 4, MaxAttempts: 3}, nil, announceFunc(func() {
		announced.Add(1)
		other.Wake()
	}))
	// The taker only starts ticks; it never runs a producer of its own.
	for range 2 {
		if err := taker.HandleDispatch(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := announced.Load(); n != 1 {
		t.Fatalf("%d ticks announced for one fresh tick and one duplicate", n)
	}
	testenv.Eventually(t, 10*time.Second, "the other worker sending the backlog", func() bool {
		return other.Stats().Sent == backlog
	})
	if st := taker.Stats(); st.Sent != 0 || st.Claims != 0 {
		t.Fatalf("the taker claimed: %+v", st)
	}
}
