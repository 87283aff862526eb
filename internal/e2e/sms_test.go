package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Through the built programs, with ALLOWED_COUNTRIES=US,GB: formatted
// numbers are stored and sent in E.164, an impossible number and a +90
// number get 422, an inserted +90 row fails with country_not_allowed and
// no call, an inserted formatted row is sent in E.164; an inbound " Stop "
// suppresses both a new message and an older pending one without a call,
// and START lets the next message through.
func TestSMSRulesThroughThePrograms(t *testing.T) {
	t.Parallel()
	r := startLifecycle(t, nil, "ALLOWED_COUNTRIES=US,GB", "RATE_LIMIT=0")
	field := func(body map[string]any) string {
		f, _ := body["error"].(map[string]any)["field"].(string)
		return f
	}

	m := r.call(http.MethodPost, "/api/v1/messages", `{"id": "fmt", "content": "Your code is 123456", "phone_number": "+1 (201) 555-0123"}`, 201)
	if m["phone_number"] != "+12015550123" || m["encoding"] != "GSM-7" || m["segments"] != float64(1) {
		t.Fatalf("formatted create: %v", m)
	}
	m = r.call(http.MethodPost, "/api/v1/messages", `{"id": "emoji", "content": "hi 🙂", "phone_number": "+44 7400 123456"}`, 201)
	if m["phone_number"] != "+447400123456" || m["encoding"] != "UCS-2" || m["segments"] != float64(1) {
		t.Fatalf("emoji create: %v", m)
	}
	if f := field(r.call(http.MethodPost, "/api/v1/messages", `{"content": "hi", "phone_number": "+1 201 555 012"}`, 422)); f != "phone_number" {
		t.Fatalf("impossible number: field %q", f)
	}
	if f := field(r.call(http.MethodPost, "/api/v1/messages", `{"content": "hi", "phone_number": "+90 501 234 56 78"}`, 422)); f != "phone_number" {
		t.Fatalf("+90 at create: field %q", f)
	}

	// Rows other systems insert: one for Turkey, one formatted.
	pool := testenv.NewPool(t, r.uri)
	if _, err := pool.Exec(context.Background(), `INSERT INTO messages (id, content, phone_number) VALUES
  ('tr-row', 'hello', '+905012345678'), ('raw-gb', 'hello', '+44 (0) 7400 123457')`); err != nil {
		t.Fatal(err)
	}

	// An older pending message, then the recipient answers STOP.
	r.call(http.MethodPost, "/api/v1/messages", `{"id": "old", "content": "older", "phone_number": "+447400123499"}`, 201)
	in := r.call(http.MethodPost, "/api/v1/inbound", `{"from": "+44 7400 123499", "text": " Stop "}`, 200)
	if in["action"] != "opted_out" || in["phone_number"] != "+447400123499" {
		t.Fatalf("inbound STOP: %v", in)
	}
	if st := r.call(http.MethodPost, "/api/v1/messages", `{"id": "new", "content": "newer", "phone_number": "+447400123499"}`, 201)["status"]; st != "suppressed" {
		t.Fatalf("new message to an opted-out number: %v", st)
	}

	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)
	testenv.Eventually(t, 30*time.Second, "every row to reach its final status", func() bool {
		return r.status("fmt") == "sent" && r.status("emoji") == "sent" && r.status("raw-gb") == "sent" &&
			r.status("tr-row") == "failed" && r.status("old") == "suppressed"
	})
	if e := r.call(http.MethodGet, "/api/v1/messages/tr-row", "", 200)["last_error"]; e != "country_not_allowed" {
		t.Fatalf("tr-row last_error %v", e)
	}
	to := map[string]string{}
	for _, d := range r.sink.Accepted() {
		to[d.IdempotencyKey] = d.To
	}
	want := map[string]string{"fmt": "+12015550123", "emoji": "+447400123456", "raw-gb": "+447400123457"}
	if len(to) != len(want) {
		t.Fatalf("webhook calls %v, want %v", to, want)
	}
	for id, phone := range want {
		if to[id] != phone {
			t.Fatalf("webhook calls %v, want %v", to, want)
		}
	}
	if st := r.call(http.MethodGet, "/api/v1/messages?status=suppressed", "", 200)["data"].([]any); len(st) != 2 {
		t.Fatalf("suppressed list: %v", st)
	}
	if n := r.call(http.MethodGet, "/api/v1/stats/counts", "", 200)["suppressed"]; n != float64(2) {
		t.Fatalf("suppressed count %v", n)
	}
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `messaging_messages{status="suppressed"} 2`) {
		t.Fatalf("/metrics lacks suppressed 2")
	}

	// START opts back in: the next message is sent.
	if in := r.call(http.MethodPost, "/api/v1/inbound", `{"from": "+447400123499", "text": "START"}`, 200); in["action"] != "opted_in" {
		t.Fatalf("inbound START: %v", in)
	}
	r.call(http.MethodPost, "/api/v1/messages", `{"id": "after", "content": "welcome back", "phone_number": "+447400123499"}`, 201)
	testenv.Eventually(t, 30*time.Second, "the message after START to be sent", func() bool { return r.status("after") == "sent" })
	calls := r.sink.Calls()
	for id, n := range map[string]int{"after": 1, "old": 0, "new": 0, "tr-row": 0} {
		if calls[id] != n {
			t.Errorf("%s reached the webhook %d times, want %d", id, calls[id], n)
		}
	}
}
