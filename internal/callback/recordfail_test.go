package callback_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// refusingStore is the real store whose record statement fails while
// refuse is set; it counts the claims.
type refusingStore struct {
	*store.Store
	refuse atomic.Bool
	claims atomic.Int64
}

func (r *refusingStore) ClaimEvents(ctx context.Context, limit int, lease time.Duration, withDefault bool) ([]store.ClaimedEvent, error) {
	r.claims.Add(1)
	return r.Store.ClaimEvents(ctx, limit, lease, withDefault)
}

func (r *refusingStore) RecordEvents(ctx context.Context, outs []store.EventOutcome) (map[string]bool, error) {
	if r.refuse.Load() {
		return nil, errors.New("record refused by the test")
	}
	return r.Store.RecordEvents(ctx, outs)
}

var _ callback.Store = (*refusingStore)(nil)

// While its record statement fails, the sender claims nothing and starts
// no call; once a record works again every event is accepted exactly once.
func TestSenderStartsNoCallWhileRecordsFail(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	rcv, srv := newReceiver(t, func(call, int) int { return 204 })
	const n = 20
	news := make([]store.NewMessage, n)
	for i := range news {
		news[i] = store.NewMessage{ID: fmt.Sprintf("r%02d", i), Content: "hi", PhoneNumber: "+905551111111"}
	}
	if _, err := s.Create(ctx, news); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE messages SET status = 'canceled'`); err != nil {
		t.Fatal(err)
	}
	rs := &refusingStore{Store: s}
	rs.refuse.Store(true)
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	const concurrency = 2
	signals := &callback.Signals{Recorded: make(chan store.EventOutcome, 4*n), RecordFailed: make(chan error, 64)}
	snd := callback.New(callback.Deps{
		Config: callback.Config{URL: srv.URL, Key: key, Schedule: retry.MustParse("10ms"), Concurrency: concurrency,
			Timeout: 5 * time.Second, Lease: 60 * time.Second},
		Store: rs, Log: testenv.Logger(t), Metrics: metrics.NewCallback(prometheus.NewRegistry()), Signals: signals,
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); snd.Run(runCtx) }()
	defer func() { stop(); <-done }()

	failures := func(k int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for range k {
			select {
			case err := <-signals.RecordFailed:
				if err == nil {
					t.Fatal("a record failure signal without its error")
				}
			case <-deadline:
				t.Fatalf("the record did not fail %d times", k)
			}
		}
	}
	failures(2)
	calls, claims := len(rcv.got()), rs.claims.Load()
	// Four more failed tries, about 1.5 s of backoff: no claim, no call.
	failures(4)
	if got := len(rcv.got()); got != calls || calls > 2*concurrency {
		t.Errorf("calls while records failed: %d, then %d (want no new call, and at most %d in all)", calls, got, 2*concurrency)
	}
	if got := rs.claims.Load(); got != claims {
		t.Errorf("claims while records failed: %d, then %d", claims, got)
	}

	rs.refuse.Store(false)
	accepted := 0
	deadline := time.After(30 * time.Second)
	for accepted < n {
		select {
		case o := <-signals.Recorded:
			if o.Status == store.EventDelivered {
				accepted++
			}
		case <-deadline:
			t.Fatalf("%d of %d events accepted after records worked again", accepted, n)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, k := range rcv.seen {
		if k != 1 {
			t.Errorf("event %s was called %d times", id, k)
		}
	}
}
