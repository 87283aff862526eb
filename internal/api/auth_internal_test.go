package api

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw  string
		want string // "" when refused
	}{
		{"/", "/"},
		{"/api/v1/messages", "/api/v1/messages"},
		{"/api/v1/messages/", "/api/v1/messages"},
		{"/monitoring/", "/monitoring"},
		{"/monitoring/api/queues/q1:pause", "/monitoring/api/queues/q1:pause"},
		{"/api/v1/messages/otp%3A42", "/api/v1/messages/otp:42"},
		{"/api/v1/messages/sent%20x", "/api/v1/messages/sent x"},
		{"/monitoring/api/queues/mess%61ges", "/monitoring/api/queues/messages"},
		{"/MONITORING/API/queues", "/MONITORING/API/queues"},
		// Encoded slashes, dots, backslashes and percent signs.
		{"/monitoring/api%2Fqueues%2Frt.dot%2Fpending_tasks", ""},
		{"/monitoring/api%2fqueues", ""},
		{"/monitoring/%2e%2e/api/v1/messages", ""},
		{"/monitoring/%2E%2E/x", ""},
		{"/api/v1/messages/%2e", ""},
		{"/monitoring/api%252Fqueues", ""},
		{"/monitoring/api%25252Fqueues", ""},
		{"/monitoring/api%5Cqueues", ""},
		{"/monitoring\\api", ""},
		{"/api/v1/messages/%00", ""},
		// Dot segments and empty segments.
		{"/monitoring/../api/v1/messages", ""},
		{"/monitoring/./api", ""},
		{"/api/v1/messages/..", ""},
		{"/api//v1/messages", ""},
		{"//monitoring", ""},
		// Not a path, or bad encoding.
		{"", ""},
		{"monitoring", ""},
		{"/api/v1/messages/%zz", ""},
		{"/api/v1/messages/%", ""},
	} {
		got, ok := cleanPath(c.raw)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", c.raw, got, ok, c.want)
		}
	}
}

// FuzzCleanPath: the path is outside input; an accepted one is clean,
// decoded, and decodes to itself (no second reading exists).
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/monitoring/api%2Fqueues", "/a/../b", "/%2e%2e", "/api/v1/messages/x%3Ay", "/a%252Fb", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, ok := cleanPath(raw)
		if !ok {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") ||
			strings.Contains(p, "/./") || strings.ContainsAny(p, "\\\x00") {
			t.Fatalf("cleanPath(%q) = %q is not clean", raw, p)
		}
		if again, ok := cleanPath(p); strings.Contains(p, "%") && ok && again != p {
			t.Fatalf("cleanPath(%q) = %q decodes again to %q", raw, p, again)
		}
	})
}

func TestZoneOf(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]zone{
		"/api/v1": zoneAPI, "/api/v1/messages": zoneAPI, "/API/V1/MESSAGES": zoneAPI, "/Api/v1/scheduler/start": zoneAPI,
		"/api/v10": zoneOpen, "/api": zoneOpen, "/api/v2/x": zoneOpen,
		"/monitoring": zoneMonitoring, "/monitoring/x.js": zoneMonitoring, "/MONITORING/api/queues": zoneMonitoring, "/monitoringx": zoneOpen,
		"/console": zoneConsole, "/console/signin": zoneConsole, "/swagger/index.html": zoneSwagger,
		"/healthz": zoneOpen, "/readyz": zoneOpen, "/metrics": zoneOpen, "/": zoneOpen,
	} {
		if got := zoneOf(p); got != want {
			t.Errorf("zoneOf(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	type in struct {
		z    zone
		read bool
		cred credential
	}
	want := map[in]verdict{
		{zoneAPI, true, credNone}: needSession, {zoneAPI, true, credRead}: allow, {zoneAPI, true, credFull}: allow,
		{zoneAPI, false, credNone}: needSession, {zoneAPI, false, credRead}: readOnly, {zoneAPI, false, credFull}: allow,
		{zoneMonitoring, true, credNone}: needSession, {zoneMonitoring, true, credRead}: readOnly, {zoneMonitoring, true, credFull}: allow,
		{zoneMonitoring, false, credNone}: needSession, {zoneMonitoring, false, credRead}: readOnly, {zoneMonitoring, false, credFull}: allow,
	}
	for _, z := range []zone{zoneOpen, zoneConsole, zoneSwagger} {
		for _, read := range []bool{true, false} {
			for _, cred := range []credential{credNone, credRead, credFull} {
				want[in{z, read, cred}] = allow
			}
		}
	}
	for i, w := range want {
		if got := decide(i.z, i.read, i.cred); got != w {
			t.Errorf("decide(%+v) = %v, want %v", i, got, w)
		}
	}
}

func TestDispatchQueueChange(t *testing.T) {
	t.Parallel()
	s := &Server{}
	s.cfg.Queue = "messages"
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"DELETE", "/monitoring/api/queues/messages", true},
		{"DELETE", "/monitoring/api/queues/messages/", true},
		{"DELETE", "/MONITORING/api/queues/messages", true},
		{"POST", "/monitoring/api/queues/messages:pause", true},
		{"POST", "/monitoring/api/queues/messages:resume", false},
		{"GET", "/monitoring/api/queues/messages", false},
		{"DELETE", "/monitoring/api/queues/other", false},
		{"DELETE", "/monitoring/api/queues/messages/pending_tasks/x", false},
		{"DELETE", "/monitoring/api/queues/messages2", false},
	} {
		if got := s.dispatchQueueChange(c.method, c.path); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

func TestWithInlineScripts(t *testing.T) {
	t.Parallel()
	page := []byte(`<script src="/x.js"></script><script>a()</script><p>x</p><script>
b()
</script>`)
	got := withInlineScripts("default-src 'self'; script-src 'self'; style-src 'self'", page)
	// sha256("a()") and sha256("\nb()\n"), base64.
	want := "default-src 'self'; script-src 'self' 'sha256-qVpDBgj7bpq5hMAcGp3AOc79J3Y1Z4HvySTwKrWDoy4=' 'sha256-"
	if !strings.HasPrefix(got, want) || strings.Count(got, "'sha256-") != 2 {
		t.Fatalf("withInlineScripts = %q", got)
	}
	if got := withInlineScripts("script-src 'self'", []byte(`<script src="/x.js"></script>`)); got != "script-src 'self'" {
		t.Fatalf("no inline script: %q", got)
	}
}
