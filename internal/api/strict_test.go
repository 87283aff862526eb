package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
)

// decodeAnswer runs body through the decoder of route and returns the
// answer it would give: status, code and field (for a batch item, the
// item's index and field). A body a decoder accepts gives status 0.
func decodeAnswer(t *testing.T, route, body string) (status int, code, field string, index int) {
	t.Helper()
	var err error
	switch route {
	case "create":
		_, err = api.DecodeNewMessage([]byte(body))
	case "receipt":
		_, err = api.DecodeReceipt([]byte(body))
	case "batch":
		var bad []api.ItemError
		_, bad, err = api.DecodeBatch([]byte(body))
		if err == nil && len(bad) > 0 {
			if len(bad) != 1 {
				t.Fatalf("%s: %d bad items, want 1: %+v", body, len(bad), bad)
			}
			return 422, "validation_failed", bad[0].Field, bad[0].Index
		}
	default:
		t.Fatalf("no route %q", route)
	}
	if err == nil {
		return 0, "", "", -1
	}
	var (
		ae *api.Error
		ve *api.ValidationError
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Code, ae.Field, -1
	case errors.As(err, &ve):
		if ve.Message == "" || strings.Contains(ve.Message, "Lifecycle") || strings.Contains(ve.Message, "Request") {
			t.Errorf("%s: message %q is empty or names a Go type", body, ve.Message)
		}
		return 422, "validation_failed", ve.Field, -1
	}
	t.Fatalf("%s: error %T %v is neither an *api.Error nor a *api.ValidationError", body, err, err)
	return 0, "", "", -1
}

// Every field of every body the API decodes, given a JSON value of the
// wrong type, gets 422 naming the field as the document does; never 400
// with an internal Go name, never a value taken as something else.
func TestStrictTypesNameTheField(t *testing.T) {
	t.Parallel()
	const okCreate = `"content": "hi", "phone_number": "+905551111111"`
	stringFields := map[string][]string{
		"create":  {"content", "phone_number", "id", "send_at"},
		"receipt": {"message_id", "status", "error_code", "timestamp"},
	}
	notStrings := []string{`5`, `-1`, `1.5`, `1e3`, `true`, `false`, `{}`, `{"a": "b"}`, `[]`, `["hi"]`}
	intFields := []string{"validity_period", "priority"}
	notInts := []string{`"60"`, `"5"`, `""`, `1.5`, `1.0`, `1e3`, `5E0`, `-0.0`, `true`, `false`, `{}`, `[]`, `[5]`,
		`99999999999999999999`, `-99999999999999999999`}

	type tc struct{ route, body, field string }
	var cases []tc
	for _, f := range stringFields["create"] {
		for _, v := range notStrings {
			fields := map[string]string{"content": `"hi"`, "phone_number": `"+905551111111"`, f: v}
			var parts []string
			for k, val := range fields {
				parts = append(parts, fmt.Sprintf("%q: %s", k, val))
			}
			cases = append(cases, tc{"create", "{" + strings.Join(parts, ", ") + "}", f})
		}
	}
	for _, f := range intFields {
		for _, v := range notInts {
			cases = append(cases, tc{"create", fmt.Sprintf(`{%s, %q: %s}`, okCreate, f, v), f})
		}
	}
	receipt := map[string]string{"message_id": `"r-1"`, "status": `"undelivered"`, "error_code": `"30003"`, "timestamp": `"2026-01-01T00:00:00Z"`}
	for _, f := range stringFields["receipt"] {
		for _, v := range notStrings {
			var parts []string
			for _, k := range []string{"message_id", "status", "error_code", "timestamp"} {
				val := receipt[k]
				if k == f {
					val = v
				}
				parts = append(parts, fmt.Sprintf("%q: %s", k, val))
			}
			cases = append(cases, tc{"receipt", "{" + strings.Join(parts, ", ") + "}", f})
		}
	}
	for _, c := range cases {
		status, code, field, _ := decodeAnswer(t, c.route, c.body)
		if status != 422 || code != "validation_failed" || field != c.field {
			t.Errorf("%s %s: %d %s field %q, want 422 validation_failed field %q", c.route, c.body, status, code, field, c.field)
		}
	}

	// In a batch, the bad item is named by its index and the field as in a
	// single create.
	item := `{` + okCreate + `}`
	for _, f := range intFields {
		for _, v := range notInts {
			body := fmt.Sprintf(`{"messages": [%s, %s, %s, {%s, %q: %s}]}`, item, item, item, okCreate, f, v)
			status, _, field, index := decodeAnswer(t, "batch", body)
			if status != 422 || field != f || index != 3 {
				t.Errorf("batch %s: %d item %d field %q, want 422 item 3 field %q", body, status, index, field, f)
			}
		}
	}
	for _, v := range []string{`5`, `"all"`, `{}`, `true`} {
		body := `{"messages": ` + v + `}`
		if status, code, field, _ := decodeAnswer(t, "batch", body); status != 422 || code != "validation_failed" || field != "messages" {
			t.Errorf("batch %s: %d %s field %q, want 422 field messages", body, status, code, field)
		}
	}
	for _, v := range []string{`5`, `"hi"`, `null`, `[]`} {
		body := `{"messages": [` + item + `, ` + v + `]}`
		if status, _, _, index := decodeAnswer(t, "batch", body); status != 422 || index != 1 {
			t.Errorf("batch %s: %d item %d, want 422 item 1", body, status, index)
		}
	}

	// The values of the right type still decode, as sent.
	for _, body := range []string{
		`{` + okCreate + `, "id": "otp-1", "send_at": "2030-01-01T00:00:00Z", "validity_period": 60, "priority": 5}`,
		`{` + okCreate + `, "priority": -0, "validity_period": -1}`, // JSON integers; their range is checked later
		`{` + okCreate + `, "id": null, "priority": null}`,
	} {
		if status, code, field, _ := decodeAnswer(t, "create", body); status != 0 {
			t.Errorf("%s: %d %s %s, want decoded", body, status, code, field)
		}
	}
	r, err := api.DecodeNewMessage([]byte(`{` + okCreate + `, "validity_period": 60, "priority": 5}`))
	if err != nil || r.ValidityPeriod == nil || *r.ValidityPeriod != 60 || r.Priority == nil || *r.Priority != 5 {
		t.Fatalf("integers: %+v %v", r, err)
	}
}

// Names match exactly: a name in another case is an unknown field, so it
// can never overwrite the field it resembles; a name that appears twice is
// refused with 400 naming it, at any depth.
func TestStrictNames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		route, body  string
		code, field  string
		msgHasQuoted bool // the message quotes the duplicate name
	}{
		{"create", `{"content": "lower", "Content": "UPPER", "phone_number": "+905551111111"}`, "unknown_field", "Content", false},
		{"create", `{"CONTENT": "UPPER", "phone_number": "+905551111111"}`, "unknown_field", "CONTENT", false},
		{"create", `{"content": "hi", "Phone_Number": "+905551111111"}`, "unknown_field", "Phone_Number", false},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "ID": "x"}`, "unknown_field", "ID", false},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "Priority": 9}`, "unknown_field", "Priority", false},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "priorıty": 9}`, "unknown_field", "priorıty", false},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "priority\u0000": 9}`, "unknown_field", "priority\x00", false},
		{"receipt", `{"message_id": "r", "Status": "delivered"}`, "unknown_field", "Status", false},
		{"batch", `{"Messages": []}`, "unknown_field", "Messages", false},
		{"create", `{"content": "lower", "content": "UPPER", "phone_number": "+905551111111"}`, "invalid_json", "content", true},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "priority": 1, "priority": 9}`, "invalid_json", "priority", true},
		{"create", `{"content": "hi", "phone_number": "+905551111111", "id": "a", "\u0069d": "b"}`, "invalid_json", "id", true},
		// The first fault found answers: here the unknown name.
		{"create", `{"content": "hi", "phone_number": "+905551111111", "x": 1, "x": 2}`, "unknown_field", "x", false},
		{"create", `{"content": "hi", "content": "hi", "phone_number": "+905551111111"}`, "invalid_json", "content", true},
		{"receipt", `{"message_id": "r", "status": "delivered", "status": "undelivered"}`, "invalid_json", "status", true},
		{"batch", `{"messages": [], "messages": []}`, "invalid_json", "messages", true},
		{"batch", `{"messages": [{"content": "a", "phone_number": "+905551111111"}, {"content": "a", "content": "b"}]}`, "invalid_json", "messages[1].content", true},
	}
	for _, c := range cases {
		status, code, field, _ := decodeAnswer(t, c.route, c.body)
		if status != 400 || code != c.code || field != c.field {
			t.Errorf("%s %s: %d %s field %q, want 400 %s field %q", c.route, c.body, status, code, field, c.code, c.field)
		}
		if c.msgHasQuoted {
			var ae *api.Error
			var err error
			switch c.route {
			case "create":
				_, err = api.DecodeNewMessage([]byte(c.body))
			case "receipt":
				_, err = api.DecodeReceipt([]byte(c.body))
			case "batch":
				_, _, err = api.DecodeBatch([]byte(c.body))
			}
			if !errors.As(err, &ae) || !strings.Contains(ae.Message, fmt.Sprintf("%q", c.field)) {
				t.Errorf("%s: message %v does not name %q", c.body, err, c.field)
			}
		}
	}
}

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

// createOracle reads a create body the independent way: encoding/json into
// a map, which (for a body the strict decoder accepted: valid UTF-8, no
// lone surrogate, no repeated name) holds exactly the strings sent.
func createOracle(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%q accepted by DecodeNewMessage, refused by encoding/json: %v", body, err)
	}
	return m
}

// FuzzDecodeNewMessage: whatever the strict decoder accepts
//   - has only the documented names, spelled exactly;
//   - holds the content, phone number and id byte for byte as sent, and so
//     does the message BuildNewMessage makes of it for the store;
//   - encodes and decodes again to the same request.
func FuzzDecodeNewMessage(f *testing.F) {
	for _, s := range []string{
		`{"content": "hi", "phone_number": "+905551111111"}`,
		`{"content": "lower", "Content": "UPPER", "phone_number": "+905551111111"}`,
		`{"content": "a", "content": "b"}`,
		`{"id": "otp-4711", "content": "\u00e7\ud83d\ude00", "phone_number": "+905551111111", "priority": 9, "validity_period": 60}`,
		`{"priority": "5"}`, `{"validity_period": 1.5}`, `{"priority": true}`, `null`, `[]`, `{"content": "\ud800"}`,
		`{"send_at": "2030-01-01T00:00:00Z", "content": "x\u0000y"}`, "{\"content\": \"a\xffb\"}",
	} {
		f.Add([]byte(s))
	}
	allowed := map[string]bool{"content": true, "phone_number": true, "id": true, "send_at": true, "validity_period": true, "priority": true}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := api.DecodeNewMessage(body)
		if err != nil {
			var (
				ae *api.Error
				ve *api.ValidationError
			)
			if !errors.As(err, &ae) && !errors.As(err, &ve) {
				t.Fatalf("%q: error %T %v is not an answer", body, err, err)
			}
			if ae != nil && ae.Status != 400 || ve != nil && !allowed[ve.Field] {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		sent := createOracle(t, body)
		for k := range sent {
			if !allowed[k] {
				t.Fatalf("%q accepted with the name %q", body, k)
			}
		}
		str := func(k string) (string, bool) {
			s, ok := sent[k].(string)
			return s, ok
		}
		if s, _ := str("content"); r.Content != s {
			t.Fatalf("%q: content %q, sent %q", body, r.Content, s)
		}
		if s, _ := str("phone_number"); r.PhoneNumber != s {
			t.Fatalf("%q: phone_number %q, sent %q", body, r.PhoneNumber, s)
		}
		if s, ok := str("id"); ok != (r.ID != nil) || ok && *r.ID != s {
			t.Fatalf("%q: id %v, sent %q", body, r.ID, sent["id"])
		}
		if s, ok := str("send_at"); ok != (r.SendAt != nil) || ok && *r.SendAt != s {
			t.Fatalf("%q: send_at %v, sent %q", body, r.SendAt, sent["send_at"])
		}
		for k, v := range map[string]*int{"priority": r.Priority, "validity_period": r.ValidityPeriod} {
			n, ok := sent[k].(json.Number)
			if ok != (v != nil) || ok && n.String() != fmt.Sprint(*v) && (n.String() != "-0" || *v != 0) {
				t.Fatalf("%q: %s %v, sent %v", body, k, v, sent[k])
			}
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := api.DecodeNewMessage(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q decoded to %+v, encoded as %s, decoded again to %+v (%v)", body, r, again, r2, err)
		}
		n, _, err := api.BuildNewMessage(r, now, api.CreateLimits{MaxContent: 255, DefaultValidity: time.Hour})
		if err != nil {
			return
		}
		if n.Content != r.Content || n.PhoneNumber != r.PhoneNumber || r.ID != nil && n.ID != *r.ID {
			t.Fatalf("%q: would store %+v from %+v", body, n, r)
		}
	})
}
