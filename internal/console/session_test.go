package console

import (
	"bytes"
	"strings"
	"testing"
)

func TestSessionValue(t *testing.T) {
	t.Parallel()
	v, hash, err := newSession()
	if err != nil {
		t.Fatal(err)
	}
	v2, hash2, err := newSession()
	if err != nil || v2 == v || bytes.Equal(hash, hash2) {
		t.Fatalf("two sessions are the same (%v)", err)
	}
	if got, ok := parseSession(v); !ok || !bytes.Equal(got, hash) {
		t.Fatalf("parseSession(%q) = %x, %v; want %x", v, got, ok, hash)
	}
	if bytes.Contains([]byte(v), hash) || strings.Contains(v, string(hash)) {
		t.Fatalf("the cookie carries the stored digest")
	}
	for _, bad := range []string{
		"", "v2.", "v1." + strings.TrimPrefix(v, "v2."), v[:len(v)-1], v + "A", v + "=", "v2.!" + v[4:],
		strings.Repeat("A", 200), "v2." + strings.Repeat("A", 125), "V2" + v[2:],
	} {
		if _, ok := parseSession(bad); ok {
			t.Errorf("parseSession(%q) accepted", bad)
		}
	}
}

// FuzzParseSession: the cookie is outside input; no value panics, and an
// accepted one is exactly the version prefix and 32 bytes of id.
func FuzzParseSession(f *testing.F) {
	v, _, err := newSession()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{v, "", ".", "v2.", "v2.====", v + ".", strings.Repeat(".", 300), "v2.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, ok := parseSession(s); ok && (len(s) != len(v) || !strings.HasPrefix(s, "v2.")) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/":                   "/console/",
		"/console":                    "/console",
		"/monitoring/":                "/monitoring/",
		"/monitoring/queues/q1/tasks": "/monitoring/queues/q1/tasks",
		"":                            "/console/",
		"/":                           "/console/",
		"//evil.example":              "/console/",
		"/console//evil":              "/console/",
		"/\\evil.example":             "/console/",
		"https://evil.example/":       "/console/",
		"/consoleX":                   "/console/",
		"/console/\r\nSet-Cookie: x":  "/console/",
		"/swagger/index.html":         "/console/",
		"javascript:alert(1)":         "/console/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeNext: the next parameter is outside input; whatever it is, the
// redirect stays on this server, under /console or /monitoring.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/", "//x", "/monitoring/a", "/\\x", "http://x", "/console/%2F%2Fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		if !strings.HasPrefix(got, "/console") && !strings.HasPrefix(got, "/monitoring") {
			t.Fatalf("safeNext(%q) = %q leaves the console", s, got)
		}
		if strings.Contains(got, "//") || strings.ContainsAny(got, "\\\r\n\t ") {
			t.Fatalf("safeNext(%q) = %q could leave the site", s, got)
		}
	})
}
