package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Over HTTP: the hostile bodies of the strict rules get their answer and
// store nothing; the 415s cover every route with a JSON body and any
// content type but JSON, with or without parameters.
func TestStrictJSONOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.exec(`INSERT INTO messages (id, content, phone_number) VALUES ('sent-1', 'hi', '+905551111111')`)
	e.markSent(time.Now(), "sent-1")
	const ok = `, "phone_number": "+905551111111"}`
	item := `{"content": "hi"` + ok
	cases := []struct {
		name, path, body, contentType string
		status                        int
		code, field                   string
		index                         int // the bad item of a batch; -1 for none
	}{
		{"case variant", "/api/v1/messages", `{"content": "lower", "Content": "UPPER"` + ok, "", 400, "unknown_field", "Content", -1},
		{"duplicate content", "/api/v1/messages", `{"content": "lower", "content": "UPPER"` + ok, "", 400, "invalid_json", "content", -1},
		{"validity_period as a string", "/api/v1/messages", `{"content": "hi", "validity_period": "60"` + ok, "", 422, "validation_failed", "validity_period", -1},
		{"priority as a string", "/api/v1/messages", `{"content": "hi", "priority": "5"` + ok, "", 422, "validation_failed", "priority", -1},
		{"priority true", "/api/v1/messages", `{"content": "hi", "priority": true` + ok, "", 422, "validation_failed", "priority", -1},
		{"priority a fraction", "/api/v1/messages", `{"content": "hi", "priority": 5.0` + ok, "", 422, "validation_failed", "priority", -1},
		{"content a number", "/api/v1/messages", `{"content": 5` + ok, "", 422, "validation_failed", "content", -1},
		{"batch: item 3 priority a string", "/api/v1/messages/batch",
			`{"messages": [` + item + `, ` + item + `, ` + item + `, {"content": "hi", "priority": "5"` + ok + `]}`, "", 422, "validation_failed", "priority", 3},
		{"batch: duplicate in an item", "/api/v1/messages/batch", `{"messages": [{"content": "a", "content": "b"` + ok + `]}`, "", 400, "invalid_json", "messages[0].content", -1},
		{"receipt: status a number", "/api/v1/receipts", `{"message_id": "remote-sent-1", "status": 1}`, "", 422, "validation_failed", "status", -1},
		{"receipt: duplicate status", "/api/v1/receipts", `{"message_id": "remote-sent-1", "status": "delivered", "status": "undelivered"}`, "", 400, "invalid_json", "status", -1},
		{"receipt: Status", "/api/v1/receipts", `{"message_id": "remote-sent-1", "Status": "delivered"}`, "", 400, "unknown_field", "Status", -1},
	}
	for _, path := range []string{"/api/v1/messages", "/api/v1/messages/batch", "/api/v1/receipts"} {
		body := `{"content": "hi"` + ok
		if strings.HasSuffix(path, "batch") {
			body = `{"messages": [` + body + `]}`
		} else if strings.HasSuffix(path, "receipts") {
			body = `{"message_id": "remote-sent-1", "status": "delivered"}`
		}
		for _, ct := range []string{"multipart/form-data; boundary=x", "multipart/form-data; boundary=\"b\"; charset=utf-8",
			"text/plain", "text/plain; charset=utf-8", "application/xml", "application/x-www-form-urlencoded; charset=utf-8",
			"application/jsonx", "text/json", "-"} {
			cases = append(cases, struct {
				name, path, body, contentType string
				status                        int
				code, field                   string
				index                         int
			}{"415 " + ct, path, body, ct, 415, "unsupported_media_type", "", -1})
		}
	}
	for _, c := range cases {
		t.Run(c.name+" "+c.path, func(t *testing.T) {
			var headers []string
			switch c.contentType {
			case "":
				headers = []string{"Content-Type: application/json"}
			case "-": // none at all
			default:
				headers = []string{"Content-Type: " + c.contentType}
			}
			ee := &env{t: t, srv: e.srv}
			status, h, b := ee.do(req{method: http.MethodPost, path: c.path, body: c.body, headers: headers})
			got := wantError(t, status, h, b, c.status, c.code)
			if c.index >= 0 {
				if len(got.Items) != 1 || got.Items[0].Index != c.index || got.Items[0].Field != c.field {
					t.Fatalf("items %+v, want item %d field %q", got.Items, c.index, c.field)
				}
			} else if got.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", got.Field, c.field, b)
			}
			if strings.Contains(string(b), "Lifecycle") || strings.Contains(string(b), "Request.") {
				t.Fatalf("the answer names a Go type: %s", b)
			}
		})
	}
	if n := e.count("id <> 'sent-1'"); n != 0 {
		t.Fatalf("%d messages stored by rejected requests", n)
	}
	if n := e.count("delivery_status IS NOT NULL"); n != 0 {
		t.Fatal("a rejected receipt was stored")
	}
	// JSON with a UTF-8 charset, in any case, stays accepted.
	for i, ct := range []string{"application/json; charset=utf-8", "application/json; charset=UTF-8", "Application/JSON"} {
		body := fmt.Sprintf(`{"id": "ct-%d", "content": "hi"%s`, i, ok)
		status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/messages", body: body, headers: []string{"Content-Type: " + ct}})
		if status != http.StatusCreated {
			t.Fatalf("%s: %d %s", ct, status, b)
		}
	}
}
