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
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/sink"
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
	for id, content := range contents(t, pool) {
		if b := behaviour(content); b == 0 || b == 5 {
			wantFailed[id] = true
		}
	}
	settle(t, pool, svc)

	// Check the reasons the rules give.
	for _, id := range ids {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch b := behaviour(m.Content); {
		case b == 0 && (m.Status != messaging.StatusFailed || m.Attempts != 3 || !strings.Contains(m.LastError, "gave up after 3 attempts")):
			t.Errorf("500s: %+v", m)
		case b == 5 && (m.Status != messaging.StatusFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "redirect")):
			t.Errorf("redirect: %+v", m)
		case (b == 1 || b == 2) && (m.Status != messaging.StatusSent || m.Attempts != 2):
			t.Errorf("behaviour %d: %+v", b, m)
		case b == 3 && (m.Status != messaging.StatusSent || m.Attempts != 2):
			// The transport never replays a call: the reset costs an
			// attempt of ours.
			t.Errorf("reset: %+v", m)
		case b == 4 && (m.Status != messaging.StatusSent || m.Attempts != 1):
			t.Errorf("large answer: %+v", m)
		}
		rdb.Del(context.Background(), cache.Key(id))
	}
	r := ledgerRow(t, pool, s, wantFailed)
	callsAreAttempts(t, pool, s, 3)

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

// contents maps every message's id to its content.
func contents(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id, content FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, content string
		if err := rows.Scan(&id, &content); err != nil {
			t.Fatal(err)
		}
		out[id] = content
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// settle runs the worker's own path, a Run woken by a dispatch per poll,
// until every message is sent or failed (for at most a minute), then
// drains it.
func settle(t *testing.T, pool *pgxpool.Pool, svc *delivery.Service) {
	t.Helper()
	ran := make(chan struct{})
	go func() { defer close(ran); svc.Run(context.Background()) }()
	var checkErr error
	testenv.Eventually(t, 60*time.Second, "every message to settle", func() bool {
		if err := svc.HandleDispatch(context.Background(), nil); err != nil {
			checkErr = err
			return true
		}
		var unsettled int
		if err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM messages WHERE status NOT IN ('sent', 'failed')`).Scan(&unsettled); err != nil {
			checkErr = err
			return true
		}
		return unsettled == 0
	})
	svc.Drain()
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Drain")
	}
	svc.Wait()
	if checkErr != nil {
		t.Fatal(checkErr)
	}
}

// callsAreAttempts checks that the receiver saw exactly one POST per
// recorded attempt of every message (message_attempts rows and the
// attempts column agree), and never more than maxAttempts.
func callsAreAttempts(t *testing.T, pool *pgxpool.Pool, s *sink.Sink, maxAttempts int) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT m.id, m.attempts, (SELECT count(*) FROM message_attempts a WHERE a.message_id = m.id)
FROM messages m`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	posts := s.Calls()
	for rows.Next() {
		var id string
		var attempts, recorded int
		if err := rows.Scan(&id, &attempts, &recorded); err != nil {
			t.Fatal(err)
		}
		if posts[id] != recorded || attempts != recorded || recorded > maxAttempts {
			t.Errorf("%s: %d POSTs, %d attempt rows, attempts %d (at most %d)", id, posts[id], recorded, attempts, maxAttempts)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// The answers that once poisoned a batch of outcomes, and a receiver that
// hangs up without answering, by the number in a message's content.
const (
	answerNULID   = iota // 202, messageId holding U+0000
	answerLongID         // 202, messageId of 200 × "é" (400 bytes)
	answerJunk2xx        // 200 with 10 MiB of NUL and invalid UTF-8
	answerLatin1         // 400, Latin-1 body
	answerNUL400         // 400, body holding a NUL
	answerTurkish        // 400, 212-byte Turkish JSON error, byte 200 mid-character
	answerJunk400        // 400 with 10 MiB of NUL and invalid UTF-8
	answerSilent         // reads the request, closes without answering
	hostileKinds         // the rest (as many again) are healthy
)

func hostileKind(content string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(content, "message "))
	if err != nil {
		return -1
	}
	return n % (2 * hostileKinds)
}

// junk is 10 MiB of NUL bytes and invalid UTF-8.
var junk = bytes.Repeat([]byte("\x00\xe9x\xff"), 10<<20/4)

// replaced lets the sink accept the message and count it, but sends body
// in place of the sink's JSON answer.
type replaced struct {
	http.ResponseWriter
	body []byte
}

func (r replaced) Write(b []byte) (int, error) {
	if _, err := r.ResponseWriter.Write(r.body); err != nil {
		return 0, fmt.Errorf("replaced answer: %w", err) // the client stops reading a 10 MiB answer
	}
	return len(b), nil
}

// Hostile answers mixed into batches of healthy messages: whatever the
// receiver answers, the outcomes are recorded (no batch fails), no healthy
// message is accepted twice, a messageId that cannot be stored is dropped
// and the message is still sent, every stored text is valid UTF-8, and the
// receiver sees exactly one POST per recorded attempt, never more than
// MAX_ATTEMPTS, even when it hangs up on a reused connection.
func TestHostileAnswers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	ids := testenv.InsertMessages(t, pool, 16*hostileKinds)
	turkish := `{"hata":"Geçersiz alıcı numarası; mesaj gönderilemedi. Lütfen numarayı kontrol edip yeniden deneyin. Şikâyetleriniz için müşteri hizmetlerimizi arayınız: çağrı merkezi ğüşiöç ĞÜŞİÖÇ!"}`
	if len(turkish) != 212 || utf8.RuneStart(turkish[200]) {
		t.Fatalf("the Turkish answer is %d bytes, byte 200 %#x", len(turkish), turkish[200])
	}

	s := sink.New(func(w http.ResponseWriter, _ *http.Request, d sink.Delivery, _ int) bool {
		var body []byte
		switch hostileKind(d.Content) {
		case answerLatin1:
			body = []byte("Ung\xfcltige Nummer f\xfcr den Empf\xe4nger")
		case answerNUL400:
			body = []byte(`{"error":"bad number\u0000"}` + "\x00")
		case answerTurkish:
			body = []byte(turkish)
		case answerJunk400:
			body = junk
		case answerSilent:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err) // httptest connections can always be hijacked
			}
			_ = conn.Close()
			return true
		default:
			return false
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body) // the client stops reading after its limit
		return true
	}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct{ Content string }
		if json.Unmarshal(body, &msg) == nil {
			switch hostileKind(msg.Content) {
			case answerNULID:
				w = replaced{w, []byte(`{"message":"Accepted","messageId":"ab\u0000cd"}`)}
			case answerLongID:
				w = replaced{w, []byte(`{"message":"Accepted","messageId":"` + strings.Repeat("é", 200) + `"}`)}
			case answerJunk2xx:
				w = replaced{w, junk}
			}
		}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()

	const maxAttempts = 3
	hook := webhook.New(webhook.Options{URL: srv.URL, Timeout: 5 * time.Second, MaxConns: 6})
	defer hook.Close()
	svc := delivery.New(delivery.Params{
		Config: delivery.Config{
			Budget: 1000, Interval: time.Hour, Concurrency: 6, MaxAttempts: maxAttempts,
			Lease: 30 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		},
		Store: st, Sender: hook, Cache: cache.New(rdb, time.Minute), Log: testenv.Logger(t),
	})
	wantFailed := map[string]bool{}
	kind := map[string]int{}
	for id, content := range contents(t, pool) {
		kind[id] = hostileKind(content)
		switch kind[id] {
		case answerLatin1, answerNUL400, answerTurkish, answerJunk400, answerSilent:
			wantFailed[id] = true
		}
	}
	settle(t, pool, svc)

	for _, id := range ids {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		rdb.Del(context.Background(), cache.Key(id))
		switch k := kind[id]; k {
		case answerNULID, answerLongID, answerJunk2xx:
			if m.Status != messaging.StatusSent || m.Attempts != 1 || m.RemoteMessageID != "" {
				t.Errorf("answer %d: %s is %s after %d attempts, remote id %q; want sent once without an id", k, id, m.Status, m.Attempts, m.RemoteMessageID)
			}
		case answerLatin1, answerNUL400, answerTurkish, answerJunk400:
			if m.Status != messaging.StatusFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "400") {
				t.Errorf("answer %d: %s is %s after %d attempts: %q; want failed at once", k, id, m.Status, m.Attempts, m.LastError)
			}
			if k == answerTurkish && !strings.Contains(m.LastError, "Geçersiz alıcı") {
				t.Errorf("the Turkish answer's text is lost: %q", m.LastError)
			}
		case answerSilent:
			if m.Status != messaging.StatusFailed || m.Attempts != maxAttempts {
				t.Errorf("silent receiver: %s is %s after %d attempts", id, m.Status, m.Attempts)
			}
		default:
			if m.Status != messaging.StatusSent || m.Attempts != 1 || m.RemoteMessageID == "" {
				t.Errorf("healthy %s is %s after %d attempts, remote id %q", id, m.Status, m.Attempts, m.RemoteMessageID)
			}
		}
	}
	r := ledgerRow(t, pool, s, wantFailed)
	if r.Repeats != 0 {
		t.Errorf("%d messages accepted more than once", r.Repeats)
	}
	callsAreAttempts(t, pool, s, maxAttempts)
	storedTextIsUTF8(t, pool)
	r.Scenario, r.Took = "4b hostile answers (NUL, invalid UTF-8, cut characters, 10 MiB, hang-up)", time.Since(start)
	r.Note = "one POST per recorded attempt; every stored text valid UTF-8"
	record(r)
}

// storedTextIsUTF8 reads back every text stored from an answer and checks
// it is valid UTF-8 without NUL.
func storedTextIsUTF8(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT COALESCE(last_error, ''), COALESCE(remote_message_id, '') FROM messages
UNION ALL
SELECT COALESCE(error, ''), '' FROM message_attempts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var errText, remoteID string
		if err := rows.Scan(&errText, &remoteID); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{errText, remoteID} {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Errorf("stored text is not clean UTF-8: %q", v)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing stored to check")
	}
}
