package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fiber's limiter keeps its counters in an in-memory store whose
		// expiry sweeper runs for the life of the process (fiber offers
		// no way to stop it), one per api.New.
		goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/internal/memory.(*Storage).gc"),
		// Process-wide clocks started once and never stopped: fiber's
		// timestamp for that store, and fasthttp's Date header.
		// (Its name depends on inlining, which -race changes.)
		goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/utils.StartTimeStampUpdater.func1.1"),
		goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/internal/memory.New.StartTimeStampUpdater.func1.1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// After Shutdown, fasthttp's idle-worker sweeper notices the stop
		// only when its sleep (10 s) ends; it does exit then.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

const testKey = "test-api-key-0123456789abcdef"

// env is one API over a database and a queue of the test's own.
type env struct {
	t    *testing.T
	srv  *api.Server
	pool *pgxpool.Pool
	st   *store.Store
	rdb  *redis.Client
	cfg  config.Config
}

// newEnv builds an API the way cmd/api does, over real PostgreSQL and
// Redis; vars (KEY=VALUE) adjust its configuration.
func newEnv(t *testing.T, vars ...string) *env {
	t.Helper()
	uri, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	cfg := testenv.Config(t, uri, testenv.Queue(t), vars...)
	return newEnvFrom(t, cfg, pool, st, rdb, nil)
}

// newEnvFrom builds an API over connections the test already has (two
// APIs over one database, say); logs, when not nil, receives its log as
// JSON lines.
func newEnvFrom(t *testing.T, cfg config.Config, pool *pgxpool.Pool, st *store.Store, rdb *redis.Client, logs io.Writer) *env {
	t.Helper()
	log := testenv.Logger(t)
	if logs != nil {
		log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := api.New(cfg, &app.Deps{Pool: pool, Redis: rdb, Store: st, Log: log})
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return &env{t: t, srv: srv, pool: pool, st: st, rdb: rdb, cfg: cfg}
}

// req describes one request; headers are "Name: value" lines.
type req struct {
	method, path, body string
	headers            []string
}

func jsonReq(method, path, body string, headers ...string) req {
	return req{method: method, path: path, body: body, headers: append([]string{"Content-Type: application/json"}, headers...)}
}

func bearer(key string) string { return "Authorization: Bearer " + key }

// do runs r through fiber's app.Test and returns the status, headers and
// body.
func (e *env) do(r req) (int, http.Header, []byte) {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	for _, h := range r.headers {
		k, v, _ := strings.Cut(h, ":")
		hr.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := e.srv.App().Test(hr, 20_000)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// get, post and postJSON are shorthands for do.
func (e *env) get(path string, headers ...string) (int, http.Header, []byte) {
	return e.do(req{method: http.MethodGet, path: path, headers: headers})
}

func (e *env) postJSON(path, body string, headers ...string) (int, http.Header, []byte) {
	return e.do(jsonReq(http.MethodPost, path, body, headers...))
}

// decode parses a JSON body into T, failing the test on anything else.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

// wantError checks an error answer: status, JSON content type, our shape
// and code.
func wantError(t *testing.T, status int, h http.Header, b []byte, wantStatus int, wantCode string) api.ErrorBody {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", status, wantStatus, b)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, b)
	}
	e := decode[api.ErrorResponse](t, b)
	if e.Error.Code != wantCode || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q and a message", e.Error, wantCode)
	}
	for _, leak := range []string{"goroutine", ".go:", "panic", "pgx", "SQLSTATE"} {
		if strings.Contains(string(b), leak) {
			t.Fatalf("error body leaks internals (%q): %s", leak, b)
		}
	}
	return e.Error
}

func (e *env) count(where string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM messages WHERE "+where, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// markSent marks ids sent at the given time, as a worker would.
func (e *env) markSent(at time.Time, ids ...string) {
	e.t.Helper()
	e.exec(`UPDATE messages SET status = 'sent', is_sent = TRUE, sent_at = $1,
        remote_message_id = 'remote-' || id, attempts = 1 WHERE id = ANY($2)`, at, ids)
}
