package console

import (
	"strings"
	"testing"
	"time"
)

func TestSessionSignAndVerify(t *testing.T) {
	t.Parallel()
	key := sessionKey("k-0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	v, err := signSession(key, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if v2, err := signSession(key, now.Add(time.Hour)); err != nil || v2 == v {
		t.Fatalf("two sessions are the same value (%v): the nonce is missing", err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 1
		return string(b)
	}
	body, _, _ := strings.Cut(v, ".")
	cases := []struct {
		name  string
		key   []byte
		value string
		at    time.Time
		want  bool
	}{
		{"fresh", key, v, now, true},
		{"just before expiry", key, v, now.Add(time.Hour - time.Second), true},
		{"at expiry", key, v, now.Add(time.Hour), false},
		{"expired", key, v, now.Add(2 * time.Hour), false},
		{"another API key", sessionKey("another key 0123456789"), v, now, false},
		{"tampered expiry", key, strings.Replace(v, ".18000036", ".99999999", 1), now, false},
		{"tampered signature", key, flip(v, len(v)-2), now, false},
		{"tampered nonce", key, flip(v, len(body)+13), now, false},
		{"empty", key, "", now, false},
		{"no dots", key, "garbage", now, false},
		{"too long", key, v + strings.Repeat("A", maxCookieLen), now, false},
	}
	for _, c := range cases {
		if got := verifySession(c.key, c.value, c.at); got != c.want {
			t.Errorf("%s: verify = %v, want %v", c.name, got, c.want)
		}
	}
}

// FuzzVerifySession: the cookie is outside input; no value panics, and
// none but a signed one is accepted.
func FuzzVerifySession(f *testing.F) {
	key := sessionKey("fuzz key 0123456789")
	v, err := signSession(key, time.Unix(2_000_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{v, "", ".", "v1...", "v1.1.a.b", v + ".", strings.Repeat(".", 300), "v1.-1.x.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if verifySession(key, s, time.Unix(1_900_000_000, 0)) && s != v {
			t.Fatalf("accepted an unsigned value %q", s)
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
