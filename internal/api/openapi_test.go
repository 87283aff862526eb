package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/messaging-server/messaging-server/internal/api"
)

// failedEventID is the status callback event the redelivery cases use.
const failedEventID = "5b0f0f0e-3b8e-4d5a-9a57-0c3c1f7c2b1e"

// opCase is one request to an operation and the status it must get.
type opCase struct {
	name   string
	r      req
	status int
	// docRejects: the request breaks the document's own rules, so a client
	// generated from it would not send it. Cases the server refuses for a
	// rule the document states must set it, and the test checks that the
	// document refuses them too.
	docRejects bool
	// code is the error code expected when it is not the one of the
	// documented example (a status with several codes, such as 400).
	code string
	// wire sends the request over a real socket (bodies over the limit,
	// which app.Test cannot carry).
	wire bool
}

// operation lists the cases of one documented operation. sample is a
// request it answers with success; from it the test makes the answers
// every operation shares: 401 without the key (operations with security),
// 429 over the rate limit and 431 with oversized headers (when documented).
// Adding an operation to the router means adding one entry here; the test
// fails for a routed or documented operation without one, and for a
// documented status (other than 500 and 503) that no case produces.
type operation struct {
	op     string // "METHOD /path" as the document spells it
	sample opCase
	cases  []opCase
}

func operations() []operation {
	const ok = `, "phone_number": "+905551111111"}`
	key := bearer(testKey)
	post := func(path string) req { return req{method: http.MethodPost, path: path, headers: []string{key}} }
	get := func(path string) req {
		if strings.HasPrefix(path, "/api/v1/") {
			return req{method: http.MethodGet, path: path, headers: []string{key}}
		}
		return req{method: http.MethodGet, path: path}
	}
	create := func(body string, headers ...string) req {
		return jsonReq(http.MethodPost, "/api/v1/messages", body, append([]string{key}, headers...)...)
	}
	batch := func(body string) req { return jsonReq(http.MethodPost, "/api/v1/messages/batch", body, key) }
	receipt := func(body string) req { return jsonReq(http.MethodPost, "/api/v1/receipts", body, key) }
	erase := func(body string) req { return jsonReq(http.MethodPost, "/api/v1/erasures", body, key) }
	inbound := func(body string) req { return jsonReq(http.MethodPost, "/api/v1/inbound", body, key) }
	// A create with every lifecycle field; the same text again is a
	// replay, other text a duplicate id.
	sendAt := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	lifecycleBody := func(content string) string {
		return `{"id": "otp-1", "content": "` + content + `", "phone_number": "+905551111111", "send_at": "` + sendAt +
			`", "validity_period": 7200, "priority": 9}`
	}
	later := time.Now().Add(time.Hour)
	return []operation{
		{op: "GET /healthz", sample: opCase{"alive", get("/healthz"), 200, false, "", false}},
		{op: "GET /readyz", sample: opCase{"ready", get("/readyz"), 200, false, "", false}},
		{op: "GET /metrics", sample: opCase{"scrape", get("/metrics"), 200, false, "", false}},
		{op: "GET /api/v1/scheduler", sample: opCase{"status", get("/api/v1/scheduler"), 200, false, "", false}},
		{op: "GET /api/v1/stats/counts", sample: opCase{"counts", get("/api/v1/stats/counts"), 200, false, "", false}},
		{op: "GET /api/v1/stats/minutes", sample: opCase{"per minute", get("/api/v1/stats/minutes"), 200, false, "", false}},
		{op: "POST /api/v1/scheduler/stop", sample: opCase{"stop", post("/api/v1/scheduler/stop"), 200, false, "", false}},
		{op: "POST /api/v1/scheduler/start", sample: opCase{"start", post("/api/v1/scheduler/start"), 200, false, "", false}},
		{op: "GET /api/v1/providers", sample: opCase{"providers", get("/api/v1/providers"), 200, false, "", false}},
		{
			op:     "POST /api/v1/providers/{name}/enable",
			sample: opCase{"enable", post("/api/v1/providers/default/enable"), 200, false, "", false},
			cases:  []opCase{{"unknown provider", post("/api/v1/providers/nobody/enable"), 404, false, "not_found", false}},
		},
		{op: "POST /api/v1/sessions/revoke-all", sample: opCase{"revoke", post("/api/v1/sessions/revoke-all"), 200, false, "", false}},
		{
			op:     "POST /api/v1/messages",
			sample: opCase{"create", create(`{"content": "Your code is 123456"` + ok), 201, false, "", false},
			cases: []opCase{
				{"malformed JSON", create(`{"content": "hi",` + ok), 400, true, "", false},
				{"unknown field", create(`{"content": "hi", "colour": "red"` + ok), 400, true, "unknown_field", false},
				{"lifecycle fields", create(lifecycleBody("Your code is 123456")), 201, false, "", false},
				{"replay", create(lifecycleBody("Your code is 123456")), 200, false, "", false},
				{"same id, another body", create(lifecycleBody("Your code is 654321")), 409, false, "duplicate_id", false},
				{"id with a space", create(`{"id": "otp 2", "content": "hi"` + ok), 422, true, "", false},
				{"id ..", create(`{"id": "..", "content": "hi"` + ok), 422, true, "", false},
				{"id starting with a dash", create(`{"id": "-otp", "content": "hi"` + ok), 422, true, "", false},
				{"id that is a route word", create(`{"id": "sent", "content": "hi"` + ok), 422, false, "", false},
				{"id longer than 36", create(`{"id": "` + strings.Repeat("a", 37) + `", "content": "hi"` + ok), 422, true, "", false},
				{"priority 10", create(`{"priority": 10, "content": "hi"` + ok), 422, true, "", false},
				{"validity_period 0", create(`{"validity_period": 0, "content": "hi"` + ok), 422, true, "", false},
				{"send_at not a time", create(`{"send_at": "tomorrow", "content": "hi"` + ok), 422, true, "", false},
				{"escaped lone surrogate in the id", create(`{"id": "a\ud800", "content": "hi"` + ok), 400, false, "", false},
				{"content not a string", create(`{"content": 5` + ok), 422, true, "", false},
				{"priority a string", create(`{"priority": "5", "content": "hi"` + ok), 422, true, "", false},
				{"duplicate key", create(`{"content": "hi", "content": "ho"` + ok), 400, false, "", false},
				{"wrong-case key", create(`{"content": "hi", "Content": "ho"` + ok), 400, true, "unknown_field", false},
				{"multipart, not a form", req{method: http.MethodPost, path: "/api/v1/messages", body: `{"content": "hi"` + ok,
					headers: []string{"Content-Type: multipart/form-data; boundary=x", key}}, 415, true, "", false},
				{"invalid UTF-8", create("{\"content\": \"a\xffb\"" + ok), 400, false, "", false},
				{"escaped lone surrogate", create(`{"content": "a\ud800b"` + ok), 400, false, "", false},
				{"too large", create(`{"content": "` + strings.Repeat("x", 70_000) + `"` + ok), 413, true, "", true},
				{"multipart", req{method: http.MethodPost, path: "/api/v1/messages", body: "--b\r\n\r\n--b--\r\n",
					headers: []string{"Content-Type: multipart/form-data; boundary=b", key}}, 415, true, "", false},
				{"text/plain", req{method: http.MethodPost, path: "/api/v1/messages", body: `{"content": "hi"` + ok,
					headers: []string{"Content-Type: text/plain", key}}, 415, true, "", false},
				{"latin-1", req{method: http.MethodPost, path: "/api/v1/messages", body: `{"content": "hi"` + ok,
					headers: []string{"Content-Type: application/json; charset=iso-8859-1", key}}, 415, false, "", false},
				{"content over 160", create(`{"content": "` + strings.Repeat("ş", 161) + `"` + ok), 422, true, "", false},
				{"empty content", create(`{"content": ""` + ok), 422, true, "", false},
				{"missing content", create(`{"phone_number": "+905551111111"}`), 422, true, "", false},
				{"C1 control", create(`{"content": "a\u0085b"` + ok), 422, true, "", false},
				{"escape control", create(`{"content": "a\u001bb"` + ok), 422, true, "", false},
				{"zero-width only", create(`{"content": "\u200b\ufeff"` + ok), 422, false, "", false},
				{"phone without plus", create(`{"content": "hi", "phone_number": "905551111111"}`), 422, false, "", false},
				{"phone too long", create(`{"content": "hi", "phone_number": "+1234567890123456"}`), 422, false, "", false},
				{"phone over 64 characters", create(`{"content": "hi", "phone_number": "+` + strings.Repeat("1", 64) + `"}`), 422, true, "", false},
				{"formatted phone", create(`{"content": "hi", "phone_number": "+1 (201) 555-0123"}`), 201, false, "", false},
			},
		},
		{
			op:     "POST /api/v1/messages/batch",
			sample: opCase{"two messages", batch(`{"messages": [{"content": "one"` + ok + `, {"content": "two", "priority": 9` + ok + `]}`), 201, false, "", false},
			cases: []opCase{
				{"with ids and a replayed item", batch(`{"messages": [` + lifecycleBody("Your code is 123456") + `, {"id": "batch-2", "content": "two"` + ok + `]}`), 201, false, "", false},
				{"one bad item", batch(`{"messages": [{"content": "one"` + ok + `, {"content": "two", "phone_number": "0555"}]}`), 422, false, "", false},
				{"C1 control in an item", batch(`{"messages": [{"content": "a\u0085b"` + ok + `]}`), 422, true, "", false},
				{"unknown field in an item", batch(`{"messages": [{"content": "one", "colour": "red"` + ok + `]}`), 422, true, "", false},
				{"an item reuses an id", batch(`{"messages": [` + lifecycleBody("another body") + `]}`), 409, false, "duplicate_id", false},
				{"malformed JSON", batch(`{"messages": [],}`), 400, true, "", false},
				{"unknown field", batch(`{"messages": [{"content": "one"` + ok + `], "colour": "red"}`), 400, true, "unknown_field", false},
				{"invalid UTF-8 in an item", batch("{\"messages\": [{\"content\": \"a\xffb\"" + ok + "]}"), 400, false, "", false},
				{"too large", batch(`{"messages": [{"content": "` + strings.Repeat("x", api.BatchBodyLimit) + `"` + ok + `]}`), 413, true, "", true},
				{"text/plain", req{method: http.MethodPost, path: "/api/v1/messages/batch", body: `{"messages": []}`,
					headers: []string{"Content-Type: text/plain", key}}, 415, true, "", false},
			},
		},
		{
			op:     "GET /api/v1/messages",
			sample: opCase{"first page", get("/api/v1/messages?limit=1"), 200, false, "", false},
			cases: []opCase{
				{"filtered", get("/api/v1/messages?status=pending&priority=0&limit=2"), 200, false, "", false},
				{"next page", get("/api/v1/messages?limit=2&cursor=" + api.EncodeCursor(api.PageCursor{At: &later, ID: "zzz"})), 200, false, "", false},
				{"unknown status", get("/api/v1/messages?status=done"), 400, true, "", false},
				{"priority 10", get("/api/v1/messages?priority=10"), 400, true, "", false},
				{"limit zero", get("/api/v1/messages?limit=0"), 400, true, "", false},
				{"foreign cursor", get("/api/v1/messages?cursor=bm9wZQ"), 400, false, "invalid_cursor", false},
			},
		},
		{
			op:     "POST /api/v1/messages/{id}/cancel",
			sample: opCase{"pending message", post("/api/v1/messages/cancel-1/cancel"), 200, false, "", false},
			cases: []opCase{
				{"already canceled", post("/api/v1/messages/cancel-1/cancel"), 200, false, "", false},
				{"sent", post("/api/v1/messages/sent-1/cancel"), 409, false, "", false},
				{"unknown", post("/api/v1/messages/unknown/cancel"), 404, false, "", false},
			},
		},
		{
			op:     "GET /api/v1/messages/{id}/attempts",
			sample: opCase{"two attempts", get("/api/v1/messages/sent-1/attempts"), 200, false, "", false},
			cases: []opCase{
				{"none", get("/api/v1/messages/pending-1/attempts"), 200, false, "", false},
				{"unknown", get("/api/v1/messages/unknown/attempts"), 404, false, "", false},
			},
		},
		{
			op:     "GET /api/v1/messages/{id}/events",
			sample: opCase{"two events", get("/api/v1/messages/sent-1/events"), 200, false, "", false},
			cases: []opCase{
				{"none", get("/api/v1/messages/pending-1/events"), 200, false, "", false},
				{"unknown", get("/api/v1/messages/unknown/events"), 404, false, "", false},
			},
		},
		{
			op:     "POST /api/v1/events/{id}/redeliver",
			sample: opCase{"a failed event", post("/api/v1/events/" + failedEventID + "/redeliver"), 202, false, "", false},
			cases: []opCase{
				{"unknown", post("/api/v1/events/00000000-0000-0000-0000-000000000000/redeliver"), 404, false, "", false},
				{"not an event id", post("/api/v1/events/nope/redeliver"), 404, false, "", false},
			},
		},
		{
			op:     "POST /api/v1/receipts",
			sample: opCase{"delivered", receipt(`{"message_id": "remote-sent-1", "status": "delivered"}`), 200, false, "", false},
			cases: []opCase{
				{"undelivered, older", receipt(`{"message_id": "remote-sent-1", "status": "undelivered", "error_code": "30003", "timestamp": "2025-03-04T05:06:08Z"}`), 200, false, "", false},
				{"ambiguous message_id", receipt(`{"message_id": "remote-twin", "status": "delivered"}`), 409, false, "", false},
				{"timestamp in year 9999", receipt(`{"message_id": "remote-sent-1", "status": "delivered", "timestamp": "9999-12-31T23:59:59Z"}`), 422, false, "", false},
				{"timestamp before sent_at", receipt(`{"message_id": "remote-sent-1", "status": "delivered", "timestamp": "2025-03-04T04:00:00Z"}`), 422, false, "", false},
				{"delivered with an error_code", receipt(`{"message_id": "remote-sent-1", "status": "delivered", "error_code": "30003"}`), 422, false, "", false},
				{"status not a string", receipt(`{"message_id": "remote-sent-1", "status": 1}`), 422, true, "", false},
				{"unknown message_id", receipt(`{"message_id": "remote-nope", "status": "delivered"}`), 404, false, "", false},
				{"unknown status", receipt(`{"message_id": "remote-sent-1", "status": "read"}`), 422, true, "", false},
				{"missing message_id", receipt(`{"status": "delivered"}`), 422, true, "", false},
				{"timestamp not a time", receipt(`{"message_id": "remote-sent-1", "status": "delivered", "timestamp": "yesterday"}`), 422, true, "", false},
				{"malformed JSON", receipt(`{"message_id": "remote-sent-1",}`), 400, true, "", false},
				{"unknown field", receipt(`{"message_id": "remote-sent-1", "status": "delivered", "colour": "red"}`), 400, true, "unknown_field", false},
				{"escaped lone surrogate", receipt(`{"message_id": "remote-sent-1\udfff", "status": "delivered"}`), 400, false, "", false},
				{"too large", receipt(`{"message_id": "` + strings.Repeat("x", 70_000) + `", "status": "delivered"}`), 413, true, "", true},
				{"text/plain", req{method: http.MethodPost, path: "/api/v1/receipts", body: `{"message_id": "remote-sent-1", "status": "delivered"}`,
					headers: []string{"Content-Type: text/plain", key}}, 415, true, "", false},
			},
		},
		{
			op:     "POST /api/v1/erasures",
			sample: opCase{"erase", erase(`{"phone_number": "+905551111111"}`), 200, false, "", false},
			cases: []opCase{
				{"again", erase(`{"phone_number": "+905551111111"}`), 200, false, "", false},
				{"empty number", erase(`{"phone_number": ""}`), 422, true, "", false},
				{"too long", erase(`{"phone_number": "+9055511111111111111111"}`), 422, true, "", false},
				{"the erased marker", erase(`{"phone_number": "erased"}`), 422, false, "", false},
				{"number not a string", erase(`{"phone_number": 905551111111}`), 422, true, "", false},
				{"malformed JSON", erase(`{"phone_number": "+905551111111",}`), 400, true, "", false},
				{"unknown field", erase(`{"phone": "+905551111111"}`), 400, true, "unknown_field", false},
				{"too large", erase(`{"phone_number": "` + strings.Repeat("1", 70_000) + `"}`), 413, true, "", true},
				{"text/plain", req{method: http.MethodPost, path: "/api/v1/erasures", body: `{"phone_number": "+905551111111"}`,
					headers: []string{"Content-Type: text/plain", key}}, 415, true, "", false},
			},
		},
		{
			op:     "GET /api/v1/messages/sent",
			sample: opCase{"first page", get("/api/v1/messages/sent?limit=1"), 200, false, "", false},
			cases: []opCase{
				{"limit not a number", get("/api/v1/messages/sent?limit=x"), 400, true, "", false},
				{"limit zero", get("/api/v1/messages/sent?limit=0"), 400, true, "", false},
				{"foreign cursor", get("/api/v1/messages/sent?cursor=bm9wZQ"), 400, false, "invalid_cursor", false},
			},
		},
		{
			op:     "GET /api/v1/messages/{id}",
			sample: opCase{"sent message", get("/api/v1/messages/sent-1"), 200, false, "", false},
			cases: []opCase{
				{"pending message", get("/api/v1/messages/pending-1"), 200, false, "", false},
				{"unknown", get("/api/v1/messages/unknown"), 404, false, "", false},
				{"id longer than 36", get("/api/v1/messages/" + strings.Repeat("x", 37)), 404, true, "", false},
			},
		},
		{
			op:     "POST /api/v1/inbound",
			sample: opCase{"STOP", inbound(`{"from": "+1 (201) 555-0123", "text": " Stop ", "received_at": "2026-01-02T03:04:05Z"}`), 200, false, "", false},
			cases: []opCase{
				{"START", inbound(`{"from": "+12015550123", "text": "START"}`), 200, false, "", false},
				{"HELP", inbound(`{"from": "+12015550123", "text": "HELP"}`), 200, false, "", false},
				{"from not a number", inbound(`{"from": "05551111111", "text": "STOP"}`), 422, false, "", false},
				{"missing text", inbound(`{"from": "+12015550123"}`), 422, true, "", false},
				{"received_at not a time", inbound(`{"from": "+12015550123", "text": "STOP", "received_at": "today"}`), 422, true, "", false},
				{"malformed JSON", inbound(`{"from": "+12015550123",}`), 400, true, "", false},
				{"unknown field", inbound(`{"from": "+12015550123", "text": "STOP", "to": "+1"}`), 400, true, "unknown_field", false},
				{"too large", inbound(`{"from": "+12015550123", "text": "` + strings.Repeat("x", 70_000) + `"}`), 413, true, "", true},
				{"text/plain", req{method: http.MethodPost, path: "/api/v1/inbound", body: `{}`,
					headers: []string{"Content-Type: text/plain", key}}, 415, true, "", false},
			},
		},
		{
			op:     "PUT /api/v1/opt-outs/{phone_number}",
			sample: opCase{"add", req{method: http.MethodPut, path: "/api/v1/opt-outs/%2B447400123456", headers: []string{key}}, 200, false, "", false},
			cases: []opCase{
				{"again, formatted", req{method: http.MethodPut, path: "/api/v1/opt-outs/%2B44%207400%20123456", headers: []string{key}}, 200, false, "", false},
				{"not a number", req{method: http.MethodPut, path: "/api/v1/opt-outs/0555", headers: []string{key}}, 422, false, "", false},
			},
		},
		{
			op:     "GET /api/v1/opt-outs",
			sample: opCase{"first page", get("/api/v1/opt-outs?limit=1"), 200, false, "", false},
			cases: []opCase{
				{"limit zero", get("/api/v1/opt-outs?limit=0"), 400, true, "", false},
				{"foreign cursor", get("/api/v1/opt-outs?cursor=bm9wZQ"), 400, false, "invalid_cursor", false},
			},
		},
		{
			op:     "DELETE /api/v1/opt-outs/{phone_number}",
			sample: opCase{"remove", req{method: http.MethodDelete, path: "/api/v1/opt-outs/%2B447400123456", headers: []string{key}}, 204, false, "", false},
			cases: []opCase{
				{"not there", req{method: http.MethodDelete, path: "/api/v1/opt-outs/%2B447400123456", headers: []string{key}}, 404, false, "", false},
				{"not a number", req{method: http.MethodDelete, path: "/api/v1/opt-outs/0555", headers: []string{key}}, 422, false, "", false},
			},
		},
		{
			op:     "POST /api/v1/messages/{id}/retry",
			sample: opCase{"failed message", post("/api/v1/messages/failed-1/retry"), 200, false, "", false},
			cases: []opCase{
				{"unknown", post("/api/v1/messages/unknown/retry"), 404, false, "", false},
				{"not failed", post("/api/v1/messages/pending-1/retry"), 409, false, "", false},
			},
		},
	}
}

// openAPI3 loads the served swagger 2.0 document and converts it.
func openAPI3(t *testing.T, e *env) *openapi3.T {
	t.Helper()
	status, _, b := e.get("/swagger/doc.json")
	if status != http.StatusOK {
		t.Fatalf("/swagger/doc.json: %d", status)
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(b, &doc2); err != nil {
		t.Fatalf("load swagger 2.0 document: %v", err)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		t.Fatalf("convert to OpenAPI 3: %v", err)
	}
	if err := doc3.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	doc3.Servers = nil // match requests to any host
	return doc3
}

func httpRequest(r req) *http.Request {
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for _, h := range r.headers {
		k, v, _ := strings.Cut(h, ":")
		hr.Header.Set(k, strings.TrimSpace(v))
	}
	return hr
}

// Every operation's real answers are what the document says: a documented
// status, a body that fits its schema, and the error code of the
// documented example. Requests the server refuses for a documented rule are
// refused by the document too.
func TestResponsesMatchTheDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	limited := newEnv(t, "API_KEY="+testKey, "RATE_LIMIT=1")
	// app.Test cannot carry oversized headers (fasthttp fails the test
	// connection instead of answering), so 431 is asked over a real socket.
	wire := serveOnSocket(t, newEnv(t, "API_KEY="+testKey, "SERVER_GRACE_PERIOD=5")).send
	viaTest := func(e *env) sender {
		return func(t *testing.T, r req) (int, http.Header, []byte) {
			t.Helper()
			return (&env{t: t, srv: e.srv}).do(r)
		}
	}
	doc := openAPI3(t, e)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e.exec(`INSERT INTO messages (id, content, phone_number, status) VALUES
        ('pending-1', 'hi', '+905551111111', 'pending'), ('failed-1', 'hi', '+905551111111', 'failed'),
        ('sent-1', 'hi', '+905551111111', 'pending'), ('cancel-1', 'hi', '+905551111111', 'pending')`)
	e.markSent(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), "sent-1")
	// Two sent messages that share a remote id, for the 409 of a receipt.
	e.exec(`INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id) VALUES
        ('twin-1', 'hi', '+905551111111', 'sent', TRUE, now(), 'remote-twin'),
        ('twin-2', 'hi', '+905551111111', 'sent', TRUE, now(), 'remote-twin')`)
	e.exec(`INSERT INTO message_attempts VALUES
        ('sent-1', 1, '2025-03-04T05:06:00Z', 30000, NULL, 'retry', 'webhook call failed: timeout'),
        ('sent-1', 2, '2025-03-04T05:06:07Z', 42, 202, 'sent', NULL)`)
	// A failed status callback event of sent-1, besides the one its
	// change to sent wrote.
	e.exec(`INSERT INTO message_events (id, message_id, type, snapshot, status, attempts, last_error)
        VALUES ($1, 'sent-1', 'message.delivered', '{}', 'failed', 12, 'callback answered 500')`, failedEventID)
	// Uses up the limited server's one request a minute.
	if status, _, b := limited.get("/api/v1/scheduler", bearer(testKey)); status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", status, b)
	}

	ops := operations()
	// Every routed and every documented operation has an entry.
	var have, routed, documented []string
	for _, o := range ops {
		have = append(have, o.op)
	}
	for _, r := range e.srv.App().GetRoutes(true) {
		// The console's pages are HTML, not part of the JSON API.
		if r.Method == http.MethodHead || strings.HasPrefix(r.Path, "/swagger") || strings.HasPrefix(r.Path, "/monitoring") || strings.HasPrefix(r.Path, "/console") {
			continue
		}
		routed = append(routed, r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}"))
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	for _, l := range []*[]string{&have, &routed, &documented} {
		sort.Strings(*l)
		*l = slices.Compact(*l)
	}
	if !slices.Equal(have, routed) || !slices.Equal(have, documented) {
		t.Fatalf("operations with cases %v\nrouted %v\ndocumented %v\n(add an entry to operations() for each routed operation)", have, routed, documented)
	}

	for _, o := range ops {
		method, path, _ := strings.Cut(o.op, " ")
		docOp := doc.Paths.Find(path).GetOperation(method)
		documentedStatus := map[int]bool{}
		for code := range docOp.Responses.Map() {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Fatalf("%s: response %q", o.op, code)
			}
			documentedStatus[n] = true
		}
		type run struct {
			c    opCase
			send sender
		}
		runs := []run{{o.sample, viaTest(e)}}
		for _, c := range o.cases {
			if c.wire {
				runs = append(runs, run{c, wire})
			} else {
				runs = append(runs, run{c, viaTest(e)})
			}
		}
		if docOp.Security != nil && len(*docOp.Security) > 0 {
			r := o.sample.r
			r.headers = slices.DeleteFunc(slices.Clone(r.headers), func(h string) bool { return strings.HasPrefix(h, "Authorization:") })
			runs = append(runs, run{opCase{"no key", r, 401, true, "", false}, viaTest(e)})
		}
		if documentedStatus[429] {
			runs = append(runs, run{opCase{"rate limited", o.sample.r, 429, false, "", false}, viaTest(limited)})
		}
		if documentedStatus[431] {
			r := o.sample.r
			r.headers = append(slices.Clone(r.headers), "X-Padding: "+strings.Repeat("p", 8<<10))
			runs = append(runs, run{opCase{"headers too large", r, 431, false, "", false}, wire})
		}
		produced := map[int]bool{}
		for _, rn := range runs {
			t.Run(o.op+"/"+rn.c.name, func(t *testing.T) {
				produced[rn.c.status] = true
				checkAgainstDocument(t, rn.send, router, docOp, rn.c)
			})
		}
		for code := range documentedStatus {
			if !produced[code] && code != 500 && code != 503 {
				t.Errorf("%s documents %d but no case produces it", o.op, code)
			}
		}
	}
}

// sender makes a request and returns the answer's status, headers and body.
type sender func(t *testing.T, r req) (int, http.Header, []byte)

// socket is e's API served on a free local port by ServeListener.
type socket struct {
	addr string
	send sender
	// stop ends ServeListener and checks that it returned cleanly; it
	// runs when the test ends if the test did not call it.
	stop func()
}

// serveOnSocket serves e's API on a free local port until the test ends.
func serveOnSocket(t *testing.T, e *env) *socket {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeListener(ctx, ln) }()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			client.CloseIdleConnections()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ServeListener: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("ServeListener did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	base := "http://" + ln.Addr().String()
	send := func(t *testing.T, r req) (int, http.Header, []byte) {
		t.Helper()
		if r.method == http.MethodPost && len(r.body) > api.BodyLimit {
			// Declared in full, sent only in part: the server answers 413
			// from the length and closes, and a client still writing a
			// large body could read the reset instead of the answer.
			headers := slices.DeleteFunc(slices.Clone(r.headers), func(h string) bool { return strings.HasPrefix(h, "Content-Type:") })
			resp, b := rawPost(t, ln.Addr().String(), r.path, len(r.body), r.body[:64], headers...)
			return resp.StatusCode, resp.Header, b
		}
		// Headers over the server's 4 KiB are refused before the server
		// reads them all; it answers 431 and closes, and the unread bytes
		// make the kernel reset the connection, which can reach the client
		// before the answer does. Such a request is sent again, a few
		// times, until the answer is read.
		tries := 1
		for _, h := range r.headers {
			if len(h) > 4<<10 {
				tries = 5
			}
		}
		var resp *http.Response
		for try := 1; ; try++ {
			hr, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range r.headers {
				k, v, _ := strings.Cut(h, ":")
				hr.Header.Set(k, strings.TrimSpace(v))
			}
			if resp, err = client.Do(hr); err == nil {
				break
			}
			if try >= tries {
				t.Fatalf("%s %s (try %d of %d): %v", r.method, r.path, try, tries, err)
			}
			time.Sleep(time.Duration(try) * 20 * time.Millisecond) //nolint:forbidigo // backoff before sending again
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
		}
		return resp.StatusCode, resp.Header, b
	}
	return &socket{addr: ln.Addr().String(), send: send, stop: stop}
}

func checkAgainstDocument(t *testing.T, send sender, router routers.Router, docOp *openapi3.Operation, c opCase) {
	t.Helper()
	ctx := context.Background()
	hr := httpRequest(c.r)
	route, pathParams, err := router.FindRoute(hr)
	if err != nil {
		t.Fatalf("the document has no route for %s %s: %v", c.r.method, c.r.path, err)
	}
	if route.Operation != docOp {
		t.Fatalf("%s %s routes to %s %s in the document", c.r.method, c.r.path, route.Method, route.Path)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: hr, PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			// The bearer key is an apiKey in the Authorization header.
			AuthenticationFunc: func(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
				if !strings.HasPrefix(ai.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
					return fmt.Errorf("no bearer key")
				}
				return nil
			},
		},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case c.status < 300 && reqErr != nil:
		t.Errorf("the document refuses a request the server accepts: %v", reqErr)
	case c.docRejects && reqErr == nil:
		t.Errorf("the server answers %d, but the document lets a client send this request", c.status)
	}

	status, h, body := send(t, c.r)
	if status != c.status {
		t.Fatalf("status %d, want %d: %.300s", status, c.status, body)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: h,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Fatalf("the answer does not fit the document: %v\nbody: %.300s", err, body)
	}
	if status < 300 {
		return
	}
	// The documented example is the answer's kind of error.
	resp := docOp.Responses.Status(status)
	mt := resp.Value.Content.Get("application/json")
	if mt == nil || mt.Example == nil {
		t.Fatalf("no example documented for %d", status)
	}
	var real, ex struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	exJSON, err := json.Marshal(mt.Example)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(exJSON, &ex); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &real); err != nil {
		t.Fatal(err)
	}
	switch {
	case c.code != "" && real.Error.Code != c.code:
		t.Fatalf("answer's code %q, want %q", real.Error.Code, c.code)
	case c.code == "" && real.Error.Code != ex.Error.Code:
		t.Fatalf("answer's code %q, documented example's %q", real.Error.Code, ex.Error.Code)
	}
	if err := mt.Schema.Value.VisitJSON(mt.Example); err != nil {
		t.Fatalf("documented example does not fit its schema: %v", err)
	}
}
