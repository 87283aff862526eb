package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

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
