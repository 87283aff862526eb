package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/console"
)

// app.Test sends requests to example.com; the console's pages would send
// this Origin.
const sameOrigin = "Origin: http://example.com"

// signIn posts key to the sign-in form as the page would and returns the
// session as a "Cookie: ..." header line.
func (e *env) signIn(key string) string {
	e.t.Helper()
	status, h, b := e.do(req{method: http.MethodPost, path: console.SignInPath,
		body:    url.Values{"key": {key}, "next": {"/monitoring/"}}.Encode(),
		headers: []string{"Content-Type: application/x-www-form-urlencoded", sameOrigin}})
	if status != http.StatusSeeOther || h.Get("Location") != "/monitoring/" {
		e.t.Fatalf("sign in: %d %q %s", status, h.Get("Location"), b)
	}
	c := sessionCookie(e.t, h)
	return "Cookie: " + c.Name + "=" + c.Value
}

func sessionCookie(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == console.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", console.CookieName, h.Values("Set-Cookie"))
	return nil
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey, "SESSION_TTL=600")

	// Without a session the page sends the browser to the sign-in, which
	// has a password field and comes back to the page.
	status, h, _ := e.get("/console/")
	if status != http.StatusSeeOther || h.Get("Location") != "/console/signin?next=%2Fconsole%2F" {
		t.Fatalf("GET /console/ without a session: %d %q", status, h.Get("Location"))
	}
	status, h, b := e.get("/console/signin?next=%2Fconsole%2F")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(b), `type="password" name="key"`) || !strings.Contains(string(b), `name="next" value="/console/"`) {
		t.Fatalf("sign-in page: %d %q\n%s", status, h.Get("Content-Type"), b)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("sign-in page CSP %q", csp)
	}

	// A wrong key: the page again, with 401, and no cookie.
	status, h, b = e.do(req{method: http.MethodPost, path: console.SignInPath, body: "key=wrong&next=%2Fconsole%2F",
		headers: []string{"Content-Type: application/x-www-form-urlencoded", sameOrigin}})
	if status != 401 || !strings.Contains(string(b), "not the API key") || len(h.Values("Set-Cookie")) != 0 {
		t.Fatalf("wrong key: %d %v\n%s", status, h.Values("Set-Cookie"), b)
	}
	// A sign-in posted by another site is refused.
	status, h, b = e.do(req{method: http.MethodPost, path: console.SignInPath, body: "key=" + testKey,
		headers: []string{"Content-Type: application/x-www-form-urlencoded", "Origin: https://evil.example"}})
	wantError(t, status, h, b, 403, "cross_site")

	// The right key: a cookie with every protection, and the redirect
	// goes only to a page of ours.
	for next, want := range map[string]string{
		"/console/": "/console/", "/monitoring/queues/x": "/monitoring/queues/x",
		"//evil.example/": "/console/", "https://evil.example/": "/console/", "/\\evil.example": "/console/", "": "/console/",
	} {
		status, h, b := e.do(req{method: http.MethodPost, path: console.SignInPath,
			body:    url.Values{"key": {testKey}, "next": {next}}.Encode(),
			headers: []string{"Content-Type: application/x-www-form-urlencoded", sameOrigin}})
		if status != http.StatusSeeOther || h.Get("Location") != want {
			t.Fatalf("next=%q: %d %q, want %q\n%s", next, status, h.Get("Location"), want, b)
		}
		c := sessionCookie(t, h)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over http, Path=/", c)
		}
		if left := time.Until(c.Expires); left < 590*time.Second || left > 610*time.Second {
			t.Fatalf("cookie expires in %s, want SESSION_TTL=600s", left)
		}
	}

	cookie := e.signIn(testKey)
	status, _, b = e.get("/console/", cookie)
	if status != 200 || !strings.Contains(string(b), `data-testid="switch-state"`) || !strings.Contains(string(b), `data-testid="btn-signout"`) {
		t.Fatalf("GET /console/ with a session: %d\n%.300s", status, b)
	}
	// Signed in, the sign-in page forwards.
	if status, h, _ := e.get("/console/signin?next=%2Fmonitoring%2F", cookie); status != http.StatusSeeOther || h.Get("Location") != "/monitoring/" {
		t.Fatalf("sign-in page with a session: %d %q", status, h.Get("Location"))
	}

	// Sign-out clears the cookie.
	status, h, _ = e.do(req{method: http.MethodPost, path: "/console/signout", headers: []string{cookie, sameOrigin}})
	if status != http.StatusSeeOther || h.Get("Location") != console.SignInPath {
		t.Fatalf("sign out: %d %q", status, h.Get("Location"))
	}
	if c := sessionCookie(t, h); c.Value != "" || !c.Expires.Before(time.Now()) {
		t.Fatalf("sign-out left cookie %+v", c)
	}
	// A forged or tampered cookie is no session.
	for _, bad := range []string{"Cookie: ms_session=v1.9999999999.AAAA.AAAA", cookie + "x", "Cookie: ms_session="} {
		if status, _, _ := e.get("/console/", bad); status != http.StatusSeeOther {
			t.Fatalf("GET /console/ with %q: %d, want a redirect", bad, status)
		}
	}
}

// The console's JSON calls use the cookie; a change needs the console's
// header and a same-origin Origin too, and bearer clients are unchanged.
func TestConsoleSessionOnTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	cookie := e.signIn(testKey)
	stop := "/api/v1/scheduler/stop"
	for _, r := range []struct {
		headers []string
		status  int
		code    string
	}{
		{nil, 401, "unauthorized"},
		{[]string{cookie}, 403, "cross_site"},
		{[]string{cookie, sameOrigin}, 403, "cross_site"},
		{[]string{cookie, console.HeaderRequest + ": 1"}, 403, "cross_site"},
		{[]string{cookie, console.HeaderRequest + ": 1", "Origin: https://evil.example"}, 403, "cross_site"},
		{[]string{"Cookie: ms_session=forged", console.HeaderRequest + ": 1", sameOrigin}, 401, "unauthorized"},
	} {
		status, h, b := e.do(req{method: http.MethodPost, path: stop, headers: r.headers})
		wantError(t, status, h, b, r.status, r.code)
	}
	if ctl, err := e.st.Control(context.Background()); err != nil || !ctl.Running {
		t.Fatalf("a refused request changed the switch: %+v %v", ctl, err)
	}
	status, _, b := e.do(req{method: http.MethodPost, path: stop, headers: []string{cookie, console.HeaderRequest + ": 1", sameOrigin}})
	if status != 200 || decode[api.SchedulerStatus](t, b).Running {
		t.Fatalf("stop from the console: %d %s", status, b)
	}
	status, _, b = e.do(req{method: http.MethodPost, path: "/api/v1/scheduler/start", headers: []string{bearer(testKey)}})
	if status != 200 || !decode[api.SchedulerStatus](t, b).Running {
		t.Fatalf("start with the bearer key: %d %s", status, b)
	}
}

// The cookie is Secure over https: behind a proxy listed in
// TRUSTED_PROXIES that says so, and never because an untrusted client
// claims it.
func TestConsoleCookieSecureOnlyBehindTrustedHTTPS(t *testing.T) {
	t.Parallel()
	post := func(e *env) *http.Cookie {
		status, h, b := e.do(req{method: http.MethodPost, path: console.SignInPath, body: "key=" + testKey,
			headers: []string{"Content-Type: application/x-www-form-urlencoded", "Origin: https://example.com", "X-Forwarded-Proto: https"}})
		if status != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", status, b)
		}
		return sessionCookie(t, h)
	}
	// app.Test's requests come from 0.0.0.0.
	if c := post(newEnv(t, "API_KEY="+testKey, "TRUSTED_PROXIES=0.0.0.0")); !c.Secure {
		t.Fatalf("behind a trusted https proxy the cookie is not Secure: %+v", c)
	}
	if c := post(newEnv(t, "API_KEY="+testKey)); c.Secure {
		t.Fatalf("an untrusted X-Forwarded-Proto made the cookie Secure: %+v", c)
	}
}

// Without API_KEY there is no sign-in: the console is open.
func TestConsoleOpenWithoutKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, _, b := e.get("/console/")
	if status != 200 || strings.Contains(string(b), "btn-signout") {
		t.Fatalf("GET /console/: %d\n%.300s", status, b)
	}
	if status, h, _ := e.get("/console/signin"); status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Fatalf("sign-in page without API_KEY: %d %q", status, h.Get("Location"))
	}
	if status, h, _ := e.get("/console"); status != http.StatusMovedPermanently || h.Get("Location") != "/console/" {
		t.Fatalf("GET /console: %d %q", status, h.Get("Location"))
	}
	for _, a := range []struct{ path, ct string }{
		{"/console/assets/console.js", "javascript"}, {"/console/assets/console.css", "text/css"}, {"/console/assets/icon.svg", "image/svg+xml"},
	} {
		status, h, b := e.get(a.path)
		if status != 200 || !strings.Contains(h.Get("Content-Type"), a.ct) || len(b) == 0 {
			t.Fatalf("%s: %d %q", a.path, status, h.Get("Content-Type"))
		}
	}
	status, h, b := e.get("/console/assets/missing.js")
	wantError(t, status, h, b, 404, "not_found")
}
