package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/messaging-server/messaging-server/internal/auth"
	"github.com/messaging-server/messaging-server/internal/console"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Paths that a router could read two ways are refused before any
// credential is looked at, with or without one; mixed case is routed as
// lower case and guarded the same.
func TestEncodedPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey, "RATE_LIMIT=0")
	q := e.cfg.Queue
	refused := []string{
		"/monitoring/api%2Fqueues%2F" + q + "%2Fpending_tasks",
		"/monitoring/api%2fqueues",
		"/monitoring%2Fapi/queues",
		"/monitoring/%2e%2e/api/v1/messages",
		"/monitoring/%2E%2E/%2E%2E/api/v1/messages",
		"/monitoring/api/queues/%2e%2e/queues",
		"/monitoring/api%252Fqueues",
		"/monitoring/api%25252Fqueues",
		"/monitoring/api%5Cqueues",
		"/monitoring/x%2Ejs",
		"/monitoring/../api/v1/messages",
		"/monitoring//api/queues",
		"/api%2Fv1/messages",
		"/api/v1%2Fmessages",
		"/api/v1/messages%2Fsent",
		"/api/v1/messages/%2e%2e",
		"/api/v1/messages/%2E",
		"/api/v1/messages/x%252Fy",
		"/api/v1/messages/%00",
		"/api/v1/./messages",
		"/api/v1/messages/../scheduler",
		"/console/%2e%2e/api/v1/messages",
		"/swagger/..%2F..%2Fapi/v1/messages",
	}
	for _, p := range refused {
		for _, h := range [][]string{nil, {bearer(testKey)}} {
			status, hd, b := e.do(req{method: http.MethodGet, path: p, headers: h})
			wantError(t, status, hd, b, 400, "bad_path")
			if strings.Contains(string(b), q) || strings.Contains(string(b), "phone") {
				t.Fatalf("GET %s leaked: %s", p, b)
			}
		}
	}
	// Mixed case: routed like lower case, so guarded like it.
	for _, p := range []string{"/MONITORING/api/queues", "/Monitoring/API/Queues", "/API/V1/MESSAGES", "/Api/V1/Messages/Sent", "/api/V1/stats/counts"} {
		status, h, b := e.get(p)
		wantError(t, status, h, b, 401, "unauthorized")
	}
	for _, p := range []string{"/MONITORING/", "/Monitoring/x.js"} {
		if status, h, _ := e.get(p); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), console.SignInPath) {
			t.Fatalf("GET %s without a session: %d %q", p, status, h.Get("Location"))
		}
	}
	if status, _, b := e.get("/API/V1/MESSAGES", bearer(testKey)); status != 200 {
		t.Fatalf("mixed case with the key: %d %s", status, b)
	}
	// The same encodings in a query string are data, not path.
	if status, _, b := e.get("/api/v1/messages?cursor=%2e%2e%2F", bearer(testKey)); status != 400 || strings.Contains(string(b), "bad_path") {
		t.Fatalf("an encoded query: %d %s", status, b)
	}
}

// At most 10 sign-in attempts per client in 10 minutes, then 429 with
// Retry-After whatever the key; a success clears the count; another client
// behind the same trusted proxy keeps its own count.
func TestSignInThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey, "TRUSTED_PROXIES=0.0.0.0", "RATE_LIMIT=0")
	signIn := func(key, client string) (int, http.Header, string) {
		t.Helper()
		status, h, b := e.do(req{method: http.MethodPost, path: console.SignInPath, body: url.Values{"key": {key}}.Encode(),
			headers: []string{"Content-Type: application/x-www-form-urlencoded", sameOrigin, "X-Forwarded-For: " + client}})
		return status, h, string(b)
	}
	const a, b = "203.0.113.10", "203.0.113.11"
	for i := range auth.SignInAttempts - 1 {
		if status, _, _ := signIn("wrong", a); status != 401 {
			t.Fatalf("wrong key %d: %d", i+1, status)
		}
	}
	// A success clears the count: ten more failures are allowed.
	if status, _, body := signIn(testKey, a); status != http.StatusSeeOther {
		t.Fatalf("right key after 9 failures: %d %s", status, body)
	}
	for i := range auth.SignInAttempts {
		if status, _, _ := signIn("wrong", a); status != 401 {
			t.Fatalf("wrong key %d after a success: %d", i+1, status)
		}
	}
	for _, key := range []string{"wrong", testKey} {
		status, h, body := signIn(key, a)
		retry, err := strconv.Atoi(h.Get("Retry-After"))
		if status != http.StatusTooManyRequests || err != nil || retry < 590 || retry > 600 ||
			!strings.Contains(body, "Too many failed sign-ins") || len(h.Values("Set-Cookie")) != 0 {
			t.Fatalf("attempt 11 (%s key): %d Retry-After %q %v", key, status, h.Get("Retry-After"), h.Values("Set-Cookie"))
		}
	}
	// Another client behind the same proxy is not locked out.
	if status, _, body := signIn(testKey, b); status != http.StatusSeeOther {
		t.Fatalf("another client: %d %s", status, body)
	}
	// A client cannot escape its count by writing addresses to the left.
	if status, _, _ := signIn(testKey, "198.51.100.77, "+a); status != http.StatusTooManyRequests {
		t.Fatalf("a spoofed left part escaped the throttle: %d", status)
	}
}

// Two clients behind one trusted proxy each get their own rate-limit
// bucket, and the log names the client; from an untrusted peer the header
// is ignored.
func TestRateLimitBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	uri, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	e := newEnvFrom(t, testenv.Config(t, uri, testenv.Queue(t), "RATE_LIMIT=3", "TRUSTED_PROXIES=0.0.0.0"), pool, st, rdb, &logs)
	call := func(e *env, xff string) int {
		t.Helper()
		status, _, _ := e.get("/api/v1/scheduler", "X-Forwarded-For: "+xff)
		return status
	}
	for _, client := range []string{"203.0.113.1", "203.0.113.2"} {
		for i := range 3 {
			if status := call(e, "6.6.6.6, "+client); status != 200 {
				t.Fatalf("client %s request %d: %d", client, i+1, status)
			}
		}
		if status := call(e, client); status != 429 {
			t.Fatalf("client %s request 4: %d, want 429", client, status)
		}
	}
	var ips []string
	for _, l := range logs.lines() {
		var v struct {
			Msg string `json:"msg"`
			IP  string `json:"ip"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if v.Msg == "request" {
			ips = append(ips, v.IP)
		}
	}
	if strings.Join(ips, " ") != "203.0.113.1 203.0.113.1 203.0.113.1 203.0.113.1 203.0.113.2 203.0.113.2 203.0.113.2 203.0.113.2" {
		t.Fatalf("logged client addresses %v", ips)
	}

	// Without TRUSTED_PROXIES the header is ignored: one bucket.
	direct := newEnv(t, "RATE_LIMIT=3")
	for i, client := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"} {
		want := 200
		if i == 3 {
			want = 429
		}
		if status := call(direct, client); status != want {
			t.Fatalf("untrusted peer, request %d: %d, want %d", i+1, status, want)
		}
	}
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// The console, the dashboard and the OpenAPI page send a CSP fitted to
// each page, no framing, no sniffing and a same-origin referrer, on every
// answer there; the pages' inline scripts are allowed by hash and nothing
// is loaded from outside.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	cookie := e.signIn(testKey)
	for _, p := range []string{
		"/console/", "/console/signin", "/console/assets/console.js", "/console",
		"/monitoring/", "/monitoring", "/monitoring/api/queues", "/monitoring/static/js/missing.js",
		"/swagger/index.html", "/swagger/doc.json", "/swagger/swagger-ui.css",
	} {
		for _, h := range [][]string{nil, {cookie}} {
			status, hd, b := e.get(p, h...)
			csp := hd.Get("Content-Security-Policy")
			if hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" ||
				hd.Get("Referrer-Policy") != "same-origin" || !strings.Contains(csp, "frame-ancestors 'none'") ||
				!strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-eval") {
				t.Fatalf("GET %s (%d): headers %v", p, status, hd)
			}
			if !strings.HasPrefix(hd.Get("Content-Type"), "text/html") || status != 200 {
				continue
			}
			page := string(b)
			if strings.Contains(page, "fonts.googleapis.com") {
				t.Fatalf("GET %s loads fonts from outside", p)
			}
			for _, m := range inlineScript.FindAllStringSubmatch(page, -1) {
				sum := sha256.Sum256([]byte(m[1]))
				if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
					t.Fatalf("GET %s: an inline script is not allowed by the CSP %q", p, csp)
				}
			}
			if strings.HasPrefix(p, "/console") && strings.Contains(csp, "unsafe-inline") {
				t.Fatalf("the console's CSP allows inline code: %q", csp)
			}
		}
	}
}
