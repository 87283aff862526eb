package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// behaviour picks how the hostile webhook treats a message, from the number
// in its content ("message N").
func behaviour(content string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(content, "message "))
	return n % 6
}

// reset closes the request's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err) // httptest connections can always be hijacked
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// padded writes the sink's answer followed by 10 MiB of white space.
type padded struct{ http.ResponseWriter }

func (p padded) WriteHeader(code int) { p.ResponseWriter.WriteHeader(code) }
func (p padded) Write(b []byte) (int, error) {
	n, err := p.ResponseWriter.Write(b)
	if err != nil {
		return n, err
	}
	// The client stops reading after its limit and closes the connection,
	// so these writes are expected to fail part way.
	pad := []byte(strings.Repeat(" ", 1<<20))
	for range 10 {
		if _, werr := p.ResponseWriter.Write(pad); werr != nil {
			break
		}
	}
	return n, nil //nolint:nilerr // the padding is best effort: the client stops reading on purpose
}

// Scenario 4: a hostile webhook. Each message meets one misbehaviour: 500s
// forever, 429 with Retry-After, a 30 s hang, a reset connection, a 10 MiB
// answer, a redirect to another host. Each ends as the delivery rules say,
// and no goroutine or connection is left behind. Not parallel, so the
// goroutine count is this test's alone.
func TestHostileWebhook(t *testing.T) {
	start := time.Now()
	_, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	ids := testenv.InsertMessages(t, pool, 60)
	before := runtime.NumGoroutine()

	var open atomic.Int64
	s := sink.New(func(w http.ResponseWriter, r *http.Request, d sink.Delivery, n int) bool {
		switch behaviour(d.Content) {
		case 0: // 500 forever: fails after MAX_ATTEMPTS
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case 1: // 429 once, with Retry-After
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
		case 2: // hang for 30 s once: WEBHOOK_TIMEOUT cuts it
			if n == 1 {
				select {
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
				return true
			}
		case 3: // reset the connection once
			if n == 1 {
				reset(w)
				return true
			}
		case 5: // redirect to another host: not followed, fails at once
			http.Redirect(w, r, "http://198.51.100.7/elsewhere", http.StatusTemporaryRedirect)
			return true
		}
		return false
	}, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Behaviour 4 is accepted with a 10 MiB answer: the sink records
		// it, the padding follows its JSON.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct{ Content string }
		if json.Unmarshal(body, &msg) == nil && behaviour(msg.Content) == 4 {
			w = padded{w}
		}
		s.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, cs http.ConnState) {
		switch cs {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()

	hook := webhook.New(webhook.Options{URL: srv.URL, Timeout: time.Second, MaxConns: 6})
	svc := delivery.New(delivery.Params{
		Config: delivery.Config{
			Budget: 1000, Interval: time.Hour, Concurrency: 6, MaxAttempts: 3,
			Lease: 30 * time.Second, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second,
		},
		Store: st, Sender: hook, Cache: cache.New(rdb, time.Minute), Log: testenv.Logger(t),
	})

	wantFailed := map[string]bool{}
	rows, err := pool.Query(context.Background(), `SELECT id, content FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, content string
		_ = rows.Scan(&id, &content)
		if b := behaviour(content); b == 0 || b == 5 {
			wantFailed[id] = true
		}
	}
	rows.Close()

	testenv.Eventually(t, 60*time.Second, "every message to settle", func() bool {
		if _, err := svc.Dispatch(context.Background()); err != nil {
			t.Fatal(err)
		}
		var unsettled int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status NOT IN ('sent', 'failed')`).Scan(&unsettled)
		return unsettled == 0
	})

	// Check the reasons the rules give.
	for _, id := range ids {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch b := behaviour(m.Content); {
		case b == 0 && (m.Status != store.StatusFailed || m.Attempts != 3 || !strings.Contains(m.LastError, "gave up after 3 attempts")):
			t.Errorf("500s: %+v", m)
		case b == 5 && (m.Status != store.StatusFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "redirect")):
			t.Errorf("redirect: %+v", m)
		case (b == 1 || b == 2) && (m.Status != store.StatusSent || m.Attempts != 2):
			t.Errorf("behaviour %d: %+v", b, m)
		case b == 3 && (m.Status != store.StatusSent || m.Attempts > 2):
			// net/http itself retries a request that carries an
			// Idempotency-Key once when a reused connection resets, so
			// the reset may cost no attempt of ours.
			t.Errorf("reset: %+v", m)
		case b == 4 && (m.Status != store.StatusSent || m.Attempts != 1):
			t.Errorf("large answer: %+v", m)
		}
		rdb.Del(context.Background(), cache.Key(id))
	}
	r := checkLedger(t, pool, s, wantFailed)

	hook.Close()
	srv.Close()
	testenv.Eventually(t, 5*time.Second, "connections to close", func() bool { return open.Load() == 0 })
	testenv.Eventually(t, 5*time.Second, "goroutines to return to the start count", func() bool {
		return runtime.NumGoroutine() <= before
	})
	r.Scenario, r.Took = "4 hostile webhook (500, 429, hang, reset, 10 MiB, redirect)", time.Since(start)
	r.Note = fmt.Sprintf("goroutines %d before, %d after; 0 connections left", before, runtime.NumGoroutine())
	record(r)
}
