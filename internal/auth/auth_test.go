package auth_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/auth"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestKey(t *testing.T) {
	t.Parallel()
	if auth.NewKey("") != nil || auth.NewKey("  \t") != nil {
		t.Fatalf("an empty key is a key")
	}
	k := auth.NewKey(" secret-0123456789 ")
	for cand, want := range map[string]bool{
		"secret-0123456789": true, " secret-0123456789\t": true, "secret-012345678": false,
		"secret-0123456789x": false, "": false, "SECRET-0123456789": false,
	} {
		if got := k.Matches(cand); got != want {
			t.Errorf("Matches(%q) = %v, want %v", cand, got, want)
		}
	}
	var none *auth.Key
	if none.Matches("") || none.Matches("x") || none.Fingerprint() != nil {
		t.Fatalf("a nil key matches or has a fingerprint")
	}
	other := auth.NewKey("secret-0123456789x")
	if bytes.Equal(k.Fingerprint(), other.Fingerprint()) || !bytes.Equal(k.Fingerprint(), auth.NewKey("secret-0123456789").Fingerprint()) {
		t.Fatalf("fingerprints do not tell keys apart")
	}
	if bytes.Contains(k.Fingerprint(), []byte("secret")) || len(k.Fingerprint()) != 32 {
		t.Fatalf("fingerprint %x", k.Fingerprint())
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"  BEARER   abc  ", "abc", true},
		{"Basic abc", "", false},
		{"abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	} {
		got, ok := auth.BearerToken(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := auth.ParsePrefixes([]string{"10.0.0.0/8", "127.0.0.1", "::1", "2001:db8:ffff::/48", "not an address"})
	if len(trusted) != 4 {
		t.Fatalf("parsed %v", trusted)
	}
	a := netip.MustParseAddr
	for _, c := range []struct {
		name string
		peer string
		xff  string
		want string
	}{
		{"direct, no header", "203.0.113.7", "", "203.0.113.7"},
		{"direct, header ignored", "203.0.113.7", "198.51.100.1", "203.0.113.7"},
		{"untrusted peer, header ignored even if it names a proxy", "203.0.113.7", "10.0.0.1", "203.0.113.7"},
		{"trusted proxy, one hop", "127.0.0.1", "198.51.100.1", "198.51.100.1"},
		{"trusted proxy, no header", "127.0.0.1", "", "127.0.0.1"},
		{"trusted proxy, blank header", "127.0.0.1", " , ", "127.0.0.1"},
		{"spoofed left part ignored", "127.0.0.1", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
		{"two trusted hops", "127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"},
		{"every hop trusted: the left-most", "127.0.0.1", "10.0.0.5, 10.0.0.6", "10.0.0.5"},
		{"garbage ends the walk at the last good hop", "127.0.0.1", "198.51.100.1, nonsense, 10.0.0.9", "10.0.0.9"},
		{"garbage right after the proxy", "127.0.0.1", "198.51.100.1, nonsense", "127.0.0.1"},
		{"port on an entry", "127.0.0.1", "198.51.100.1:4711", "198.51.100.1"},
		{"IPv6 with port", "::1", "[2001:db8::5]:443", "2001:db8::5"},
		{"IPv6 trusted range", "::1", "2001:db8:1::9, 2001:db8:ffff::1", "2001:db8:1::9"},
		{"IPv4-mapped peer", "::ffff:127.0.0.1", "198.51.100.2", "198.51.100.2"},
		{"IPv4-mapped entry", "127.0.0.1", "::ffff:198.51.100.3", "198.51.100.3"},
		{"zone is not an address", "127.0.0.1", "fe80::1%eth0", "127.0.0.1"},
	} {
		if got := auth.ClientIP(a(c.peer), c.xff, trusted); got != a(c.want) {
			t.Errorf("%s: ClientIP(%s, %q) = %s, want %s", c.name, c.peer, c.xff, got, c.want)
		}
	}
	if got := auth.ClientIP(a("127.0.0.1"), "198.51.100.1", nil); got != a("127.0.0.1") {
		t.Errorf("no trusted proxies: %s", got)
	}
	long := strings.Repeat("10.0.0.1,", 100) + "10.0.0.2"
	if got := auth.ClientIP(a("127.0.0.1"), long, trusted); !trusted[0].Contains(got) {
		t.Errorf("a long chain of proxies: %s", got)
	}
}

// FuzzClientIP: X-Forwarded-For is outside input; whatever it holds, the
// answer is the peer or an address the header names, and it is the peer
// when the peer is not trusted.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"", "1.2.3.4", "1.2.3.4, 10.0.0.1", ",,,", "[::1]:80", "fe80::1%x", strings.Repeat("10.0.0.1,", 40)} {
		f.Add(s, true)
	}
	trusted := auth.ParsePrefixes([]string{"10.0.0.0/8", "127.0.0.1"})
	f.Fuzz(func(t *testing.T, xff string, viaProxy bool) {
		peer := netip.MustParseAddr("203.0.113.9")
		if viaProxy {
			peer = netip.MustParseAddr("127.0.0.1")
		}
		got := auth.ClientIP(peer, xff, trusted)
		if !got.IsValid() {
			t.Fatalf("invalid address for %q", xff)
		}
		if !viaProxy && got != peer {
			t.Fatalf("untrusted peer: got %s from %q", got, xff)
		}
		if got != peer && !names(xff, got) {
			t.Fatalf("%s is neither the peer nor in %q", got, xff)
		}
	})
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	rdb := testenv.NewRedis(t)
	ns := testenv.Queue(t)
	th := auth.NewThrottle(auth.ThrottleDeps{Redis: rdb, Namespace: ns})
	other := auth.NewThrottle(auth.ThrottleDeps{Redis: rdb, Namespace: ns + "-other"})
	ctx := context.Background()
	attempt := func(th *auth.Throttle, client string) (bool, time.Duration) {
		t.Helper()
		ok, wait, err := th.Attempt(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		return ok, wait
	}
	for i := range auth.SignInAttempts {
		if ok, _ := attempt(th, "198.51.100.1"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	ok, wait := attempt(th, "198.51.100.1")
	if ok || wait <= auth.SignInWindow-time.Minute || wait > auth.SignInWindow {
		t.Fatalf("attempt 11: ok %v, wait %s", ok, wait)
	}
	// Refused attempts do not move the window.
	if ok, wait2 := attempt(th, "198.51.100.1"); ok || wait2 > wait {
		t.Fatalf("attempt 12: ok %v, wait %s after %s", ok, wait2, wait)
	}
	// Other clients and other deployments have counts of their own.
	if ok, _ := attempt(th, "198.51.100.2"); !ok {
		t.Fatalf("another client was refused")
	}
	if ok, _ := attempt(other, "198.51.100.1"); !ok {
		t.Fatalf("another namespace was refused")
	}
	if err := th.Reset(ctx, "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := attempt(th, "198.51.100.1"); !ok {
		t.Fatalf("refused after a reset")
	}
	for _, k := range []string{"198.51.100.1", "198.51.100.2"} {
		if err := th.Reset(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Reset(ctx, "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
}

// names tells whether one entry of xff is a (with or without a port).
func names(xff string, a netip.Addr) bool {
	for _, e := range strings.Split(xff, ",") {
		e = strings.TrimSpace(e)
		if b, err := netip.ParseAddr(e); err == nil && b.Unmap() == a {
			return true
		}
		if ap, err := netip.ParseAddrPort(e); err == nil && ap.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
