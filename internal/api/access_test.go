package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/console"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

const readKey = "test-read-key-0123456789abcdef"

// The credentials a request of the access matrix carries, in the order of
// its columns.
const (
	credNone = iota
	credWrong
	credRead
	credFull
	credLive
	credSignedOut
	credExpired
	credKinds
)

var credNames = [credKinds]string{"no key", "wrong key", "read key", "full key", "live session", "signed-out session", "expired session"}

// consoleHeaders are what the console's own calls carry with the cookie.
var consoleHeaders = []string{console.HeaderRequest + ": 1", sameOrigin}

// sessionHash is the stored digest of a session cookie's id.
func sessionHash(t *testing.T, cookie string) []byte {
	t.Helper()
	v := strings.TrimPrefix(cookie, "Cookie: "+console.CookieName+"=")
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(v, "v2."))
	if err != nil {
		t.Fatalf("cookie %q: %v", cookie, err)
	}
	sum := sha256.Sum256(id)
	return sum[:]
}

// signOut posts the console's sign-out with cookie and checks it answered.
func (e *env) signOut(cookie string) {
	e.t.Helper()
	status, h, _ := e.do(req{method: http.MethodPost, path: "/console/signout", headers: []string{cookie, sameOrigin}})
	if status != http.StatusSeeOther || h.Get("Location") != console.SignInPath {
		e.t.Fatalf("sign out: %d %q", status, h.Get("Location"))
	}
}

// expire moves a session's expiry into the past, as SESSION_TTL passing
// would.
func (e *env) expire(cookie string) {
	e.t.Helper()
	e.exec(`UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1`, sessionHash(e.t, cookie))
}

// credHeaders returns the headers of credential kind k, making a fresh
// session for the session kinds (a cell may end every session).
func (e *env) credHeaders(k int) []string {
	e.t.Helper()
	switch k {
	case credWrong:
		return []string{bearer("wrong-key-0123456789abcdef")}
	case credRead:
		return []string{bearer(readKey)}
	case credFull:
		return []string{bearer(testKey)}
	case credLive, credSignedOut, credExpired:
		cookie := e.signIn(testKey)
		switch k {
		case credSignedOut:
			e.signOut(cookie)
		case credExpired:
			e.expire(cookie)
		}
		return append([]string{cookie}, consoleHeaders...)
	}
	return nil
}

// cell is one row of the access matrix: the request one route answers,
// made fresh for each column, and the status each column gets.
type cell struct {
	r    func(e *env) req
	want [credKinds]int
}

// Rows' expected statuses, in column order: no key, wrong key, read key,
// full key, live session, signed-out session, expired session.
var (
	// An open route answers everyone alike.
	open200 = [credKinds]int{200, 200, 200, 200, 200, 200, 200}
	// /api/v1 reads: the read key, the full key or a live session.
	apiRead = func(ok int) [credKinds]int { return [credKinds]int{401, 401, ok, ok, ok, 401, 401} }
	// /api/v1 changes: the full key or a live session.
	apiWrite = func(ok int) [credKinds]int { return [credKinds]int{401, 401, 401, ok, ok, 401, 401} }
	// The dashboard's pages: the full key or a live session; a browser
	// without one is sent to the sign-in.
	monPage = func(ok int) [credKinds]int { return [credKinds]int{303, 303, 401, ok, ok, 303, 303} }
	// The dashboard's API and its changes.
	monAPI = func(ok int) [credKinds]int { return [credKinds]int{401, 401, 401, ok, ok, 401, 401} }
)

func accessMatrix(other string) map[string]cell {
	static := func(r req) func(*env) req { return func(*env) req { return r } }
	get := func(method, path string) func(*env) req { return static(req{method: method, path: path}) }
	msg := func(status string) func(e *env) string {
		return func(e *env) string {
			id := testenv.InsertMessages(e.t, e.pool, 1)[0]
			e.exec(`UPDATE messages SET status = $2 WHERE id = $1`, id, status)
			return id
		}
	}
	pending, failed := msg("pending"), msg("failed")
	const okPhone = `"phone_number": "+905551111111"`
	rows := map[string]cell{
		"GET /healthz":   {get("GET", "/healthz"), open200},
		"GET /readyz":    {get("GET", "/readyz"), open200},
		"GET /metrics":   {get("GET", "/metrics"), open200},
		"GET /swagger/*": {get("GET", "/swagger/index.html"), open200},

		"GET /api/v1/scheduler":             {get("GET", "/api/v1/scheduler"), apiRead(200)},
		"GET /api/v1/messages":              {get("GET", "/api/v1/messages"), apiRead(200)},
		"GET /api/v1/messages/sent":         {get("GET", "/api/v1/messages/sent"), apiRead(200)},
		"GET /api/v1/messages/:id":          {func(e *env) req { return req{method: "GET", path: "/api/v1/messages/" + pending(e)} }, apiRead(200)},
		"GET /api/v1/messages/:id/attempts": {func(e *env) req { return req{method: "GET", path: "/api/v1/messages/" + pending(e) + "/attempts"} }, apiRead(200)},
		"GET /api/v1/messages/:id/events":   {func(e *env) req { return req{method: "GET", path: "/api/v1/messages/" + pending(e) + "/events"} }, apiRead(200)},
		"GET /api/v1/stats/counts":          {get("GET", "/api/v1/stats/counts"), apiRead(200)},
		"GET /api/v1/stats/minutes":         {get("GET", "/api/v1/stats/minutes"), apiRead(200)},

		"POST /api/v1/scheduler/start":        {get("POST", "/api/v1/scheduler/start"), apiWrite(200)},
		"POST /api/v1/scheduler/stop":         {get("POST", "/api/v1/scheduler/stop"), apiWrite(200)},
		"GET /api/v1/providers":               {get("GET", "/api/v1/providers"), apiRead(200)},
		"POST /api/v1/providers/:name/enable": {get("POST", "/api/v1/providers/default/enable"), apiWrite(200)},
		"POST /api/v1/messages":               {static(jsonReq("POST", "/api/v1/messages", `{"content": "matrix", `+okPhone+`}`)), apiWrite(201)},
		"POST /api/v1/messages/batch":         {static(jsonReq("POST", "/api/v1/messages/batch", `{"messages": [{"content": "matrix", `+okPhone+`}]}`)), apiWrite(201)},
		"POST /api/v1/messages/:id/retry":     {func(e *env) req { return req{method: "POST", path: "/api/v1/messages/" + failed(e) + "/retry"} }, apiWrite(200)},
		"POST /api/v1/messages/:id/cancel":    {func(e *env) req { return req{method: "POST", path: "/api/v1/messages/" + pending(e) + "/cancel"} }, apiWrite(200)},
		"POST /api/v1/receipts": {func(e *env) req {
			id := pending(e)
			e.markSent(time.Now().Add(-time.Minute), id)
			return jsonReq("POST", "/api/v1/receipts", `{"message_id": "remote-`+id+`", "status": "delivered"}`)
		}, apiWrite(200)},
		"POST /api/v1/events/:id/redeliver": {func(e *env) req {
			id := failed(e) // a change to failed writes an event
			var ev string
			if err := e.pool.QueryRow(context.Background(), `SELECT id::text FROM message_events WHERE message_id = $1`, id).Scan(&ev); err != nil {
				e.t.Fatal(err)
			}
			return req{method: "POST", path: "/api/v1/events/" + ev + "/redeliver"}
		}, apiWrite(202)},
		"POST /api/v1/sessions/revoke-all": {get("POST", "/api/v1/sessions/revoke-all"), apiWrite(200)},
		"POST /api/v1/erasures":            {static(jsonReq("POST", "/api/v1/erasures", `{"phone_number": "+905559999999"}`)), apiWrite(200)},

		"GET /api/v1/opt-outs":               {get("GET", "/api/v1/opt-outs"), apiRead(200)},
		"POST /api/v1/inbound":               {static(jsonReq("POST", "/api/v1/inbound", `{"from": "+12015550123", "text": "HELP"}`)), apiWrite(200)},
		"PUT /api/v1/opt-outs/:phone_number": {get("PUT", "/api/v1/opt-outs/%2B12015550123"), apiWrite(200)},
		"DELETE /api/v1/opt-outs/:phone_number": {func(e *env) req {
			e.exec(`INSERT INTO opt_outs (phone_number, source) VALUES ('+12015550124', 'api') ON CONFLICT DO NOTHING`)
			return req{method: "DELETE", path: "/api/v1/opt-outs/%2B12015550124"}
		}, apiWrite(204)},

		// The console's page needs a session; the bearer key does not
		// open it (a browser cannot send it on the page's own calls).
		"GET /console/": {get("GET", "/console/"), [credKinds]int{303, 303, 303, 303, 200, 303, 303}},
		// Signed in, the sign-in page forwards.
		"GET /console/signin": {get("GET", "/console/signin"), [credKinds]int{200, 200, 200, 200, 303, 200, 200}},
		"POST /console/signin": {static(req{method: "POST", path: console.SignInPath, body: url.Values{"key": {testKey}}.Encode(),
			headers: []string{"Content-Type: application/x-www-form-urlencoded", sameOrigin}}), [credKinds]int{303, 303, 303, 303, 303, 303, 303}},
		"POST /console/signout": {static(req{method: "POST", path: "/console/signout", headers: []string{sameOrigin}}), [credKinds]int{303, 303, 303, 303, 303, 303, 303}},

		"GET /monitoring":   {get("GET", "/monitoring"), monPage(200)},
		"GET /monitoring/*": {get("GET", "/monitoring/api/queues"), monAPI(200)},
		// Resuming a paused queue (not the dispatch queue) is a change.
		"POST /monitoring/*": {func(e *env) req {
			insp := asynq.NewInspectorFromRedisClient(e.rdb)
			info, err := insp.GetQueueInfo(other)
			if err != nil {
				e.t.Fatal(err)
			}
			if !info.Paused {
				if err := insp.PauseQueue(other); err != nil {
					e.t.Fatal(err)
				}
			}
			return req{method: "POST", path: "/monitoring/api/queues/" + other + ":resume"}
		}, monAPI(204)},
	}
	// HEAD is routed wherever GET is, with the same rule.
	for k, c := range rows {
		if p, ok := strings.CutPrefix(k, "GET "); ok {
			r := c.r
			rows["HEAD "+p] = cell{func(e *env) req { x := r(e); x.method = http.MethodHead; return x }, c.want}
		}
	}
	// asynqmon's API routes GET only.
	rows["HEAD /monitoring/*"] = cell{get("HEAD", "/monitoring/api/queues"), monAPI(405)}
	// The dashboard routes every other method too: asynqmon answers them
	// (405 on its API, the page elsewhere) once the guard lets them in.
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"} {
		if m != "POST" {
			rows[m+" /monitoring/*"] = cell{get(m, "/monitoring/api/queues"), monAPI(405)}
		}
		rows[m+" /monitoring"] = cell{get(m, "/monitoring"), monAPI(200)}
	}
	return rows
}

// Every route × every kind of credential, with API_KEY and API_READ_KEY
// set. The routes come from the router, so a route added without a row
// fails the test.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey, "API_READ_KEY="+readKey, "RATE_LIMIT=0")
	other := e.cfg.Queue + "-other"
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(other)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.DeleteQueueKeys(t, other) })
	rows := accessMatrix(other)
	seen := map[string]bool{}
	for _, r := range e.srv.App().GetRoutes(true) {
		k := r.Method + " " + r.Path
		if seen[k] {
			continue
		}
		seen[k] = true
		c, ok := rows[k]
		if !ok {
			t.Errorf("route %s has no row in the access matrix", k)
			continue
		}
		for cred := range credKinds {
			rq := c.r(e)
			rq.headers = append(append([]string(nil), rq.headers...), e.credHeaders(cred)...)
			status, h, b := e.do(rq)
			if status != c.want[cred] {
				t.Errorf("%s (%s %s) with %s: %d, want %d: %.200s", k, rq.method, rq.path, credNames[cred], status, c.want[cred], b)
			}
			if status == http.StatusUnauthorized && rq.method != http.MethodHead && !strings.Contains(string(b), `"unauthorized"`) {
				t.Errorf("%s with %s: 401 body %.200s", k, credNames[cred], b)
			}
			if status == http.StatusSeeOther && c.want[0] == 303 && k != "POST /console/signin" && k != "POST /console/signout" && k != "GET /console/signin" && k != "HEAD /console/signin" &&
				!strings.HasPrefix(h.Get("Location"), console.SignInPath+"?next=") {
				t.Errorf("%s with %s: 303 to %q, want the sign-in", k, credNames[cred], h.Get("Location"))
			}
		}
	}
	for k := range rows {
		if !seen[k] {
			t.Errorf("the access matrix has a row for %s, which is not a route", k)
		}
	}
}

// Without API_KEY everything is open, as before, and the api warns at
// start.
func TestAccessOpenWithoutKey(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	uri, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	cfg := testenv.Config(t, uri, testenv.Queue(t))
	e := newEnvFrom(t, cfg, pool, st, rdb, &logs)
	if !strings.Contains(strings.Join(logs.lines(), "\n"), "API_KEY is not set") {
		t.Fatalf("no start-up warning: %v", logs.lines())
	}
	for _, p := range []string{"/api/v1/scheduler", "/api/v1/messages", "/api/v1/messages/sent", "/api/v1/stats/counts", "/console/", "/monitoring/", "/monitoring/api/queues"} {
		if status, _, b := e.get(p); status != 200 {
			t.Errorf("GET %s without API_KEY: %d %.200s", p, status, b)
		}
	}
	if status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/sessions/revoke-all"}); status != 200 {
		t.Errorf("revoke-all without API_KEY: %d %s", status, b)
	}
}

// A session ends when it is ended: sign-out, revoke-all, expiry and a new
// API_KEY each end it everywhere, the dashboard and the console's changes
// included.
func TestSessionsEnd(t *testing.T) {
	t.Parallel()
	uri, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	queue := testenv.Queue(t)
	e := newEnvFrom(t, testenv.Config(t, uri, queue, "API_KEY="+testKey, "API_READ_KEY="+readKey), pool, st, rdb, nil)
	start := req{method: http.MethodPost, path: "/api/v1/scheduler/start"}
	with := func(r req, headers ...string) req {
		r.headers = append(append([]string(nil), r.headers...), headers...)
		return r
	}
	uses := func(cookie string) []int {
		var out []int
		for _, r := range []req{
			{method: http.MethodGet, path: "/monitoring/api/queues"},
			with(start, consoleHeaders...),
			{method: http.MethodGet, path: "/api/v1/messages"},
			{method: http.MethodGet, path: "/console/"},
			{method: http.MethodGet, path: "/monitoring/"},
		} {
			status, _, _ := e.do(with(r, cookie))
			out = append(out, status)
		}
		return out
	}
	live, ended := []int{200, 200, 200, 200, 200}, []int{401, 401, 401, 303, 303}
	check := func(what, cookie string, want []int) {
		t.Helper()
		if got := uses(cookie); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}

	// Sign-out: the cookie saved before it no longer works.
	a, b := e.signIn(testKey), e.signIn(testKey)
	check("a fresh session", a, live)
	e.signOut(a)
	check("a signed-out session", a, ended)
	check("another session after the first signed out", b, live)

	// Revoke-all, by a session from the console or by the key.
	status, h, body := e.do(with(req{method: http.MethodPost, path: "/api/v1/sessions/revoke-all"}, b))
	wantError(t, status, h, body, 403, "cross_site")
	c := e.signIn(testKey)
	status, _, body = e.do(with(req{method: http.MethodPost, path: "/api/v1/sessions/revoke-all"}, append([]string{b}, consoleHeaders...)...))
	if status != 200 || decode[struct {
		Revoked int64 `json:"revoked"`
	}](t, body).Revoked != 2 {
		t.Fatalf("revoke-all from the console: %d %s, want 2 revoked", status, body)
	}
	check("after revoke-all", b, ended)
	check("after revoke-all", c, ended)
	d := e.signIn(testKey)
	status, h, body = e.do(with(req{method: http.MethodPost, path: "/api/v1/sessions/revoke-all"}, bearer(readKey)))
	wantError(t, status, h, body, 401, "unauthorized")
	status, _, body = e.do(with(req{method: http.MethodPost, path: "/api/v1/sessions/revoke-all"}, bearer(testKey)))
	if status != 200 || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoke-all with the key: %d %s", status, body)
	}
	check("after revoke-all with the key", d, ended)

	// Expiry, by the database's clock.
	x := e.signIn(testKey)
	e.expire(x)
	check("an expired session", x, ended)

	// A new API_KEY: sessions made under the old one are refused by an api
	// with the new key, over the same database.
	y := e.signIn(testKey)
	rotated := newEnvFrom(t, testenv.Config(t, uri, queue, "API_KEY="+testKey+"-rotated"), pool, st, rdb, nil)
	if status, _, b := rotated.get("/api/v1/messages", y); status != 401 {
		t.Fatalf("a session of the old key on the new one: %d %s", status, b)
	}
	check("the old key's session on the old api", y, live)

	// Sign-in purges expired rows, a bounded batch at a time.
	var left int
	e.signIn(testKey)
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM console_sessions WHERE expires_at <= now()`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d expired sessions left after a sign-in", left)
	}
}
