package callback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
)

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestDecide(t *testing.T) {
	t.Parallel()
	sched := retry.MustParse("1s,10s,30s")
	wrapped := fmt.Errorf("post: %w", timeoutErr{})
	for _, c := range []struct {
		name   string
		code   int
		err    error
		round  int
		status string
		delay  time.Duration
		reason string
	}{
		{"200 accepts", 200, nil, 1, store.EventDelivered, 0, ""},
		{"204 accepts", 204, nil, 4, store.EventDelivered, 0, ""},
		{"299 accepts", 299, nil, 1, store.EventDelivered, 0, ""},
		{"300 retries", 300, nil, 1, store.EventPending, time.Second, "callback answered 300"},
		{"500 on the first call waits the first step", 500, nil, 1, store.EventPending, time.Second, "callback answered 500"},
		{"410 is retried too", 410, nil, 2, store.EventPending, 10 * time.Second, "callback answered 410"},
		{"the last step", 503, nil, 3, store.EventPending, 30 * time.Second, "callback answered 503"},
		{"after the last step it fails", 503, nil, 4, store.EventFailed, 0, "callback answered 503"},
		{"a timeout retries", 0, wrapped, 1, store.EventPending, time.Second, "callback timed out"},
		{"no answer retries", 0, errors.New("connection refused"), 2, store.EventPending, 10 * time.Second, "callback failed: no answer"},
		{"context deadline is a timeout", 0, context.DeadlineExceeded, 4, store.EventFailed, 0, "callback timed out"},
	} {
		// jitter 0.5 is the step itself.
		got := callback.Decide(c.code, c.err, c.round, sched, 0.5)
		if got.Status != c.status || got.Delay != c.delay || got.Reason != c.reason {
			t.Errorf("%s: %+v, want %s %s %q", c.name, got, c.status, c.delay, c.reason)
		}
	}
	// The jitter spreads a step by ±20%.
	if lo, hi := callback.Decide(500, nil, 2, sched, 0), callback.Decide(500, nil, 2, sched, 0.999); lo.Delay != 8*time.Second || hi.Delay < 11*time.Second || hi.Delay > 12*time.Second {
		t.Errorf("jitter: %s and %s", lo.Delay, hi.Delay)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	allowed := []string{"hooks.example.com", "127.0.0.1", "::1"}
	for _, c := range []struct {
		url  string
		want error
	}{
		{"https://hooks.example.com/status", nil},
		{"http://HOOKS.example.com:8080/s?x=1", nil},
		{"http://127.0.0.1:9000/cb", nil},
		{"http://[::1]:9000/cb", nil},
		{"https://evil.example.com/status", callback.ErrHostNotAllowed},
		{"https://hooks.example.com.evil.com/", callback.ErrHostNotAllowed},
		{"ftp://hooks.example.com/", callback.ErrNotHTTP},
		{"/relative", callback.ErrNotHTTP},
		{"hooks.example.com/x", callback.ErrNotHTTP},
		{"https://", callback.ErrNotHTTP},
		{"https://user:pw@hooks.example.com/", callback.ErrNotHTTP},
		{"https://hooks.example.com/#frag", callback.ErrNotHTTP},
		{" https://hooks.example.com/", callback.ErrNotHTTP},
		{"", callback.ErrNotHTTP},
		{"https://hooks.example.com/" + strings.Repeat("a", callback.MaxURLLength), callback.ErrNotHTTP},
	} {
		if err := callback.CheckURL(c.url, allowed); !errors.Is(err, c.want) {
			t.Errorf("CheckURL(%q) = %v, want %v", c.url, err, c.want)
		}
	}
	if err := callback.CheckURL("https://hooks.example.com/", nil); !errors.Is(err, callback.ErrHostNotAllowed) {
		t.Errorf("no allowed host: %v", err)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://a.example/x", "http://[::1]:1/", "http://a.example:99999/", "https://a.example/%zz", "\x00", "http://a.example\\@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := callback.CheckURL(s, []string{"a.example"})
		if err == nil && !strings.HasPrefix(strings.ToLower(s), "http") {
			t.Fatalf("CheckURL(%q) accepted a URL that is not http(s)", s)
		}
	})
}
