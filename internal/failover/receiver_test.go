package failover_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// call is one request a receiver got.
type call struct {
	at     time.Time
	id, to string
	status int
}

// receiver is one provider the test controls: it accepts every call, or
// answers 500 to everything while down.
type receiver struct {
	srv  *httptest.Server
	down atomic.Bool // answer 500
	gone atomic.Bool // answer 410

	mu    sync.Mutex
	calls []call
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/sms" }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct {
		To string `json:"to"`
	}
	_ = json.NewDecoder(io.LimitReader(req.Body, 1<<16)).Decode(&body) // a bad body is the test's own bug; the status shows it
	c := call{at: time.Now(), id: req.Header.Get("Idempotency-Key"), to: body.To, status: http.StatusAccepted}
	switch {
	case r.gone.Load():
		c.status = http.StatusGone
	case r.down.Load():
		c.status = http.StatusInternalServerError
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	if c.status != http.StatusAccepted {
		w.WriteHeader(c.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"message":"Accepted","messageId":"r-` + c.id + `"}`))
}

// Calls is every request so far.
func (r *receiver) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// accepted counts the accepted calls per message id.
func (r *receiver) accepted() map[string]int {
	out := map[string]int{}
	for _, c := range r.Calls() {
		if c.status == http.StatusAccepted {
			out[c.id]++
		}
	}
	return out
}
