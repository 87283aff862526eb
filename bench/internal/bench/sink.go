package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/messaging-server/messaging-server/internal/sink"
)

// receiver is the project's webhook sink on 127.0.0.1, plus a ledger of
// first receipts: it tells when every message has arrived, how many arrived
// more than once, and when each arrived (for splitting the latency into
// the part before the webhook and the part after).
type receiver struct {
	srv  *http.Server
	url  string
	done chan struct{}
	// delay is how long every answer is held: a slow receiver.
	delay time.Duration

	mu         sync.Mutex
	first      map[string]time.Time
	requests   int
	duplicates int
	firstAt    time.Time
	lastAt     time.Time
}

// startReceiver serves a fresh sink.Sink; expect sizes the ledger. With a
// delay, the sink holds every answer that long after the request arrived
// (the receipt time is the arrival), like a receiver that is slow to answer.
func startReceiver(ctx context.Context, expect int, delay time.Duration) (*receiver, error) {
	r := &receiver{first: make(map[string]time.Time, expect), done: make(chan struct{}), delay: delay}
	s := sink.New(r.respond, nil)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "http://" + ln.Addr().String() + "/webhook"
	r.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err) // Serve on a fresh listener fails only on programming errors
		}
	}()
	return r, nil
}

// respond records the request, holds it for the delay, and lets the sink
// answer it as usual.
func (r *receiver) respond(_ http.ResponseWriter, req *http.Request, d sink.Delivery, n int) bool {
	r.record(d, n)
	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done(): // the caller gave up or the sink is closing
		}
	}
	return false
}

func (r *receiver) record(d sink.Delivery, n int) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if n > 1 {
		r.duplicates++
	} else {
		r.first[d.IdempotencyKey] = now
	}
	if r.firstAt.IsZero() {
		r.firstAt = now
	}
	r.lastAt = now
}

// unique is how many distinct messages arrived.
func (r *receiver) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.first)
}

// receipts returns the ledger; call it once traffic has stopped.
func (r *receiver) receipts() (first map[string]time.Time, requests, duplicates int, from, to time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.requests, r.duplicates, r.firstAt, r.lastAt
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	<-r.done
}
