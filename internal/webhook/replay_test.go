package webhook_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

// silentReceiver is a raw TCP receiver on 127.0.0.1 that reads whole
// requests and counts them per Idempotency-Key. On each connection it
// answers the first `answered` requests with 202 and keep-alive, then
// reads one more and closes the connection without a word.
type silentReceiver struct {
	ln       net.Listener
	answered int
	mu       sync.Mutex
	posts    map[string]int
	wg       sync.WaitGroup
}

func newSilentReceiver(t *testing.T, answered int) *silentReceiver {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &silentReceiver{ln: ln, answered: answered, posts: map[string]int{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Error(err)
		}
		r.wg.Wait()
	})
	return r
}

func (r *silentReceiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // the listener was closed
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *silentReceiver) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() { _ = c.Close() }() // hanging up is the point; a failed close changes nothing
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		r.mu.Lock()
		r.posts[req.Header.Get("Idempotency-Key")]++
		r.mu.Unlock()
		if n >= r.answered {
			return // read in full, never answered
		}
		body := `{"message":"Accepted","messageId":"m"}`
		if _, err := fmt.Fprintf(c, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

func (r *silentReceiver) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts[key]
}

// A receiver that reads a request and hangs up without answering sees that
// request exactly once per Send: the transport does not replay it on a
// fresh connection, even though it carries an Idempotency-Key, whether the
// connection was fresh or reused from an earlier call.
func TestNoTransportReplay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		answered int // requests answered per connection before the silent one
	}{
		{"every request unanswered", 0},
		{"second request on a reused connection unanswered", 1},
		{"third request on a reused connection unanswered", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recv := newSilentReceiver(t, tc.answered)
			c := newClient(t, "http://"+recv.ln.Addr().String()+"/hook")
			failed := 0
			for i := range 9 {
				key := fmt.Sprintf("msg-%d", i)
				_, err := c.Send(context.Background(), webhook.Request{ID: key, To: "+905551111111", Content: "c"})
				if got := recv.count(key); got != 1 {
					t.Fatalf("send %d (%v): the receiver saw %d POSTs, want 1", i, err, got)
				}
				if err == nil {
					continue
				}
				var werr *webhook.Error
				if !errors.As(err, &werr) || !werr.Retryable || werr.Kind() != "connection" {
					t.Fatalf("send %d: %v, want a retryable connection error", i, err)
				}
				failed++
			}
			// Each connection answers `answered` calls and drops the next,
			// so the drops are exactly every (answered+1)-th call; with
			// answered > 0 each drop is on a reused connection, the case
			// the transport would replay.
			if want := 9 / (tc.answered + 1); failed != want {
				t.Fatalf("%d calls failed, want %d", failed, want)
			}
		})
	}
}
