package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/testenv"
)

var (
	scriptSrc  = regexp.MustCompile(`<script src="([^"]+)"`)
	styleHref  = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`)
	readOnlyJS = regexp.MustCompile(`window\.FLAG_READ_ONLY="(\w+)"`)
	// html/template escapes the slash inside a script.
	rootPathJS = regexp.MustCompile(`window\.FLAG_ROOT_PATH="\\?/monitoring"`)
)

// monitoringIndex fetches the dashboard page and returns its HTML.
func monitoringIndex(t *testing.T, e *env, path string, headers ...string) string {
	t.Helper()
	status, h, b := e.get(path, headers...)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %q", path, status, h.Get("Content-Type"))
	}
	html := string(b)
	if !rootPathJS.MatchString(html) {
		t.Fatalf("GET %s: not the dashboard rooted at /monitoring:\n%.500s", path, html)
	}
	return html
}

func readOnly(t *testing.T, html string) string {
	t.Helper()
	m := readOnlyJS.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no read-only flag in the page")
	}
	return m[1]
}

// The dashboard's own assets load with the right content types. asynqmon
// answers index.html with 200 for any file it lacks, so the test checks the
// type of every asset the page references, not the status alone.
func TestMonitoringAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/monitoring", "/monitoring/"} {
		monitoringIndex(t, e, p)
	}
	html := monitoringIndex(t, e, "/monitoring/")
	scripts := scriptSrc.FindAllStringSubmatch(html, -1)
	if len(scripts) == 0 {
		t.Fatalf("the page references no script")
	}
	for _, s := range scripts {
		src := s[1]
		if !strings.HasPrefix(src, "/monitoring/static/") || !strings.HasSuffix(src, ".js") {
			t.Fatalf("script %q is not under /monitoring/static", src)
		}
		status, h, b := e.get(src)
		if ct := h.Get("Content-Type"); status != 200 || !strings.Contains(ct, "javascript") {
			t.Fatalf("GET %s: %d %q", src, status, ct)
		}
		if strings.HasPrefix(strings.ToLower(string(b)), "<!doctype") || len(b) < 1000 {
			t.Fatalf("GET %s returned the page, not the script", src)
		}
	}
	// asynqmon 0.7 ships no stylesheet of its own (its styles are in the
	// scripts); any local one the page names must load as CSS.
	for _, s := range styleHref.FindAllStringSubmatch(html, -1) {
		if !strings.HasPrefix(s[1], "/") {
			continue // Google Fonts, loaded by the browser from Google
		}
		status, h, _ := e.get(s[1])
		if ct := h.Get("Content-Type"); status != 200 || !strings.HasPrefix(ct, "text/css") {
			t.Fatalf("GET %s: %d %q", s[1], status, ct)
		}
	}
	// The pitfall the check above avoids: a missing asset is the page.
	if _, h, _ := e.get("/monitoring/static/js/missing.js"); strings.Contains(h.Get("Content-Type"), "javascript") {
		t.Fatalf("a missing script came back as JavaScript: the test above would prove nothing")
	}

	// Its API sees our queue. (asynqmon sends its JSON without a
	// Content-Type, so net/http labels it text/plain; its UI does not mind.)
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(e.cfg.Queue)); err != nil {
		t.Fatal(err)
	}
	status, _, b := e.get("/monitoring/api/queues/" + e.cfg.Queue)
	if status != 200 || !strings.Contains(string(b), `"queue":"`+e.cfg.Queue+`"`) {
		t.Fatalf("GET queue: %d %s", status, b)
	}
	if readOnly(t, html) != "false" {
		t.Fatalf("without API_KEY the dashboard must be writable")
	}
}

// With API_KEY the dashboard needs the bearer key or a console session:
// without one its pages redirect to the sign-in and its API answers 401 (no
// Redis INFO, no task payloads), and a change made with the session cookie
// must come from this server's pages.
func TestMonitoringAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(asynq.NewTask("test:noop", []byte("secret payload")), asynq.Queue(e.cfg.Queue)); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	paused := func(queue string) bool {
		info, err := insp.GetQueueInfo(queue)
		if err != nil {
			t.Fatal(err)
		}
		return info.Paused
	}

	for _, p := range []string{"/monitoring", "/monitoring/", "/monitoring/queues/" + e.cfg.Queue} {
		status, h, _ := e.get(p)
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/signin?next=") {
			t.Fatalf("GET %s without a session: %d %q, want a redirect to the sign-in", p, status, h.Get("Location"))
		}
	}
	for _, p := range []string{"/monitoring/api/redis_info", "/monitoring/api/queues", "/monitoring/api/queues/" + e.cfg.Queue + "/pending_tasks"} {
		status, h, b := e.get(p)
		wantError(t, status, h, b, 401, "unauthorized")
		if strings.Contains(string(b), "secret payload") || strings.Contains(string(b), "redis_version") {
			t.Fatalf("GET %s leaked: %s", p, b)
		}
	}

	// Nothing under /monitoring answers without a session or the key, its
	// own files included (a missing one would be the page). The page asks
	// the browser to send the cookie with its manifest fetch.
	for _, p := range []string{"/monitoring/manifest.json", "/monitoring/x.js", "/monitoring/static/js/missing.js", "/monitoring/queues/x.json", "/monitoring/favicon.ico"} {
		if status, h, b := e.get(p); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/signin?next=") {
			t.Fatalf("GET %s without a session: %d %q %.100s", p, status, h.Get("Location"), b)
		}
	}
	if status, _, b := e.get("/monitoring/manifest.json", bearer(testKey)); status != 200 || !strings.HasPrefix(string(b), "{") {
		t.Fatalf("manifest with the key: %d %.100s", status, b)
	}
	if html := monitoringIndex(t, e, "/monitoring/", bearer(testKey)); !strings.Contains(html, `<link rel="manifest" crossorigin="use-credentials" href=`) {
		t.Fatalf("the manifest link does not ask for the cookie")
	}

	if got := readOnly(t, monitoringIndex(t, e, "/monitoring/", bearer(testKey))); got != "false" {
		t.Fatalf("with the key: read-only %s", got)
	}
	cookie := e.signIn(testKey)
	if got := readOnly(t, monitoringIndex(t, e, "/monitoring/", cookie)); got != "false" {
		t.Fatalf("with a session: read-only %s", got)
	}
	if status, _, b := e.get("/monitoring/api/redis_info", cookie); status != 200 || !strings.Contains(string(b), "redis_version") {
		t.Fatalf("redis_info with a session: %d %.200s", status, b)
	}

	// A queue of the test's own that is not the dispatch queue: the
	// dashboard may pause it.
	other := e.cfg.Queue + "-other"
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(other)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.DeleteQueueKeys(t, other) })
	pause := "/monitoring/api/queues/" + other + ":pause"
	for _, r := range []struct {
		req
		status int
		code   string
	}{
		{req{method: http.MethodPost, path: pause}, 401, "unauthorized"},
		{req{method: http.MethodPost, path: pause, headers: []string{bearer("wrong")}}, 401, "unauthorized"},
		{req{method: http.MethodDelete, path: "/monitoring/api/queues/" + other}, 401, "unauthorized"},
		// The cookie alone, or with another site as the origin, is refused.
		{req{method: http.MethodPost, path: pause, headers: []string{cookie}}, 403, "cross_site"},
		{req{method: http.MethodPost, path: pause, headers: []string{cookie, "Origin: https://evil.example"}}, 403, "cross_site"},
		{req{method: http.MethodPost, path: pause, headers: []string{cookie, "Referer: https://evil.example/x"}}, 403, "cross_site"},
	} {
		status, h, b := e.do(r.req)
		wantError(t, status, h, b, r.status, r.code)
	}
	if paused(other) {
		t.Fatalf("an unauthorized request paused the queue")
	}
	if status, _, b := e.do(req{method: http.MethodPost, path: pause, headers: []string{cookie, sameOrigin}}); status >= 300 {
		t.Fatalf("pause with a session from the dashboard: %d %s", status, b)
	}
	if !paused(other) {
		t.Fatalf("an authorized pause did not pause the queue")
	}
	if status, _, b := e.do(req{method: http.MethodPost, path: "/monitoring/api/queues/" + other + ":resume", headers: []string{bearer(testKey)}}); status >= 300 {
		t.Fatalf("resume with the key: %d %s", status, b)
	}
	if paused(other) {
		t.Fatalf("an authorized resume did not resume the queue")
	}
}

// The dispatch queue (QUEUE_NAME) cannot be deleted or paused from the
// dashboard, by the key or a session, however the path is spelled; it
// stays listed, unpaused, with its task.
func TestMonitoringKeepsTheDispatchQueue(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", testKey} {
		var vars []string
		if key != "" {
			vars = append(vars, "API_KEY="+key)
		}
		e := newEnv(t, vars...)
		if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue(e.cfg.Queue)); err != nil {
			t.Fatal(err)
		}
		auth := []string{bearer(testKey)}
		if key != "" {
			auth = append(auth, e.signIn(testKey), sameOrigin)
		}
		q := "/monitoring/api/queues/" + e.cfg.Queue
		for _, r := range []req{
			{method: http.MethodDelete, path: q},
			{method: http.MethodDelete, path: q + "?force=true"},
			{method: http.MethodDelete, path: q + "/"},
			{method: http.MethodDelete, path: "/monitoring/api/queues/" + strings.Replace(e.cfg.Queue, "q", "%71", 1)},
			{method: http.MethodPost, path: q + ":pause"},
			{method: http.MethodPost, path: q + "%3Apause"},
		} {
			r.headers = auth
			status, h, b := e.do(r)
			ans := wantError(t, status, h, b, 403, "dispatch_queue")
			if !strings.Contains(ans.Message, "scheduler/stop") {
				t.Fatalf("%s %s: the refusal gives no reason: %s", r.method, r.path, b)
			}
		}
		insp := asynq.NewInspectorFromRedisClient(e.rdb)
		info, err := insp.GetQueueInfo(e.cfg.Queue)
		if err != nil || info.Paused || info.Size != 1 {
			t.Fatalf("the dispatch queue after the refusals: %+v %v", info, err)
		}
	}
}

// No Prometheus is configured, so the metrics view is off instead of
// answering 500, and the page loads nothing from outside.
func TestMonitoringMetricsViewOffAndNoOutsideFonts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, h, b := e.get("/monitoring/api/metrics?duration=3600")
	wantError(t, status, h, b, 404, "not_found")
	if status, h, _ := e.get("/monitoring/q/metrics"); status != http.StatusSeeOther || h.Get("Location") != "/monitoring/" {
		t.Fatalf("metrics page: %d %q", status, h.Get("Location"))
	}
	html := monitoringIndex(t, e, "/monitoring/")
	if strings.Contains(html, "https://") || strings.Contains(html, "googleapis") {
		t.Fatalf("the dashboard page loads something from outside:\n%s", html)
	}
	if !strings.Contains(html, `FLAG_PROMETHEUS_SERVER_ADDRESS=""`) {
		t.Fatalf("the page does not say that no Prometheus is configured (its metrics menu entry must stay hidden)")
	}
}
