package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// flakyStore is the real store whose record statement fails while failing
// is set, as PostgreSQL does when it refuses writes but not reads; each
// refused write is announced on refused.
type flakyStore struct {
	*store.Store
	failing atomic.Bool
	refused chan struct{}
}

var _ delivery.Store = (*flakyStore)(nil)

func (f *flakyStore) RecordOutcomes(ctx context.Context, outs []store.Outcome) (map[string]bool, error) {
	if f.failing.Load() {
		select {
		case f.refused <- struct{}{}:
		default:
		}
		return nil, errors.New("could not write block: No space left on device")
	}
	return f.Store.RecordOutcomes(ctx, outs)
}

// fakeSender answers every call at once with answer, and counts the calls
// that started.
type fakeSender struct {
	calls  atomic.Int64
	mu     sync.Mutex
	perID  map[string]int
	answer func(r webhook.Request) (webhook.Response, error)
}

func (f *fakeSender) Send(_ context.Context, r webhook.Request) (webhook.Response, error) {
	f.calls.Add(1)
	f.mu.Lock()
	if f.perID == nil {
		f.perID = map[string]int{}
	}
	f.perID[r.ID]++
	f.mu.Unlock()
	if f.answer != nil {
		return f.answer(r)
	}
	return webhook.Response{Status: 200, MessageID: "r-" + r.ID}, nil
}

func (f *fakeSender) callsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perID[id]
}

// When recording fails, the completer keeps the outcomes and writes them
// again; meanwhile no call starts and the service reports it; once a write
// works, everything is recorded once and sending resumes by itself.
func TestRecordFailureHoldsCallsAndKeepsOutcomes(t *testing.T) {
	t.Parallel()
	const backlog, concurrency = 40, 2
	_, pool, st := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, backlog)
	flaky := &flakyStore{Store: st, refused: make(chan struct{}, 100)}
	flaky.failing.Store(true)
	send := &fakeSender{}
	rdb := testenv.NewRedis(t)
	defer rdb.Del(context.Background(), keys(ids)...)
	svc := newEngine(t, delivery.Params{
		// The budget leaves room for the rows handed back at recovery: a
		// hand-back does not refund the tick.
		Config: delivery.Config{Budget: 10 * backlog, Interval: time.Hour, Concurrency: concurrency, QueueSize: 2, MaxAttempts: 3, Lease: time.Minute},
		Store:  flaky, Sender: send, Cache: cache.New(rdb, time.Hour), Log: testenv.Logger(t),
	})
	sig := svc.sig
	svc.start()
	if err := svc.HandleDispatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	recv(t, sig.RecordFailed, 10*time.Second, "the record to fail")
	if !svc.RecordHealth().Failing {
		t.Fatal("RecordHealth does not report the failing records")
	}
	// Two more refused writes (the backoff runs) and the calls must stand
	// still: none starts while records fail.
	for range 2 {
		recv(t, flaky.refused, 10*time.Second, "a retried write")
	}
	held := send.calls.Load()
	for range 3 {
		recv(t, flaky.refused, 10*time.Second, "a retried write")
	}
	if now := send.calls.Load(); now != held {
		t.Fatalf("%d calls started while outcomes could not be recorded", now-held)
	}
	if held > 2*concurrency+2 {
		t.Fatalf("%d calls before the first failed write; at most the claimed rows (%d) may start", held, 2*concurrency+2)
	}
	// The claims of the first rows; none may come while failing.
	claimsBefore := len(sig.Claimed)
	for range 2 {
		recv(t, flaky.refused, 10*time.Second, "a retried write")
	}
	if n := len(sig.Claimed); n != claimsBefore {
		t.Fatalf("%d claims while outcomes could not be recorded", n-claimsBefore)
	}

	flaky.failing.Store(false)
	recv(t, sig.RecordRecovered, 10*time.Second, "the record to work again")
	svc.settle()
	if claimsBefore == 0 || len(svc.claims) <= claimsBefore {
		t.Fatalf("claims: %d before recovery, %d after; want claims on both sides", claimsBefore, len(svc.claims)-claimsBefore)
	}
	if svc.RecordHealth().Failing {
		t.Fatal("RecordHealth still failing after a write worked")
	}
	var sent, attempts int
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE status = 'sent' AND attempts = 1), (SELECT count(*) FROM message_attempts) FROM messages`).Scan(&sent, &attempts); err != nil {
		t.Fatal(err)
	}
	if sent != backlog || attempts != backlog {
		t.Fatalf("%d sent on their first attempt, %d attempts recorded; want %d and %d", sent, attempts, backlog, backlog)
	}
	for _, id := range ids {
		if n := send.callsOf(id); n != 1 {
			t.Errorf("%s called %d times", id, n)
		}
	}
	if st := svc.Stats(); st.Sent != backlog || st.LostClaims != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// An answer PostgreSQL cannot store (a NUL, invalid UTF-8) fails its batch
// statement; the batch is split so that the healthy outcomes next to it
// are recorded as they are, and the odd one is recorded without the
// answer, at its right status.
func TestBadAnswerDoesNotFailItsBatch(t *testing.T) {
	t.Parallel()
	const backlog = 20
	_, pool, st := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, backlog)
	bad := map[string]func() (webhook.Response, error){
		ids[3]: func() (webhook.Response, error) { return webhook.Response{Status: 200, MessageID: "id\x00nul"}, nil },
		ids[7]: func() (webhook.Response, error) {
			return webhook.Response{Status: 200, MessageID: strings.Repeat("é", 127) + "\xc3"}, nil
		},
		ids[11]: func() (webhook.Response, error) {
			return webhook.Response{}, &webhook.Error{Status: 400, Reason: "bad number \x00 here"}
		},
		ids[15]: func() (webhook.Response, error) {
			return webhook.Response{}, &webhook.Error{Status: 503, Retryable: true, Reason: "hata: ge\xc5."}
		},
	}
	send := &fakeSender{answer: func(r webhook.Request) (webhook.Response, error) {
		if f, ok := bad[r.ID]; ok {
			return f()
		}
		return webhook.Response{Status: 200, MessageID: "r-" + r.ID}, nil
	}}
	rdb := testenv.NewRedis(t)
	defer rdb.Del(context.Background(), keys(ids)...)
	svc := newEngine(t, delivery.Params{
		Config: delivery.Config{
			Budget: backlog, Interval: time.Hour, Concurrency: backlog, MaxAttempts: 3, Lease: time.Minute,
			RetryDelay: func(int, time.Duration) time.Duration { return time.Hour },
		},
		Store: st, Sender: send, Cache: cache.New(rdb, time.Hour), Log: testenv.Logger(t),
	})
	// A long linger and a claim of the whole backlog put every outcome in
	// one batch.
	delivery.SetRecordLinger(svc.Service, time.Second)
	svc.start()
	if n := svc.dispatch(); n != backlog {
		t.Fatalf("dispatched %d, want %d", n, backlog)
	}
	if len(svc.claims) != 2 || svc.claims[0] != backlog {
		t.Fatalf("claims %v, want the whole backlog at once, then none", svc.claims)
	}
	select {
	case <-svc.sig.RecordFailed:
		t.Fatal("a data error was taken for a failing database")
	default:
	}
	for i, id := range ids {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("sent r-%s ", id)
		switch i {
		case 3, 7:
			want = "sent  " // sent, the remote id dropped
		case 11:
			want = "failed  answer could not be stored"
		case 15:
			want = "pending  answer could not be stored"
		}
		if got := m.Status + " " + m.RemoteMessageID + " " + m.LastError; got != want {
			t.Errorf("message %d: %q, want %q", i, got, want)
		}
		if m.Attempts != 1 || send.callsOf(id) != 1 {
			t.Errorf("message %d: %d attempts, %d calls", i, m.Attempts, send.callsOf(id))
		}
	}
	var attempts int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM message_attempts`).Scan(&attempts); err != nil || attempts != backlog {
		t.Fatalf("%d attempt rows (%v), want %d", attempts, err, backlog)
	}
	if s := svc.Stats(); s.Records < 2 || s.Sent != backlog-2 || s.Failed != 1 || s.Retried != 1 || s.LostClaims != 0 {
		t.Fatalf("stats %+v: want the batch split, 18 sent, 1 failed, 1 retried", s)
	}
}
