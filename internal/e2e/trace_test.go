package e2e_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Through the built programs, with no exporter configured: a create and a
// batch item sent with a traceparent reach the webhook with a traceparent
// of the same trace (and a span id of their own); a row inserted by
// another system reaches it with a fresh, valid trace.
func TestTraceparentReachesTheWebhook(t *testing.T) {
	t.Parallel()
	r := startLifecycle(t, nil, "RATE_LIMIT=0")
	const (
		one   = "0af7651916cd43dd8448eb211c80319c"
		batch = "4bf92f3577b34da6a3ce929d0e0e4736"
	)
	post := func(path, body, traceID string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, r.base+path, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	post("/api/v1/messages", `{"id": "traced", "content": "hi", `+phone+`}`, one)
	post("/api/v1/messages/batch", `{"messages": [{"id": "b1", "content": "hi", `+phone+`}, {"id": "b2", "content": "hi", `+phone+`}]}`, batch)
	pool := testenv.NewPool(t, r.uri)
	if _, err := pool.Exec(context.Background(), `INSERT INTO messages (id, content, phone_number) VALUES ('foreign', 'hi', '+905551111111')`); err != nil {
		t.Fatal(err)
	}
	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)
	testenv.Eventually(t, 30*time.Second, "four deliveries", func() bool { return len(r.sink.Accepted()) >= 4 })

	got := map[string][]string{}
	for _, d := range r.sink.Accepted() {
		got[d.IdempotencyKey] = strings.Split(d.Header.Get("traceparent"), "-")
	}
	want := map[string]string{"traced": one, "b1": batch, "b2": batch}
	for id, traceID := range want {
		p := got[id]
		if len(p) != 4 || p[0] != "00" || p[1] != traceID || len(p[2]) != 16 || p[2] == "b7ad6b7169203331" || p[3] != "01" {
			t.Errorf("%s reached the webhook with traceparent %q, want trace %s and a span of its own", id, strings.Join(p, "-"), traceID)
		}
	}
	if p := got["foreign"]; len(p) != 4 || len(p[1]) != 32 || p[1] == strings.Repeat("0", 32) || p[1] == one || p[1] == batch {
		t.Errorf("the inserted row reached the webhook with traceparent %q, want a fresh trace", strings.Join(p, "-"))
	}
}

// collector is an in-process OTLP/HTTP trace receiver: it keeps every span
// the programs export.
type collector struct {
	mu    sync.Mutex
	spans []exported
}

// exported is one span as the collector received it.
type exported struct {
	service, name, traceID, scope string
	attrs                         map[string]string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				e := exported{service: service, name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					scope: ss.GetScope().GetName(), attrs: map[string]string{}}
				for _, kv := range s.GetAttributes() {
					e.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				c.spans = append(c.spans, e)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) trace(id string) []exported {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []exported
	for _, s := range c.spans {
		if s.traceID == id {
			out = append(out, s)
		}
	}
	return out
}

// Through the built programs with OTEL_EXPORTER_OTLP_ENDPOINT set (OTLP
// over HTTP): an in-process collector receives, in the create's trace, the
// api's span and the INSERT's pgx span from the api and the attempt's span
// from the worker, each tagged with the message id.
func TestTracesReachACollector(t *testing.T) {
	t.Parallel()
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	r := startLifecycle(t, nil, "RATE_LIMIT=0", "OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, r.base+"/api/v1/messages", bytes.NewBufferString(`{"id": "exported", "content": "hi", `+phone+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)
	testenv.Eventually(t, 30*time.Second, "the delivery", func() bool { return r.status("exported") == "sent" })
	// SIGTERM flushes what the batcher holds.
	e2e.StopAll(t, 10*time.Second, r.procs...)

	var api, insert, attempt bool
	for _, s := range col.trace(traceID) {
		if s.attrs["messaging.message.id"] != "exported" {
			continue
		}
		switch {
		case s.service == "messaging-api" && strings.Contains(s.scope, "otelpgx"):
			insert = true
		case s.service == "messaging-api" && strings.Contains(s.scope, "otelfiber"):
			api = true
		case s.service == "messaging-worker" && s.name == "deliver message":
			attempt = s.attrs["messaging.provider"] == "default" && s.attrs["messaging.delivery.outcome"] == "sent"
		}
	}
	if !api || !insert || !attempt {
		t.Fatalf("trace %s at the collector: api span %v, pgx span %v, attempt span %v; got %+v", traceID, api, insert, attempt, col.trace(traceID))
	}
}
