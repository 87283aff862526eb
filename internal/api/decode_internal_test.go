package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/message"
)

func TestValidateNewMessage(t *testing.T) {
	t.Parallel()
	const phone = "+905551111111"
	cases := []struct {
		name, content, phone string
		max                  int
		field                string // "" when valid
	}{
		{"plain", "hello", phone, 160, ""},
		{"exactly max runes, multibyte", strings.Repeat("ğ", 160), phone, 160, ""},
		{"emoji count as one each", strings.Repeat("🙂", 10), phone, 10, ""},
		{"tabs and line breaks", "a\tb\r\nc", phone, 160, ""},
		{"max 255", strings.Repeat("x", 255), phone, 255, ""},
		{"short German", "hi", "+49 30 123456", 160, ""},
		{"test range", "hi", "+1 555 010 0001", 160, ""},
		{"empty content", "", phone, 160, "content"},
		{"blank content", " \t\n", phone, 160, "content"},
		{"one rune over", strings.Repeat("ğ", 161), phone, 160, "content"},
		{"one over a small max", "abcd", phone, 3, "content"},
		{"invalid UTF-8", "a\xffb", phone, 160, "content"},
		{"NUL", "a\x00b", phone, 160, "content"},
		{"escape", "a\x1bb", phone, 160, "content"},
		{"DEL", "a\x7fb", phone, 160, "content"},
		{"C1", "a\u0085b", phone, 160, "content"},
		{"zero-width only", "\u200b\ufeff", phone, 160, "content"},
		{"missing phone", "hi", "", 160, "phone_number"},
		{"no plus", "hi", "905551111111", 160, "phone_number"},
		{"leading zero", "hi", "+0905551111", 160, "phone_number"},
		{"7 digits", "hi", "+1234567", 160, "phone_number"},
		{"16 digits", "hi", "+1234567890123456", 160, "phone_number"},
		{"spaces", "hi", "+90 5551111111", 160, ""},
		{"dashes", "hi", "+90-555-111-1111", 160, ""},
		{"parentheses", "hi", "+1 (201) 555-0123", 160, ""},
		{"too short for +1", "hi", "+1 201 555 012", 160, "phone_number"},
		{"two plus, read as one", "hi", "++905551111111", 160, ""},
		{"trailing newline", "hi", phone + "\n", 160, ""},
		{"no country code", "hi", "05551111111", 160, "phone_number"},
		{"4 segments, over MAX_SEGMENTS 3", strings.Repeat("€", 255), phone, 255, "content"},
		{"99 emoji: 3 segments of 66 units", strings.Repeat("🙂", 99), phone, 255, ""},
		{"100 emoji: 4 segments, a pair is never split", strings.Repeat("🙂", 100), phone, 255, "content"},
		{"both bad: content reported first", "", "x", 160, "content"},
	}
	for _, c := range cases {
		_, err := validateNewMessage(CreateMessageRequest{Content: c.content, PhoneNumber: c.phone},
			createLimits{MaxContent: c.max, MaxSegments: 3})
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || ve.Message == "" {
			t.Errorf("%s: error %v, want a ValidationError on %s", c.name, err, c.field)
		}
	}
}

func TestDecodeNewMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		code       string // "" when it decodes
		want       CreateMessageRequest
	}{
		{"ok", `{"content":"a","phone_number":"+905551111111"}`, "", CreateMessageRequest{Content: "a", PhoneNumber: "+905551111111"}},
		{"whitespace around", " \n{\"content\":\"a\"}\n ", "", CreateMessageRequest{Content: "a"}},
		{"escapes", `{"content":"\u00e7\n"}`, "", CreateMessageRequest{Content: "ç\n"}},
		{"null", `null`, "", CreateMessageRequest{}},
		{"empty", ``, "invalid_json", CreateMessageRequest{}},
		{"spaces only", `   `, "invalid_json", CreateMessageRequest{}},
		{"truncated", `{"content":"a"`, "invalid_json", CreateMessageRequest{}},
		{"syntax", `{"content":}`, "invalid_json", CreateMessageRequest{}},
		{"trailing object", `{} {}`, "invalid_json", CreateMessageRequest{}},
		{"trailing garbage", `{}x`, "invalid_json", CreateMessageRequest{}},
		{"string", `"hi"`, "invalid_json", CreateMessageRequest{}},
		{"unknown", `{"Content":"a","extra":true}`, "unknown_field", CreateMessageRequest{}},
		{"wrong case", `{"content":"lower","Content":"UPPER"}`, "unknown_field", CreateMessageRequest{}},
		{"duplicate", `{"content":"a","content":"b"}`, "invalid_json", CreateMessageRequest{}},
	}
	for _, c := range cases {
		got, err := decodeNewMessage([]byte(c.body))
		if c.code == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
			}
			continue
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != c.code || ae.Status != 400 {
			t.Errorf("%s: error %v, want 400 %s", c.name, err, c.code)
		}
	}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// FuzzValidateNewMessage checks the validator's contract on any input: it
// never panics, it accepts exactly what the rules allow, and anything it
// accepts can be stored (valid UTF-8 without NUL, at most max runes, which
// is at most 255, and a phone number that fits VARCHAR(20)).
func FuzzValidateNewMessage(f *testing.F) {
	seeds := []struct {
		content, phone string
		max            uint8
	}{
		{"hello", "+905551111111", 160},
		{"", "+905551111111", 160},
		{" ", "+12345678", 1},
		{strings.Repeat("ç", 161), "+905551111111", 160},
		{"a\x00b", "+905551111111", 160},
		{"a\xffb", "+905551111111", 160},
		{"tab\tok", "+123456789012345", 255},
		{"x", "+1234567890123456", 255},
		{"x", "+0123456789", 255},
		{"x", "905551111111", 255},
		{"🙂🙂", "+905551111111", 1},
		{"\u200b", "+905551111111", 160},
		{"a\u009f", "+905551111111", 160},
	}
	for _, s := range seeds {
		f.Add(s.content, s.phone, s.max)
	}
	f.Fuzz(func(t *testing.T, content, phone string, max uint8) {
		limit := int(max)%255 + 1 // the range config allows: 1..255
		stored, err := validateNewMessage(CreateMessageRequest{Content: content, PhoneNumber: phone},
			createLimits{MaxContent: limit, MaxSegments: 10})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || (ve.Field != "content" && ve.Field != "phone_number") || ve.Message == "" {
				t.Fatalf("error %#v is not a ValidationError on a known field", err)
			}
		}
		contentOK := content != "" && utf8.ValidString(content) && strings.ContainsFunc(content, message.VisibleBase) &&
			utf8.RuneCountInString(content) <= limit && !strings.ContainsFunc(content, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r <= 0x9f
		})
		_, perr := message.NormalizePhone("phone_number", phone)
		phoneOK := perr == nil
		if (err == nil) != (contentOK && phoneOK) {
			t.Fatalf("ValidateNewMessage(%q, %q, %d) = %v; content ok %v, phone ok %v", content, phone, limit, err, contentOK, phoneOK)
		}
		if err == nil && (strings.ContainsRune(content, 0) || utf8.RuneCountInString(content) > 255 || !e164.MatchString(stored)) {
			t.Fatalf("accepted a message the database cannot store: %q %q", content, stored)
		}
	})
}

// decodeAnswer runs body through the decoder of route and returns the
// answer it would give: status, code and field (for a batch item, the
// item's index and field). A body a decoder accepts gives status 0.
func decodeAnswer(t *testing.T, route, body string) (status int, code, field string, index int) {
	t.Helper()
	var err error
	switch route {
	case "create":
		_, err = decodeNewMessage([]byte(body))
	case "receipt":
		_, err = decodeReceipt([]byte(body))
	case "batch":
		var bad []ItemError
		_, bad, err = decodeBatch([]byte(body))
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
		ae *Error
		ve *ValidationError
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
	t.Fatalf("%s: error %T %v is neither an *Error nor a *ValidationError", body, err, err)
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
	r, err := decodeNewMessage([]byte(`{` + okCreate + `, "validity_period": 60, "priority": 5}`))
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
			var ae *Error
			var err error
			switch c.route {
			case "create":
				_, err = decodeNewMessage([]byte(c.body))
			case "receipt":
				_, err = decodeReceipt([]byte(c.body))
			case "batch":
				_, _, err = decodeBatch([]byte(c.body))
			}
			if !errors.As(err, &ae) || !strings.Contains(ae.Message, fmt.Sprintf("%q", c.field)) {
				t.Errorf("%s: message %v does not name %q", c.body, err, c.field)
			}
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
		r, err := decodeNewMessage(body)
		if err != nil {
			var (
				ae *Error
				ve *ValidationError
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
		r2, err := decodeNewMessage(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q decoded to %+v, encoded as %s, decoded again to %+v (%v)", body, r, again, r2, err)
		}
		n, _, err := buildNewMessage(r, now, createLimits{MaxContent: 255, DefaultValidity: time.Hour})
		if err != nil {
			return
		}
		if n.Content != r.Content || n.PhoneNumber != r.PhoneNumber || r.ID != nil && n.ID != *r.ID {
			t.Fatalf("%q: would store %+v from %+v", body, n, r)
		}
	})
}

func FuzzParseSendAt(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-01-01T09:00:00Z", "2026-01-01T09:00:00.123456789+03:00", "2027-01-02T00:00:00Z", "", "x", "9999-12-31T23:59:59Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := parseSendAt(s, now)
		if err != nil {
			return
		}
		if at.Before(now) || at.After(now.Add(MaxScheduleAhead)) || at.Location() != time.UTC || at.Nanosecond()%1000 != 0 {
			t.Fatalf("%q accepted as %v", s, at)
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"a", "otp:42", "", "a b", strings.Repeat("x", 37), "é", "a\nb", ".", "..", "sent", "sEnT", "batch", "a~b", "-a", "otp-4711"} {
		f.Add(s)
	}
	// The pattern the OpenAPI document states is the oracle, with the
	// route words the document names: ParseID accepts exactly what it
	// matches, apart from those words.
	documented := regexp.MustCompile(IDPattern)
	f.Fuzz(func(t *testing.T, s string) {
		routeWord := slices.ContainsFunc(RouteWords, func(w string) bool { return strings.EqualFold(w, s) })
		if ok := parseID(s) == nil; ok != (documented.MatchString(s) && !routeWord) {
			t.Fatalf("ParseID(%q) ok %v; the documented pattern matches %v, route word %v", s, ok, documented.MatchString(s), routeWord)
		}
		if parseID(s) == nil && (s == "." || s == ".." || len(s) > 36 || url.PathEscape(s) != s) {
			t.Fatalf("ParseID accepted %q", s)
		}
	})
}

func FuzzParseValidity(f *testing.F) {
	for _, n := range []int64{1, 2592000, 0, -1, 2592001, 1 << 40} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		v := int(n)
		d, ok, err := parseValidity(&v)
		if err != nil {
			return
		}
		if !ok || d < time.Second || d > MaxValidity*time.Second || d%time.Second != 0 || d != time.Duration(v)*time.Second {
			t.Fatalf("%d accepted as %v", v, d)
		}
	})
}

func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"a": "plain"}`: true, `{"a": "\ud83d\ude00"}`: true, `{"a": "\\ud800"}`: true, `{"a": "\\\ud83d\ude00"}`: true,
		`{"a": "x", "a": "y"}`: true, `{"a": "\u00e9\ufffd"}`: true,
		`{"a": "\ud800"}`: false, `{"a": "\\\ud800"}`: false, `{"a": "\ude00\ud83d"}`: false, `{"\udfff": 1}`: false,
		"{\"a\": \"\xff\"}": false, "{\"a\": \"\xc0\xaf\"}": false, "{\"a\": \"\xed\xbf\xbf\"}": false,
	} {
		err := checkJSONText([]byte(body))
		var ae *Error
		if ok != (err == nil) || !ok && (!errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_json") {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// FuzzCheckJSONText compares the check with an independent reading of the
// rules on any body encoding/json accepts: it passes exactly when the bytes
// are UTF-8 and every \u escape of a surrogate is a high one directly
// followed by an escaped low one.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `"\\ud800"`, `"\\\ud800"`,
		`["\udc00\ud800"]`, "\"\xff\"", "\"\xed\xa0\x80\"", `{"\ud800\udc00":"\uDBFF\uDFFF"}`, `"\ud800\ud800\udc00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		err := checkJSONText(body)
		want := utf8.Valid(body) && surrogatesPaired(body)
		if (err == nil) != want {
			t.Fatalf("CheckJSONText(%q) = %v, want ok %v", body, err, want)
		}
		if err == nil {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("%q: %v", body, err)
			}
		}
	})
}

// surrogatesPaired scans the \u escapes of syntactically valid JSON.
func surrogatesPaired(b []byte) bool {
	hex := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range b[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			}
		}
		return r, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, isU := hex(i)
		if !isU {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		switch {
		case r >= 0xd800 && r <= 0xdbff:
			lo, ok := hex(i + 6)
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return false
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return false
		default:
			i += 5
		}
	}
	return true
}

// decodeInbound on any body: it never panics, an accepted body gives an
// E.164 sender and the text as sent, and a refused one is a 400 *Error or
// a 422 on from, text or received_at.
func FuzzDecodeInbound(f *testing.F) {
	for _, s := range []string{`{"from": "+1 (201) 555-0123", "text": " Stop "}`, `{"from": "+12015550123", "text": "x", "received_at": "2026-01-02T03:04:05Z"}`,
		`{"from": "0555", "text": "STOP"}`, `{"from": "+12015550123"}`, `{}`, `[]`, `{"from": 1}`, `{"from": "+12015550123", "text": "a", "to": "b"}`} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		from, _, _, err := decodeInbound(body, now)
		if err == nil {
			if !e164.MatchString(from) {
				t.Fatalf("%q: sender %q is not E.164", body, from)
			}
			return
		}
		var (
			ae *Error
			ve *ValidationError
		)
		switch {
		case errors.As(err, &ae):
			if ae.Status != 400 {
				t.Fatalf("%q: %v", body, err)
			}
		case errors.As(err, &ve):
			if ve.Field != "from" && ve.Field != "text" && ve.Field != "received_at" {
				t.Fatalf("%q: %v", body, err)
			}
		default:
			t.Fatalf("%q: %v", body, err)
		}
	})
}
