package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// lifecycleRun is the scheduler, one worker and the api over a database of
// the test's own, delivering to s.
type lifecycleRun struct {
	t     *testing.T
	base  string
	uri   string // the test's own database
	sink  *sink.Sink
	procs []*e2e.Proc
}

func startLifecycle(t *testing.T, respond sink.Responder, extra ...string) *lifecycleRun {
	t.Helper()
	// The api creates the schema; programs still running at the end must
	// exit 0 within 10 s of SIGTERM.
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Respond: respond, Unmigrated: true, StopTimeout: 10 * time.Second})
	r := &lifecycleRun{t: t, uri: sys.URI, sink: sys.Sink}
	api, base := sys.StartAPI(extra...)
	r.base, r.procs = base, []*e2e.Proc{api}
	// Stop sending before a worker runs, so the test sets the stage first.
	r.call(http.MethodPost, "/api/v1/scheduler/stop", "", 200)
	r.procs = append(r.procs, sys.Start("scheduler", extra...), sys.Start("worker", extra...))
	return r
}

// call sends a request to the api and checks the status; it returns the
// decoded JSON body.
func (r *lifecycleRun) call(method, path, body string, want int) map[string]any {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, bytes.NewBufferString(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != want {
		r.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		r.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return out
}

func (r *lifecycleRun) status(id string) string {
	r.t.Helper()
	body := r.call(http.MethodGet, "/api/v1/messages/"+id, "", 200)
	s, ok := body["status"].(string)
	if !ok {
		r.t.Fatalf("GET /api/v1/messages/%s: no status in %v", id, body)
	}
	return s
}

const phone = `"phone_number": "+905551111111"`

// Through the built programs: a scheduled message goes out within one tick
// after send_at and not before; an expired and a canceled message never go
// out; the attempts list matches the calls the receiver saw; a receipt
// lands on the right message; a replay and a refused batch store nothing.
func TestLifecycleThroughThePrograms(t *testing.T) {
	t.Parallel()
	r := startLifecycle(t, func(w http.ResponseWriter, _ *http.Request, d sink.Delivery, n int) bool {
		if d.IdempotencyKey == "flaky" && n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}, "MESSAGE_FETCH_LIMIT=10",
		// The test polls three messages every 20 ms until the flaky one's
		// retry (RETRY_SCHEDULE's first step, about 5 s) is sent: far over
		// RATE_LIMIT's 600 a minute, which is not what it tests.
		"RATE_LIMIT=0")

	r.call(http.MethodPost, "/api/v1/messages", `{"id": "exp", "content": "late code", `+phone+`, "validity_period": 1}`, 201)
	r.call(http.MethodPost, "/api/v1/messages", `{"id": "canc", "content": "wrong campaign", `+phone+`}`, 201)
	r.call(http.MethodPost, "/api/v1/messages", `{"id": "flaky", "content": "retry me", `+phone+`}`, 201)
	plain := `{"id": "plain", "content": "hello", ` + phone + `, "priority": 3}`
	r.call(http.MethodPost, "/api/v1/messages", plain, 201)
	r.call(http.MethodPost, "/api/v1/messages", plain, 200) // a replay
	r.call(http.MethodPost, "/api/v1/messages/canc/cancel", "", 200)
	bad := r.call(http.MethodPost, "/api/v1/messages/batch", `{"messages": [{"id": "b1", "content": "x", `+phone+`}, {"id": "b2", "content": "x", "phone_number": "1"}]}`, 422)
	if items := bad["error"].(map[string]any)["items"].([]any); len(items) != 1 {
		t.Fatalf("batch items %v", items)
	}
	r.call(http.MethodGet, "/api/v1/messages/b1", "", 404)
	if n := len(r.call(http.MethodGet, "/api/v1/messages?limit=100", "", 200)["data"].([]any)); n != 4 {
		t.Fatalf("%d messages stored, want 4", n)
	}
	// Let exp expire, then schedule one a few seconds ahead and start.
	expires, err := time.Parse(time.RFC3339Nano, r.call(http.MethodGet, "/api/v1/messages/exp", "", 200)["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "exp to pass its expires_at", func() bool { return time.Now().After(expires.Add(100 * time.Millisecond)) })
	sendAt := time.Now().Add(4 * time.Second).Truncate(time.Second)
	r.call(http.MethodPost, "/api/v1/messages", fmt.Sprintf(`{"id": "sched", "content": "tomorrow at nine", %s, "send_at": %q}`, phone, sendAt.Format(time.RFC3339)), 201)
	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)

	testenv.Eventually(t, 30*time.Second, "plain, flaky and sched to be sent", func() bool {
		return r.status("plain") == "sent" && r.status("flaky") == "sent" && r.status("sched") == "sent"
	})
	sched := r.call(http.MethodGet, "/api/v1/messages/sched", "", 200)
	sentAt, err := time.Parse(time.RFC3339Nano, sched["sent_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// Not before send_at; within one tick (CRON_INTERVAL=1) and the call.
	if sentAt.Before(sendAt) || sentAt.After(sendAt.Add(2*time.Second)) {
		t.Fatalf("sched sent at %s, send_at %s", sentAt, sendAt)
	}
	calls := r.sink.Calls()
	for id, want := range map[string]int{"exp": 0, "canc": 0, "plain": 1, "flaky": 2, "sched": 1} {
		if calls[id] != want {
			t.Errorf("%s reached the webhook %d times, want %d", id, calls[id], want)
		}
	}
	if st := r.status("exp"); st != "expired" {
		t.Errorf("exp is %s", st)
	}
	if st := r.status("canc"); st != "canceled" {
		t.Errorf("canc is %s", st)
	}
	// The attempts list matches what the receiver saw.
	for id, want := range map[string][]string{"flaky": {"retry", "sent"}, "plain": {"sent"}, "exp": nil, "canc": nil} {
		data := r.call(http.MethodGet, "/api/v1/messages/"+id+"/attempts", "", 200)["data"].([]any)
		if len(data) != len(want) || len(data) != calls[id] {
			t.Fatalf("%s: attempts %v, want %v (receiver saw %d calls)", id, data, want, calls[id])
		}
		for i, a := range data {
			a := a.(map[string]any)
			if a["outcome"] != want[i] || a["attempt"] != float64(i+1) {
				t.Errorf("%s attempt %d: %v", id, i, a)
			}
		}
		if id == "flaky" && (data[0].(map[string]any)["status_code"] != float64(503) || data[1].(map[string]any)["status_code"] != float64(202)) {
			t.Errorf("flaky status codes: %v", data)
		}
	}
	// A receipt for plain updates plain only.
	remote := r.call(http.MethodGet, "/api/v1/messages/plain", "", 200)["remote_message_id"].(string)
	got := r.call(http.MethodPost, "/api/v1/receipts", fmt.Sprintf(`{"message_id": %q, "status": "delivered"}`, remote), 200)
	if got["id"] != "plain" || got["delivery_status"] != "delivered" {
		t.Fatalf("receipt answer %v", got)
	}
	r.call(http.MethodPost, "/api/v1/receipts", fmt.Sprintf(`{"message_id": %q, "status": "delivered"}`, remote), 200) // harmless repeat
	if d := r.call(http.MethodGet, "/api/v1/messages/flaky", "", 200)["delivery_status"]; d != nil {
		t.Fatalf("flaky got a receipt: %v", d)
	}
	r.call(http.MethodPost, "/api/v1/messages/plain/cancel", "", 409)
	// /metrics counts every status.
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`messaging_messages{status="expired"} 1`, `messaging_messages{status="canceled"} 1`, `messaging_messages{status="sent"} 3`} {
		if !bytes.Contains(b, []byte(line)) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// A priority 9 message created after a backlog of priority 0 is sent first.
func TestPriorityOvertakesBacklog(t *testing.T) {
	t.Parallel()
	r := startLifecycle(t, nil, "MESSAGE_FETCH_LIMIT=1")
	var items []string
	for i := range 20 {
		items = append(items, fmt.Sprintf(`{"id": "low-%02d", "content": "newsletter", %s}`, i, phone))
	}
	r.call(http.MethodPost, "/api/v1/messages/batch", `{"messages": [`+joinComma(items)+`]}`, 201)
	r.call(http.MethodPost, "/api/v1/messages", `{"id": "otp", "content": "code 123456", `+phone+`, "priority": 9}`, 201)
	r.call(http.MethodPost, "/api/v1/scheduler/start", "", 200)
	testenv.Eventually(t, 20*time.Second, "two deliveries", func() bool { return len(r.sink.Accepted()) >= 2 })
	if first := r.sink.Accepted()[0].IdempotencyKey; first != "otp" {
		t.Fatalf("first delivery %s, want the priority 9 otp", first)
	}
}

func joinComma(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}
