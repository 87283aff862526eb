package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/ratelimit"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// TestTwoLimitersShareOneLimit: two handles (two processes) on the same
// provider together get the burst at once, then are told to wait about
// one period over the rate.
func TestTwoLimitersShareOneLimit(t *testing.T) {
	t.Parallel()
	rdb := testenv.NewRedis(t)
	prefix := testenv.Name("rate")
	a := ratelimit.New(ratelimit.Deps{Redis: rdb, Prefix: prefix})
	b := ratelimit.New(ratelimit.Deps{Redis: rdb, Prefix: prefix})
	t.Cleanup(func() { rdb.Del(context.Background(), a.Key("p"), a.Key("q")) })
	ctx := context.Background()
	allowed := 0
	var wait time.Duration
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, after, err := l.Allow(ctx, "p", 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		} else {
			wait = after
		}
	}
	if allowed != 3 {
		t.Fatalf("%d calls allowed at once, want the burst of 3", allowed)
	}
	if wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("retry after %s, want about 1/10 s", wait)
	}
	other, _, err := a.Allow(ctx, "q", 10, 1)
	if err != nil || !other {
		t.Fatalf("another provider's limit is its own: %v %v", other, err)
	}
}
