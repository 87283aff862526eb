package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/scheduler"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, _, b := e.get("/healthz")
	if status != 200 || decode[api.Health](t, b).Status != "ok" {
		t.Fatalf("/healthz: %d %s", status, b)
	}
	status, _, b = e.get("/readyz")
	r := decode[api.Readiness](t, b)
	if status != 200 || r.Status != "ok" || r.Checks["postgres"] != "ok" || r.Checks["redis"] != "ok" {
		t.Fatalf("/readyz: %d %s", status, b)
	}
}

// readyz names the dependency that does not answer.
func TestReadinessNamesTheFailedDependency(t *testing.T) {
	t.Parallel()
	uri, pool, st := testenv.MigratedStore(t)
	deadPool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deadPool.Close)
	deadRedis := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = deadRedis.Close() })
	liveRedis := testenv.NewRedis(t)
	cfg := testenv.Config(t, uri, testenv.Queue(t))

	cases := []struct {
		name     string
		deps     app.Deps
		pg, rdis string
	}{
		{"postgres down", app.Deps{Pool: deadPool, Redis: liveRedis, Store: store.New(deadPool)}, "unavailable", "ok"},
		{"redis down", app.Deps{Pool: pool, Redis: deadRedis, Store: st}, "ok", "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.deps.Log = testenv.Logger(t)
			srv := api.New(cfg, &c.deps)
			defer func() { _ = srv.Close() }()
			e := &env{t: t, srv: srv}
			status, _, b := e.get("/readyz")
			r := decode[api.Readiness](t, b)
			if status != 503 || r.Status != "unavailable" || r.Checks["postgres"] != c.pg || r.Checks["redis"] != c.rdis {
				t.Fatalf("/readyz: %d %s", status, b)
			}
			if status, _, _ := e.get("/healthz"); status != 200 {
				t.Fatalf("/healthz %d while a dependency is down", status)
			}
		})
	}
}

// An internal failure is a JSON 500 that says nothing about the cause.
func TestInternalErrorIsOpaqueJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pool.Close()
	status, h, b := e.get("/api/v1/scheduler")
	wantError(t, status, h, b, 500, "internal")
	if strings.Contains(string(b), "closed") {
		t.Fatalf("500 body leaks the cause: %s", b)
	}
}

func TestSchedulerStartStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "CRON_INTERVAL=7", "MESSAGE_FETCH_LIMIT=3")
	status, _, b := e.get("/api/v1/scheduler")
	st := decode[api.SchedulerStatus](t, b)
	if status != 200 || !st.Running || st.IntervalSeconds != 7 || st.BatchSize != 3 || st.LastRunAt != nil || st.PausedReason != "" {
		t.Fatalf("initial status: %d %s", status, b)
	}

	steps := []struct {
		path string
		want bool
	}{
		{"/api/v1/scheduler/stop", false},
		{"/api/v1/scheduler/stop", false}, // idempotent
		{"/api/v1/scheduler/start", true},
		{"/api/v1/scheduler/start", true}, // idempotent
		{"/api/v1/scheduler/stop", false},
	}
	for i, s := range steps {
		status, _, b := e.do(req{method: http.MethodPost, path: s.path})
		got := decode[api.SchedulerStatus](t, b)
		if status != 200 || got.Running != s.want || got.IntervalSeconds != 7 || got.BatchSize != 3 {
			t.Fatalf("step %d %s: %d %s", i, s.path, status, b)
		}
		if s.want == false && got.NextRunAt != nil {
			t.Fatalf("step %d: next_run_at %v while stopped", i, got.NextRunAt)
		}
		ctl, err := e.st.Control(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ctl.Running != s.want {
			t.Fatalf("step %d: dispatch_control.running = %v, want %v", i, ctl.Running, s.want)
		}
		_, _, b = e.get("/api/v1/scheduler")
		if decode[api.SchedulerStatus](t, b).Running != s.want {
			t.Fatalf("step %d: GET disagrees: %s", i, b)
		}
	}

	// last_run_at reflects the shared control row.
	e.exec(`UPDATE dispatch_control SET last_tick_at = '2025-01-02T03:04:05.123456Z'`)
	_, _, b = e.get("/api/v1/scheduler")
	got := decode[api.SchedulerStatus](t, b)
	if got.LastRunAt == nil || !got.LastRunAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)) {
		t.Fatalf("last_run_at = %v", got.LastRunAt)
	}
}

// next_run_at comes from the live scheduler replicas of our queue, and
// scheduler_alive from their heartbeat in PostgreSQL.
func TestSchedulerNextRunFromLiveScheduler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "CRON_INTERVAL=3600")
	_, _, b := e.get("/api/v1/scheduler")
	if st := decode[api.SchedulerStatus](t, b); st.NextRunAt != nil || st.SchedulerAlive {
		t.Fatalf("next_run_at %v, scheduler_alive %v with no scheduler running", st.NextRunAt, st.SchedulerAlive)
	}
	stop := startScheduler(t, e)
	var st api.SchedulerStatus
	testenv.Eventually(t, 15*time.Second, "next_run_at from the scheduler entry", func() bool {
		_, _, b := e.get("/api/v1/scheduler")
		st = decode[api.SchedulerStatus](t, b)
		return st.NextRunAt != nil
	})
	if d := time.Until(*st.NextRunAt); d <= 0 || d > time.Hour+time.Minute {
		t.Fatalf("next_run_at %v is not within the next CRON_INTERVAL", st.NextRunAt)
	}
	if !st.SchedulerAlive {
		t.Fatal("scheduler_alive false while the scheduler runs")
	}
	// Stopped: no next run, whatever Redis still holds.
	_, _, b = e.do(req{method: http.MethodPost, path: "/api/v1/scheduler/stop"})
	if st := decode[api.SchedulerStatus](t, b); st.NextRunAt != nil {
		t.Fatalf("next_run_at %v after stop", st.NextRunAt)
	}
	// Started again with the scheduler gone: running, but nobody ticks,
	// and the status says so.
	e.do(req{method: http.MethodPost, path: "/api/v1/scheduler/start"})
	stop()
	testenv.Eventually(t, 15*time.Second, "scheduler_alive false after the scheduler stopped", func() bool {
		_, _, b := e.get("/api/v1/scheduler")
		st = decode[api.SchedulerStatus](t, b)
		return !st.SchedulerAlive
	})
	if !st.Running || st.NextRunAt != nil {
		t.Fatalf("running %v, next_run_at %v with no scheduler alive", st.Running, st.NextRunAt)
	}
}

func TestCreateMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name, content, phone, stored, encoding string
		segments                               int
	}{
		{"ascii", "Hello there", "+905551111111", "+905551111111", "GSM-7", 1},
		{"exactly 160 multibyte characters", strings.Repeat("ç", 160), "+1 (201) 555-0123", "+12015550123", "UCS-2", 3},
		{"line breaks and a tab", "line one\nline two\ttabbed", "+44 7400 123456", "+447400123456", "UCS-2", 1},
		{"161 GSM-7 septets", strings.Repeat("€", 80) + "a", "+90 501 234 56 78", "+905012345678", "GSM-7", 2},
		{"a test range", "€", "+1 555 010 0001", "+15550100001", "GSM-7", 1},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"content": %q, "phone_number": %q}`, c.content, c.phone)
		before := time.Now().Add(-time.Second)
		status, h, b := e.do(jsonReq(http.MethodPost, "/api/v1/messages", body, "Content-Type: application/json; charset=utf-8"))
		if status != 201 {
			t.Fatalf("%s: %d %s", c.name, status, b)
		}
		m := decode[api.MessageCreated](t, b)
		if _, err := uuid.Parse(m.ID); err != nil {
			t.Fatalf("%s: id %q is not a UUID", c.name, m.ID)
		}
		if m.Content != c.content || m.PhoneNumber != c.stored || m.Status != "pending" || m.CreatedAt.Before(before) || m.CreatedAt.After(time.Now().Add(time.Second)) ||
			m.Encoding != c.encoding || m.Segments != c.segments {
			t.Fatalf("%s: %+v", c.name, m)
		}
		if h.Get("Location") != "/api/v1/messages/"+m.ID {
			t.Fatalf("%s: Location %q", c.name, h.Get("Location"))
		}
		got, err := e.st.Get(context.Background(), m.ID)
		if err != nil || got.Content != c.content || got.PhoneNumber != c.stored || got.Status != messaging.StatusPending || got.Attempts != 0 {
			t.Fatalf("%s: stored %+v, %v", c.name, got, err)
		}
		if !got.NextAttemptAt.Before(time.Now().Add(time.Second)) {
			t.Fatalf("%s: not due now: %v", c.name, got.NextAttemptAt)
		}
	}
}

// Every rejection is a 4xx JSON error and stores nothing.
func TestCreateMessageRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "MAX_CONTENT_LENGTH=20")
	ok := `"phone_number": "+905551111111"`
	cases := []struct {
		name, body string
		headers    []string // replace the JSON Content-Type when set
		status     int
		code       string
		field      string
	}{
		{"malformed JSON", `{"content": "hi", ` + ok, nil, 400, "invalid_json", ""},
		{"not JSON", `hello`, nil, 400, "invalid_json", ""},
		{"empty body", ``, nil, 400, "invalid_json", ""},
		{"array", `[]`, nil, 400, "invalid_json", ""},
		{"two objects", `{"content": "hi", ` + ok + `} {}`, nil, 400, "invalid_json", ""},
		{"number content", `{"content": 5, ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"unknown field", `{"content": "hi", ` + ok + `, "colour": 1}`, nil, 400, "unknown_field", "colour"},
		{"id with a space", `{"id": "x y", "content": "hi", ` + ok + `}`, nil, 422, "validation_failed", "id"},
		{"missing content", `{` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"null content", `{"content": null, ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"empty content", `{"content": "", ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"blank content", `{"content": "  \n ", ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"NUL in content", `{"content": "a\u0000b", ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"content one over the limit", `{"content": "` + strings.Repeat("ş", 21) + `", ` + ok + `}`, nil, 422, "validation_failed", "content"},
		{"missing phone", `{"content": "hi"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone without plus", `{"content": "hi", "phone_number": "905551111111"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone leading zero", `{"content": "hi", "phone_number": "+05551111111"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone too short", `{"content": "hi", "phone_number": "+1234567"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone too long", `{"content": "hi", "phone_number": "+1234567890123456"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone too short for +1, formatted", `{"content": "hi", "phone_number": "+1 (201) 555-012"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone too long for +90, formatted", `{"content": "hi", "phone_number": "+90 555 111 1111 1"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone with an extension", `{"content": "hi", "phone_number": "+1 201 555 0123 ext. 7"}`, nil, 422, "validation_failed", "phone_number"},
		{"phone with letters", `{"content": "hi", "phone_number": "+90555abc1111"}`, nil, 422, "validation_failed", "phone_number"},
		{"text/plain", `{"content": "hi", ` + ok + `}`, []string{"Content-Type: text/plain"}, 415, "unsupported_media_type", ""},
		{"form", `content=hi`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
		{"no Content-Type", `{"content": "hi", ` + ok + `}`, []string{"X-None: 1"}, 415, "unsupported_media_type", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := jsonReq(http.MethodPost, "/api/v1/messages", c.body)
			if c.headers != nil {
				r.headers = c.headers
			}
			ee := &env{t: t, srv: e.srv}
			status, h, b := ee.do(r)
			got := wantError(t, status, h, b, c.status, c.code)
			if got.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", got.Field, c.field, b)
			}
		})
	}
	if n := e.count("TRUE"); n != 0 {
		t.Fatalf("%d messages stored by rejected requests", n)
	}
}

func TestConfigRejectsBadAPISettings(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"MAX_CONTENT_LENGTH=0", "MAX_CONTENT_LENGTH=256", "MAX_CONTENT_LENGTH=x", "RATE_LIMIT=-1"} {
		_, err := config.Load([]string{"WEBHOOK_URL=http://example.test/", v})
		name, _, _ := strings.Cut(v, "=")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming %s", v, err, name)
		}
	}
	c, err := config.Load([]string{"WEBHOOK_URL=http://example.test/"})
	if err != nil || c.MaxContentLength != 160 || c.RateLimit != 600 || c.APIKey != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

// mutation is one mutating request and the status it gets when allowed.
type mutation struct {
	name string
	r    func(e *env) req
	ok   int
}

func mutations() []mutation {
	return []mutation{
		{"start", func(*env) req { return req{method: http.MethodPost, path: "/api/v1/scheduler/start"} }, 200},
		{"stop", func(*env) req { return req{method: http.MethodPost, path: "/api/v1/scheduler/stop"} }, 200},
		{"create", func(*env) req {
			return jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "hi", "phone_number": "+905551111111"}`)
		}, 201},
		{"retry", func(e *env) req {
			id := testenv.InsertMessages(e.t, e.pool, 1)[0]
			e.exec(`UPDATE messages SET status = 'failed', attempts = 5 WHERE id = $1`, id)
			return req{method: http.MethodPost, path: "/api/v1/messages/" + id + "/retry"}
		}, 200},
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	t.Run("key set", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "API_KEY="+testKey)
		for _, m := range mutations() {
			for _, bad := range []string{"", "Authorization: Bearer wrong", "Authorization: Bearer " + testKey + "x",
				"Authorization: " + testKey, "Authorization: Basic " + testKey, "Authorization: Bearer"} {
				r := m.r(e)
				if bad != "" {
					r.headers = append(r.headers, bad)
				}
				status, h, b := e.do(r)
				wantError(t, status, h, b, 401, "unauthorized")
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: WWW-Authenticate %q", m.name, h.Get("WWW-Authenticate"))
				}
			}
			for _, good := range []string{bearer(testKey), "Authorization: bearer " + testKey} {
				r := m.r(e)
				r.headers = append(r.headers, good)
				if status, _, b := e.do(r); status != m.ok {
					t.Fatalf("%s with %q: %d %s", m.name, good, status, b)
				}
			}
		}
		// 401s changed nothing: only the authorized create stored a row
		// (plus the rows the retry cases inserted).
		if n := e.count("content = 'hi'"); n != 2 {
			t.Fatalf("%d created messages, want 2 (one per accepted key form)", n)
		}
		if n := e.count("status = 'pending' AND content LIKE 'message %'"); n != 2 {
			t.Fatalf("%d retried messages, want 2", n)
		}
		// Reads of /api/v1 need the key too; health, metrics and the
		// document stay open (TestAccessMatrix covers every route).
		for _, p := range []string{"/api/v1/scheduler", "/api/v1/messages/sent"} {
			status, h, b := e.get(p)
			wantError(t, status, h, b, 401, "unauthorized")
		}
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/swagger/doc.json"} {
			if status, _, b := e.get(p); status != 200 {
				t.Fatalf("GET %s without key: %d %s", p, status, b)
			}
		}
	})
	t.Run("key unset", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		for _, m := range mutations() {
			if status, _, b := e.do(m.r(e)); status != m.ok {
				t.Fatalf("%s without key: %d %s", m.name, status, b)
			}
			r := m.r(e)
			r.headers = append(r.headers, bearer("anything"))
			if status, _, b := e.do(r); status != m.ok {
				t.Fatalf("%s with a key nobody asked for: %d %s", m.name, status, b)
			}
		}
	})
}

func TestGetMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := testenv.InsertMessages(t, e.pool, 4)
	pending, fromDB, fromCache, failed := ids[0], ids[1], ids[2], ids[3]
	sentAt := time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)
	e.markSent(sentAt, fromDB, fromCache)
	e.exec(`UPDATE messages SET status = 'failed', attempts = 5, last_error = 'webhook answered 500' WHERE id = $1`, failed)
	cachedAt := sentAt.Add(time.Millisecond)
	c := cache.New(e.rdb, time.Minute)
	if err := c.PutSent(context.Background(), cache.Sent{ID: fromCache, MessageID: "cached-remote", SentAt: cachedAt}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rdb.Del(context.Background(), cache.Key(fromCache)) })

	status, h, b := e.get("/api/v1/messages/" + pending)
	d := decode[api.MessageDetail](t, b)
	if status != 200 || d.ID != pending || d.Status != "pending" || d.Attempts != 0 || d.RemoteMessageID != nil ||
		d.SentAt != nil || d.LastError != nil || d.Content != "message 1" || d.PhoneNumber == "" || d.CreatedAt.IsZero() {
		t.Fatalf("pending: %d %s", status, b)
	}
	if h.Get(api.HeaderSentRecordSource) != "" {
		t.Fatalf("pending message has a sent record source %q", h.Get(api.HeaderSentRecordSource))
	}
	if !strings.Contains(string(b), `"remote_message_id":null`) || !strings.Contains(string(b), `"sent_at":null`) {
		t.Fatalf("absent values must be null: %s", b)
	}

	status, h, b = e.get("/api/v1/messages/" + fromDB)
	d = decode[api.MessageDetail](t, b)
	if status != 200 || d.Status != "sent" || d.Attempts != 1 || d.RemoteMessageID == nil || *d.RemoteMessageID != "remote-"+fromDB ||
		d.SentAt == nil || !d.SentAt.Equal(sentAt) || h.Get(api.HeaderSentRecordSource) != api.SourceDatabase {
		t.Fatalf("sent, not cached: %d %v %s", status, h, b)
	}

	status, h, b = e.get("/api/v1/messages/" + fromCache)
	d = decode[api.MessageDetail](t, b)
	if status != 200 || d.Status != "sent" || d.RemoteMessageID == nil || *d.RemoteMessageID != "cached-remote" ||
		d.SentAt == nil || !d.SentAt.Equal(cachedAt) || h.Get(api.HeaderSentRecordSource) != api.SourceCache || d.Content != "message 3" {
		t.Fatalf("sent and cached: %d %v %s", status, h, b)
	}

	status, _, b = e.get("/api/v1/messages/" + failed)
	d = decode[api.MessageDetail](t, b)
	if status != 200 || d.Status != "failed" || d.Attempts != 5 || d.LastError == nil || *d.LastError != "webhook answered 500" {
		t.Fatalf("failed: %d %s", status, b)
	}

	for _, p := range []string{uuid.NewString(), strings.Repeat("a", 37), "%ff", "sent%20x"} {
		status, h, b := e.get("/api/v1/messages/" + p)
		wantError(t, status, h, b, 404, "not_found")
	}
	// Paths that routers could read two ways are refused before any route.
	for _, p := range []string{"%00", "a%2Fb"} {
		status, h, b := e.get("/api/v1/messages/" + p)
		wantError(t, status, h, b, 400, "bad_path")
	}
}

// A Redis outage degrades the read to PostgreSQL instead of failing it.
func TestGetMessageWithoutRedis(t *testing.T) {
	t.Parallel()
	uri, pool, st := testenv.MigratedStore(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	cfg := testenv.Config(t, uri, testenv.Queue(t))
	srv := api.New(cfg, &app.Deps{Pool: pool, Redis: dead, Store: st, Log: testenv.Logger(t)})
	t.Cleanup(func() { _ = srv.Close() })
	e := &env{t: t, srv: srv, pool: pool, st: st}
	id := testenv.InsertMessages(t, pool, 1)[0]
	e.markSent(time.Now(), id)
	status, h, b := e.get("/api/v1/messages/" + id)
	d := decode[api.MessageDetail](t, b)
	if status != 200 || d.Status != "sent" || h.Get(api.HeaderSentRecordSource) != api.SourceDatabase {
		t.Fatalf("%d %v %s", status, h, b)
	}
}

func TestRetryMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := testenv.InsertMessages(t, e.pool, 4)
	failed, pending, sending, sent := ids[0], ids[1], ids[2], ids[3]
	e.exec(`UPDATE messages SET status = 'failed', attempts = 5, last_error = 'gave up',
        next_attempt_at = now() + interval '1 day' WHERE id = $1`, failed)
	e.exec(`UPDATE messages SET status = 'sending', attempts = 1, lease_expires_at = now() + interval '1 minute' WHERE id = $1`, sending)
	e.markSent(time.Now(), sent)

	before := time.Now().Add(-time.Second)
	status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/messages/" + failed + "/retry"})
	d := decode[api.MessageDetail](t, b)
	if status != 200 || d.Status != "pending" || d.Attempts != 0 || d.ID != failed || d.LastError == nil {
		t.Fatalf("retry failed: %d %s", status, b)
	}
	m, err := e.st.Get(context.Background(), failed)
	if err != nil || m.Status != messaging.StatusPending || m.Attempts != 0 || m.NextAttemptAt.Before(before) || m.NextAttemptAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("after retry: %+v %v", m, err)
	}

	// Retrying it again: it is pending now.
	for _, id := range []string{failed, pending, sending, sent} {
		status, h, b := e.do(req{method: http.MethodPost, path: "/api/v1/messages/" + id + "/retry"})
		wantError(t, status, h, b, 409, "not_failed")
	}
	status, h, b := e.do(req{method: http.MethodPost, path: "/api/v1/messages/" + uuid.NewString() + "/retry"})
	wantError(t, status, h, b, 404, "not_found")

	if m, _ := e.st.Get(context.Background(), sent); m.Status != messaging.StatusSent {
		t.Fatalf("a 409 changed the sent message: %+v", m)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, r := range []req{
		{method: http.MethodGet, path: "/nope"},
		{method: http.MethodGet, path: "/api/v1"},
		{method: http.MethodGet, path: "/api/v2/scheduler"},
		{method: http.MethodPost, path: "/api/v1/messages/x/y"},
	} {
		status, h, b := e.do(r)
		wantError(t, status, h, b, 404, "not_found")
	}
	for _, r := range []req{
		{method: http.MethodDelete, path: "/api/v1/scheduler"},
		{method: http.MethodGet, path: "/api/v1/scheduler/start"},
		{method: http.MethodPut, path: "/api/v1/messages"},
	} {
		status, h, b := e.do(r)
		wantError(t, status, h, b, 405, "method_not_allowed")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "RATE_LIMIT=3")
	for i := range 3 {
		if status, _, b := e.get("/api/v1/scheduler"); status != 200 {
			t.Fatalf("request %d: %d %s", i, status, b)
		}
	}
	status, h, b := e.get("/api/v1/scheduler")
	wantError(t, status, h, b, 429, "rate_limited")
	if h.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After")
	}
	status, h, b = e.postJSON("/api/v1/messages", `{"content": "hi", "phone_number": "+905551111111"}`)
	wantError(t, status, h, b, 429, "rate_limited")
	// Probes are never limited.
	for range 5 {
		if status, _, _ := e.get("/healthz"); status != 200 {
			t.Fatalf("/healthz limited: %d", status)
		}
		if status, _, _ := e.get("/readyz"); status != 200 {
			t.Fatalf("/readyz limited: %d", status)
		}
	}
	// RATE_LIMIT=0 turns it off.
	off := newEnv(t, "RATE_LIMIT=0")
	for i := range 50 {
		if status, _, _ := off.get("/api/v1/scheduler"); status != 200 {
			t.Fatalf("request %d limited with RATE_LIMIT=0: %d", i, status)
		}
	}
}

var promLine = regexp.MustCompile(`(?m)^messaging_messages\{status="(\w+)"\} (\d+)$`)

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := testenv.InsertMessages(t, e.pool, 6)
	e.markSent(time.Now(), ids[0], ids[1])
	e.exec(`UPDATE messages SET status = 'failed' WHERE id = $1`, ids[2])
	// Put a task in our queue so that asynq knows it.
	client := asynq.NewClientFromRedisClient(e.rdb)
	if _, err := client.Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(e.cfg.Queue)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pending": "3", "sending": "0", "sent": "2", "failed": "1", "expired": "0", "canceled": "0", "suppressed": "0"}
	// asynq's collector lists every queue in the shared Redis; a queue
	// another test deletes mid-scrape can cost one scrape its asynq_*
	// metrics, so poll.
	testenv.Eventually(t, 10*time.Second, "asynq and messaging metrics", func() bool {
		status, h, b := e.get("/metrics")
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: %d %v", status, h)
		}
		text := string(b)
		got := map[string]string{}
		for _, m := range promLine.FindAllStringSubmatch(text, -1) {
			got[m[1]] = m[2]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("messaging_messages = %v, want %v", got, want)
		}
		if !strings.Contains(text, "\nmessaging_sending_running 1\n") || !strings.Contains(text, "go_goroutines") {
			t.Fatalf("missing switch or Go metrics:\n%s", text)
		}
		return strings.Contains(text, fmt.Sprintf(`asynq_queue_size{queue=%q} 1`, e.cfg.Queue))
	})
}

// A create over MAX_SEGMENTS gets 422 on content, with the count, and
// stores nothing; one at the limit is stored.
func TestCreateOverMaxSegments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "MAX_SEGMENTS=1", "MAX_CONTENT_LENGTH=255")
	status, _, b := e.postJSON("/api/v1/messages", fmt.Sprintf(`{"content": %q, "phone_number": "+905551111111"}`, strings.Repeat("a", 161)))
	if status != 422 || !strings.Contains(string(b), `"field":"content"`) || !strings.Contains(string(b), "2 SMS segments") {
		t.Fatalf("161 septets: %d %s", status, b)
	}
	status, _, b = e.postJSON("/api/v1/messages", fmt.Sprintf(`{"content": %q, "phone_number": "+905551111111"}`, strings.Repeat("a", 160)))
	if status != 201 || !strings.Contains(string(b), `"segments":1`) || !strings.Contains(string(b), `"encoding":"GSM-7"`) {
		t.Fatalf("160 septets: %d %s", status, b)
	}
	if n := e.count("TRUE"); n != 1 {
		t.Fatalf("%d rows stored, want 1", n)
	}
}

// startScheduler runs a scheduler for e's queue (syncing every 100 ms) and
// returns the function that stops it and checks it stopped cleanly within
// 30 s; the test's cleanup calls it too, so a test may stop it early.
func startScheduler(t *testing.T, e *env) func() {
	t.Helper()
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
	stop := func() {
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
	}
	t.Cleanup(stop)
	return stop
}
