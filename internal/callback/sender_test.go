package callback_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/view"
	"github.com/messaging-server/messaging-server/internal/webhook"

	"github.com/prometheus/client_golang/prometheus"
)

const secret = "whsec_c2VjcmV0LWZvci1jYWxsYmFjay10ZXN0cw=="

// call is one request a receiver got.
type call struct {
	ID   string
	Body callback.Body
}

// receiver verifies every request with the Standard Webhooks library and
// answers with respond's status.
type receiver struct {
	t       *testing.T
	wh      *standardwebhooks.Webhook
	respond func(c call, n int) int
	mu      sync.Mutex
	calls   []call
	seen    map[string]int
}

func newReceiver(t *testing.T, respond func(c call, n int) int) (*receiver, *httptest.Server) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, wh: wh, respond: respond, seen: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("read body: %v", err)
		w.WriteHeader(500)
		return
	}
	if err := r.wh.Verify(b, req.Header); err != nil {
		r.t.Errorf("signature does not verify: %v", err)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		r.t.Errorf("Content-Type %q", ct)
	}
	var body callback.Body
	if err := json.Unmarshal(b, &body); err != nil {
		r.t.Errorf("body %s: %v", b, err)
	}
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	r.seen[id]++
	n := r.seen[id]
	r.calls = append(r.calls, call{ID: id, Body: body})
	r.mu.Unlock()
	w.WriteHeader(r.respond(call{ID: id, Body: body}, n))
}

func (r *receiver) got() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// The sender delivers every event, signed, in order per message, retries
// one the receiver refused with the same webhook-id, sends a message with
// its own URL there, and each event's data is the message as the store
// reads it right after the change.
func TestSenderDeliversInOrder(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	// m1's sent event is refused on its first call.
	main, mainSrv := newReceiver(t, func(c call, n int) int {
		if c.Body.Type == "message.sent" && n == 1 {
			return 500
		}
		return 200
	})
	own, ownSrv := newReceiver(t, func(call, int) int { return 204 })

	if _, err := s.Create(ctx, []store.NewMessage{
		{ID: "m1", Content: "one", PhoneNumber: "+905551111111"},
		{ID: "m2", Content: "two", PhoneNumber: "+905551111111"},
		{ID: "m3", Content: "three", PhoneNumber: "+905551111111", StatusCallback: ownSrv.URL + "/own"},
	}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE messages SET status = 'sent', remote_message_id = 'r1', sent_at = now() WHERE id = 'm1'`)
	afterSent, err := s.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE messages SET delivery_status = 'delivered', delivered_at = now() WHERE id = 'm1'`)
	afterDelivered, err := s.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE messages SET status = 'canceled' WHERE id IN ('m2', 'm3')`)

	signals := &callback.Signals{Recorded: make(chan store.EventOutcome, 64)}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	snd := callback.New(callback.Deps{
		Config: callback.Config{URL: mainSrv.URL + "/main", Key: key, Schedule: retry.MustParse("10ms,10ms"), Concurrency: 2,
			Timeout: 5 * time.Second, Lease: 15 * time.Second},
		Store: s, Log: testenv.Logger(t), Metrics: metrics.NewCallback(reg), Signals: signals,
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); snd.Run(runCtx) }()
	defer func() { stop(); <-done }()

	accepted := 0
	deadline := time.After(20 * time.Second)
	for accepted < 4 {
		select {
		case o := <-signals.Recorded:
			if o.Status == store.EventDelivered {
				accepted++
			}
		case <-deadline:
			t.Fatalf("%d of 4 events accepted; main got %+v, own got %+v", accepted, main.got(), own.got())
		}
	}

	mainCalls, ownCalls := main.got(), own.got()
	var types []string
	ids := map[string]bool{}
	for _, c := range mainCalls {
		if c.Body.Data.ID == "m1" {
			types = append(types, c.Body.Type)
		}
		ids[c.ID] = true
	}
	// m1's sent event was refused once and sent again with its id before
	// its delivered event went out.
	if !cmp.Equal(types, []string{"message.sent", "message.sent", "message.delivered"}) {
		t.Errorf("m1's calls: %v", types)
	}
	for _, c := range mainCalls {
		if c.Body.Type == "message.sent" && main.seen[c.ID] != 2 {
			t.Errorf("the refused event %s was called %d times, want 2 with one webhook-id", c.ID, main.seen[c.ID])
		}
	}
	if len(ids) != 3 || len(ownCalls) != 1 || ownCalls[0].Body.Data.ID != "m3" || ownCalls[0].Body.Type != "message.canceled" {
		t.Errorf("main got %d distinct events, own got %+v", len(ids), ownCalls)
	}
	for _, c := range mainCalls {
		if c.Body.Data.ID != "m1" {
			continue
		}
		want := view.Detail(afterSent)
		if c.Body.Type == "message.delivered" {
			want = view.Detail(afterDelivered)
		}
		if d := cmp.Diff(want, c.Body.Data); d != "" {
			t.Errorf("%s data differs from the message right after the change (-want +got):\n%s", c.Body.Type, d)
		}
		if ts, err := time.Parse(time.RFC3339Nano, c.Body.Timestamp); err != nil || time.Since(ts) > time.Minute {
			t.Errorf("timestamp %q: %v", c.Body.Timestamp, err)
		}
	}
	// The metrics: 4 events started (by type), 4 accepted and 1 retried.
	if got := counter(t, reg, "messaging_callback_deliveries_total", "outcome", "accepted"); got != 4 {
		t.Errorf("accepted deliveries %v, want 4", got)
	}
	if got := counter(t, reg, "messaging_callback_deliveries_total", "outcome", "retried"); got != 1 {
		t.Errorf("retried deliveries %v, want 1", got)
	}
	if got := counter(t, reg, "messaging_callback_events_total", "type", "message.canceled"); got != 2 {
		t.Errorf("canceled events started %v, want 2", got)
	}
	evs, err := s.ListEvents(ctx, "m1")
	if err != nil || len(evs) != 2 || evs[0].Status != store.EventDelivered || evs[0].Attempts != 2 || evs[1].Status != store.EventDelivered || evs[1].DeliveredAt == nil {
		t.Errorf("m1's events: %+v %v", evs, err)
	}
}

// counter is the value of the counter name{label=value} in reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}
