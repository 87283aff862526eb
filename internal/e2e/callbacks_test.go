package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

const callbackSecret = "whsec_ZTJlLXN0YXR1cy1jYWxsYmFjay1zZWNyZXQ="

// cbCall is one status callback a receiver got.
type cbCall struct {
	ID     string // webhook-id
	Type   string
	Data   map[string]any
	Status int // what the receiver answered
	At     time.Time
}

// cbReceiver verifies every request it gets with the Standard Webhooks
// library and answers with answer's status (200 when answer is nil).
type cbReceiver struct {
	t      *testing.T
	wh     *standardwebhooks.Webhook
	URL    string
	mu     sync.Mutex
	calls  []cbCall
	answer func(c cbCall, n int) int
	// hold, when set, is closed to release requests it holds; inFlight
	// hears each request as it arrives.
	hold     chan struct{}
	inFlight chan struct{}
	badSigs  int
}

func newCBReceiver(t *testing.T, answer func(c cbCall, n int) int) *cbReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(callbackSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &cbReceiver{t: t, wh: wh, answer: answer, inFlight: make(chan struct{}, 1024)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *cbReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	select {
	case r.inFlight <- struct{}{}:
	default:
	}
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		}
	}
	var body struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	c := cbCall{ID: req.Header.Get("webhook-id"), At: time.Now()}
	verr := r.wh.Verify(b, req.Header)
	if err := json.Unmarshal(b, &body); err != nil || verr != nil || req.Header.Get("Content-Type") != "application/json" {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		r.t.Errorf("callback %s: signature %v, body %v, Content-Type %q", c.ID, verr, err, req.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.Type, c.Data = body.Type, body.Data
	r.mu.Lock()
	n := 1
	for _, o := range r.calls {
		if o.ID == c.ID {
			n++
		}
	}
	c.Status = http.StatusOK
	if r.answer != nil {
		c.Status = r.answer(c, n)
	}
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	w.WriteHeader(c.Status)
}

func (r *cbReceiver) got() []cbCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// accepted is the calls answered 2xx, in order of arrival.
func (r *cbReceiver) accepted() []cbCall {
	var out []cbCall
	for _, c := range r.got() {
		if c.Status/100 == 2 {
			out = append(out, c)
		}
	}
	return out
}

// byMessage groups accepted calls by message id, in order of arrival.
func byMessage(calls []cbCall) map[string][]string {
	out := map[string][]string{}
	for _, c := range calls {
		id, _ := c.Data["id"].(string)
		out[id] = append(out[id], c.Type)
	}
	return out
}

func callbackVars(url string, extra ...string) []string {
	return append([]string{"STATUS_CALLBACK_URL=" + url + "/events", "STATUS_CALLBACK_SECRET=" + callbackSecret,
		"STATUS_CALLBACK_ALLOWED_HOSTS=127.0.0.1", "RATE_LIMIT=0", "MESSAGE_FETCH_LIMIT=100"}, extra...)
}

// rejectOn400 makes the provider refuse content "reject" with 400.
func rejectOn400(w http.ResponseWriter, _ *http.Request, d sink.Delivery, _ int) bool {
	if d.Content == "reject" {
		w.WriteHeader(http.StatusBadRequest)
		return true
	}
	return false
}

// Through the built programs: 10 messages sent, 5 rejected with 400, 3
// canceled, 2 expired, receipts delivered for 2 and undelivered for 1.
// Each message's events are exactly the expected types, in order, each
// signed (the receiver verifies every one with the Standard Webhooks
// library) and with an id of its own, and each event's data is the
// message as GET showed it after its last change. A message's own
// status_callback on an allowed host gets its events; one on another host
// is refused with 422. A failed event goes out again on redelivery.
func TestStatusCallbacksThroughThePrograms(t *testing.T) {
	t.Parallel()
	own := newCBReceiver(t, nil)
	var ownDown sync.Mutex
	down := true
	own.answer = func(cbCall, int) int {
		ownDown.Lock()
		defer ownDown.Unlock()
		if down {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	}
	main := newCBReceiver(t, nil)
	r := startLifecycle(t, rejectOn400, callbackVars(main.URL, "STATUS_CALLBACK_RETRY_SCHEDULE=1s,1s")...)

	want := map[string][]string{}
	create := func(id, content, extra string) {
		r.call(http.MethodPost, "/api/v1/messages", fmt.Sprintf(`{"id": %q, "content": %q, %s%s}`, id, content, phone, extra), 201)
	}
	for i := range 10 {
		create(fmt.Sprintf("ok-%d", i), "hello", "")
		want[fmt.Sprintf("ok-%d", i)] = []string{"message.sent"}
	}
	for i := range 5 {
		create(fmt.Sprintf("rej-%d", i), "reject", "")
		want[fmt.Sprintf("rej-%d", i)] = []string{"message.failed"}
	}
	for i := range 3 {
		create(fmt.Sprintf("can-%d", i), "cancel me", "")
		r.call(http.MethodPost, fmt.Sprintf("/api/v1/messages/can-%d/cancel", i), "", 200)
		want[fmt.Sprintf("can-%d", i)] = []string{"message.canceled"}
	}
	for i := range 2 {
		create(fmt.Sprintf("exp-%d", i), "too late", `, "validity_period": 1`)
		want[fmt.Sprintf("exp-%d", i)] = []string{"message.expired"}
	}
	create("own", "to my own URL", `, "status_callback": "`+own.URL+`/mine"`)
	r.call(http.MethodPost, "/api/v1/messages", `{"content": "x", `+phone+`, "status_callback": "https://evil.example.com/x"}`, 422)
	r.call(http.MethodPost, "/api/v1/messages/batch", `{"messages": [{"content": "x", `+phone+`, "status_callback": "https://evil.example.com/x"}]}`, 422)

	// The two short-lived messages expire before sending starts.
	expires, err := time.Parse(time.RFC3339Nano, r.call(http.MethodGet, "/api/v1/messages/exp-1", "", 200)["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "exp-1's expires_at to pass", func() bool { return time.Now().After(expires.Add(100 * time.Millisecond)) })
	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)
	testenv.Eventually(t, 60*time.Second, "every message in its final status", func() bool {
		for id, types := range want {
			final := strings.TrimPrefix(types[0], "message.")
			if r.status(id) != final {
				return false
			}
		}
		return r.status("own") == "sent"
	})
	// What GET showed right after each change: the final statuses now,
	// each receipt right after it is applied.
	shown := map[string]map[string]any{}
	for id, types := range want {
		shown[id+" "+types[0]] = r.call(http.MethodGet, "/api/v1/messages/"+id, "", 200)
	}
	// Receipts: delivered for 2, undelivered for 1, and a repeat with the
	// same status that writes no event.
	for i, st := range []string{"delivered", "delivered", "undelivered"} {
		id := fmt.Sprintf("ok-%d", i)
		remote := r.call(http.MethodGet, "/api/v1/messages/"+id, "", 200)["remote_message_id"].(string)
		r.call(http.MethodPost, "/api/v1/receipts", fmt.Sprintf(`{"message_id": %q, "status": %q}`, remote, st), 200)
		want[id] = append(want[id], "message."+st)
		shown[id+" message."+st] = r.call(http.MethodGet, "/api/v1/messages/"+id, "", 200)
		if i == 0 {
			r.call(http.MethodPost, "/api/v1/receipts", fmt.Sprintf(`{"message_id": %q, "status": %q}`, remote, st), 200)
		}
	}
	total := 0
	for _, types := range want {
		total += len(types)
	}
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%d events accepted", total), func() bool { return len(main.accepted()) >= total })

	got := byMessage(main.accepted())
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events per message (-want +got):\n%s", d)
	}
	ids := map[string]bool{}
	for _, c := range main.got() {
		if ids[c.ID] {
			t.Errorf("event id %s arrived twice", c.ID)
		}
		ids[c.ID] = true
	}
	// Each event's data is the message as GET showed it right after the
	// change.
	for _, c := range main.accepted() {
		key := c.Data["id"].(string) + " " + c.Type
		if d := cmp.Diff(shown[key], c.Data); d != "" {
			t.Errorf("%s data differs from GET right after the change (-get +event):\n%s", key, d)
		}
	}
	// The message with its own URL: its event went there, was refused
	// until it failed, and goes out again on redelivery.
	var ev string
	testenv.Eventually(t, 30*time.Second, "own's event to fail", func() bool {
		evs := r.call(http.MethodGet, "/api/v1/messages/own/events", "", 200)["data"].([]any)
		if len(evs) != 1 {
			return false
		}
		e := evs[0].(map[string]any)
		ev = e["id"].(string)
		return e["status"] == "failed" && e["attempts"].(float64) == 3
	})
	if n := len(own.got()); n != 3 {
		t.Fatalf("own's receiver got %d calls before the event failed, want 3", n)
	}
	ownDown.Lock()
	down = false
	ownDown.Unlock()
	r.call(http.MethodPost, "/api/v1/events/"+ev+"/redeliver", "", 202)
	r.call(http.MethodPost, "/api/v1/events/00000000-0000-0000-0000-000000000000/redeliver", "", 404)
	testenv.Eventually(t, 30*time.Second, "the redelivered event accepted", func() bool { return len(own.accepted()) == 1 })
	if a := own.accepted()[0]; a.ID != ev || a.Type != "message.sent" || a.Data["id"] != "own" {
		t.Fatalf("redelivered: %+v", a)
	}
	testenv.Eventually(t, 10*time.Second, "the event listed delivered", func() bool {
		e := r.call(http.MethodGet, "/api/v1/messages/own/events", "", 200)["data"].([]any)[0].(map[string]any)
		return e["status"] == "delivered" && e["delivered_at"] != nil && e["last_error"] == nil
	})
	for _, c := range main.got() {
		if c.Data["id"] == "own" {
			t.Errorf("own's event went to STATUS_CALLBACK_URL")
		}
	}
}

// The receiver answers 500 for 20 s. Messages go out meanwhile as fast as
// without callbacks; the events arrive afterwards, each accepted once,
// and every repeat carries its event's webhook-id.
func TestStatusCallbacksOutlastADownReceiver(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 20 s outage")
	}
	var mu sync.Mutex
	var upAt time.Time
	recv := newCBReceiver(t, func(cbCall, int) int {
		mu.Lock()
		defer mu.Unlock()
		if upAt.IsZero() || time.Now().Before(upAt) {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Messages: 40, StopTimeout: 10 * time.Second})
	vars := callbackVars(recv.URL, "STATUS_CALLBACK_RETRY_SCHEDULE=1s,2s,4s,4s,4s,4s,4s,4s,4s,4s")
	mu.Lock()
	upAt = time.Now().Add(20 * time.Second)
	mu.Unlock()
	start := time.Now()
	sys.Start("scheduler", vars...)
	sys.Start("worker", vars...)
	sys.WaitSent(30 * time.Second)
	took := time.Since(start)
	mu.Lock()
	stillDown := time.Now().Before(upAt)
	mu.Unlock()
	if !stillDown {
		t.Fatalf("sending 40 messages took %s, longer than the 20 s outage of the callback receiver", took)
	}
	t.Logf("40 messages sent in %s while the callback receiver answered 500", took)
	testenv.Eventually(t, 60*time.Second, "40 events accepted", func() bool { return len(recv.accepted()) >= 40 })
	accepted := map[string]int{}
	for _, c := range recv.accepted() {
		accepted[c.ID]++
		if c.At.Before(upAt) {
			t.Errorf("event %s accepted during the outage", c.ID)
		}
	}
	refused := map[string]string{}
	for _, c := range recv.got() {
		if c.Status != http.StatusOK {
			refused[c.ID] = c.Data["id"].(string)
		}
		if other, ok := refused[c.ID]; ok && other != c.Data["id"] {
			t.Errorf("webhook-id %s carried messages %s and %s", c.ID, other, c.Data["id"])
		}
	}
	if len(accepted) != 40 {
		t.Errorf("%d distinct events accepted, want 40", len(accepted))
	}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
		if _, ok := refused[id]; !ok {
			t.Errorf("event %s was never refused, though the receiver was down when it was written", id)
		}
	}
}

// kill -9 of the worker while callbacks are in flight: every event still
// arrives (at least once, with its webhook-id), from the next worker after
// the lease, and no event arrives that the table does not hold for a
// change that happened.
func TestStatusCallbacksSurviveKill9(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for a lease")
	}
	recv := newCBReceiver(t, nil)
	recv.hold = make(chan struct{})
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Messages: 20, StopTimeout: 10 * time.Second})
	vars := callbackVars(recv.URL)
	sys.Start("scheduler", vars...)
	w1 := sys.Start("worker", vars...)
	sys.WaitSent(30 * time.Second)
	// The receiver holds the first calls: they are in flight.
	select {
	case <-recv.inFlight:
	case <-time.After(20 * time.Second):
		t.Fatal("no callback arrived")
	}
	if err := w1.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Wait(10 * time.Second); err == nil {
		t.Log("the killed worker exited")
	}
	recv.mu.Lock()
	close(recv.hold)
	recv.hold = nil
	recv.mu.Unlock()
	sys.Start("worker-2", vars...)
	testenv.Eventually(t, 60*time.Second, "an event accepted for each of the 20 messages", func() bool {
		return len(byMessage(recv.accepted())) == 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := sys.Pool.Query(ctx, `SELECT e.id::text, e.message_id, e.type FROM message_events e
        JOIN messages m ON m.id = e.message_id WHERE m.status = 'sent' AND e.type = 'message.sent'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	table := map[string]string{}
	for rows.Next() {
		var id, msg, typ string
		if err := rows.Scan(&id, &msg, &typ); err != nil {
			t.Fatal(err)
		}
		table[id] = msg
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(table) != 20 {
		t.Fatalf("%d sent events in the table, want 20", len(table))
	}
	for _, c := range recv.got() {
		if msg, ok := table[c.ID]; !ok || msg != c.Data["id"] || c.Type != "message.sent" {
			t.Errorf("callback %s (%s of %v) is not an event of a change that happened", c.ID, c.Type, c.Data["id"])
		}
	}
	for id := range table {
		n := 0
		for _, c := range recv.accepted() {
			if c.ID == id {
				n++
			}
		}
		if n < 1 {
			t.Errorf("event %s never accepted", id)
		}
	}
}
