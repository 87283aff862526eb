package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// multipartBody is a well-formed multipart/form-data body with the two
// fields, as a browser form or curl -F would send it.
func multipartBody(t *testing.T) (body, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range map[string]string{"content": "hi", "phone_number": "+905551111111"} {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

// Hostile bodies found by trying: each gets a clear 4xx and nothing is
// stored, never a 201 with the text altered to U+FFFD.
func TestHostileBodiesAreRejectedAndStoreNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const ok = `, "phone_number": "+905551111111"}`
	form, formType := multipartBody(t)
	cases := []struct {
		name, body, contentType string
		status                  int
		code, field             string
	}{
		{"raw invalid byte", "{\"content\": \"a\xffb\"" + ok, "", 400, "invalid_json", ""},
		{"raw invalid byte in a key", "{\"content\xff\": \"ab\"" + ok, "", 400, "unknown_field", "content\ufffd"},
		{"truncated sequence", "{\"content\": \"a\xe2\x82b\"" + ok, "", 400, "invalid_json", ""},
		{"overlong slash", "{\"content\": \"a\xc0\xafb\"" + ok, "", 400, "invalid_json", ""},
		{"overlong NUL", "{\"content\": \"a\xc0\x80b\"" + ok, "", 400, "invalid_json", ""},
		{"encoded surrogate", "{\"content\": \"a\xed\xa0\x80b\"" + ok, "", 400, "invalid_json", ""},
		{"beyond U+10FFFF", "{\"content\": \"a\xf4\x90\x80\x80b\"" + ok, "", 400, "invalid_json", ""},
		{"escaped lone high surrogate", `{"content": "a\ud800b"` + ok, "", 400, "invalid_json", ""},
		{"escaped lone low surrogate", `{"content": "\udfff"` + ok, "", 400, "invalid_json", ""},
		{"escaped high surrogate at the end", `{"content": "a\uD800"` + ok, "", 400, "invalid_json", ""},
		{"escaped pair reversed", `{"content": "\udc00\ud800"` + ok, "", 400, "invalid_json", ""},
		{"escaped high surrogate then a letter", `{"content": "\ud800\u0041"` + ok, "", 400, "invalid_json", ""},
		{"escaped lone surrogate in the phone", `{"content": "hi", "phone_number": "+90555111111\ud800"}`, "", 400, "invalid_json", ""},
		{"latin-1 declared", "{\"content\": \"caf\xe9\"" + ok, "application/json; charset=iso-8859-1", 415, "unsupported_media_type", ""},
		{"utf-16 declared", `{"content": "hi"` + ok, "application/json; charset=utf-16", 415, "unsupported_media_type", ""},
		{"multipart form", form, formType, 415, "unsupported_media_type", ""},
		{"multipart without boundary", `{"content": "hi"` + ok, "multipart/form-data", 415, "unsupported_media_type", ""},
		{"urlencoded form", "content=hi&phone_number=%2B905551111111", "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
		{"json-ish type", `{"content": "hi"` + ok, "application/json-patch+json", 415, "unsupported_media_type", ""},
		{"bad media type", `{"content": "hi"` + ok, "application/json; charset", 415, "unsupported_media_type", ""},
		{"C1 escaped", `{"content": "a\u0085b"` + ok, "", 422, "validation_failed", "content"},
		{"C1 raw", "{\"content\": \"a\xc2\x9bb\"" + ok, "", 422, "validation_failed", "content"},
		{"C1 first", `{"content": "\u0080hi"` + ok, "", 422, "validation_failed", "content"},
		{"zero-width space only", `{"content": "\u200b"` + ok, "", 422, "validation_failed", "content"},
		{"BOM only", `{"content": "\ufeff"` + ok, "", 422, "validation_failed", "content"},
		{"bidi controls only", `{"content": "\u202e\u2066\u2069\u200f"` + ok, "", 422, "validation_failed", "content"},
		{"invisible and spaces", `{"content": " \u200b\n\u2060\u00a0\ufe0f "` + ok, "", 422, "validation_failed", "content"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			ee := &env{t: t, srv: e.srv}
			status, h, b := ee.do(req{method: http.MethodPost, path: "/api/v1/messages", body: c.body, headers: []string{"Content-Type: " + ct}})
			got := wantError(t, status, h, b, c.status, c.code)
			if got.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", got.Field, c.field, b)
			}
			if !utf8.Valid(b) {
				t.Fatalf("answer is not UTF-8: %q", b)
			}
		})
	}
	if n := e.count("TRUE"); n != 0 {
		t.Fatalf("%d messages stored by rejected requests", n)
	}
}

// What is valid must still pass, byte for byte: an escaped surrogate pair,
// an explicit UTF-8 charset, invisible characters beside visible ones, and
// a U+FFFD the client really sent.
func TestUnusualButValidBodiesAreStoredExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, body, contentType, want string
	}{
		{"escaped pair", `{"content": "\ud83d\ude00 ok", "phone_number": "+905551111111"}`, "application/json", "😀 ok"},
		{"charset utf-8", `{"content": "Güle", "phone_number": "+905551111111"}`, "application/json; charset=UTF-8", "Güle"},
		{"joiner inside an emoji", `{"content": "👩\u200d💻", "phone_number": "+905551111111"}`, "application/json", "👩\u200d💻"},
		{"bidi mark beside text", `{"content": "\u200fשלום", "phone_number": "+905551111111"}`, "application/json", "\u200fשלום"},
		{"replacement character sent on purpose", `{"content": "\ufffd", "phone_number": "+905551111111"}`, "application/json", "\ufffd"},
	} {
		status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/messages", body: c.body, headers: []string{"Content-Type: " + c.contentType}})
		if status != http.StatusCreated {
			t.Fatalf("%s: %d %s", c.name, status, b)
		}
		m := decode[api.MessageCreated](t, b)
		if m.Content != c.want || e.count("id = $1 AND content = $2", m.ID, c.want) != 1 {
			t.Fatalf("%s: stored %q, want %q", c.name, m.Content, c.want)
		}
	}
}

func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"a": "plain"}`: true, `{"a": "\ud83d\ude00"}`: true, `{"a": "\\ud800"}`: true, `{"a": "\\\ud83d\ude00"}`: true,
		`{"a": "x", "a": "y"}`: true, `{"a": "\u00e9\ufffd"}`: true,
		`{"a": "\ud800"}`: false, `{"a": "\\\ud800"}`: false, `{"a": "\ude00\ud83d"}`: false, `{"\udfff": 1}`: false,
		"{\"a\": \"\xff\"}": false, "{\"a\": \"\xc0\xaf\"}": false, "{\"a\": \"\xed\xbf\xbf\"}": false,
	} {
		err := api.CheckJSONText([]byte(body))
		var ae *api.Error
		if ok != (err == nil) || !ok && (!errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_json") {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// lockedBuffer collects log output written from fiber's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// The access log records the status each answer really had, including the
// ones the error handler writes (404, 409, 422, 401, 415, 429) and a panic's
// 500.
func TestAccessLogRecordsTheStatusSent(t *testing.T) {
	t.Parallel()
	uri, pool, st := testenv.MigratedStore(t)
	rdb := testenv.NewRedis(t)
	cfg := testenv.Config(t, uri, testenv.Queue(t), "API_KEY="+testKey, "RATE_LIMIT=12")
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := api.New(cfg, &api.Deps{Pool: pool, Redis: rdb, Store: st, Log: log})
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	e := &env{t: t, srv: srv, pool: pool, st: st, rdb: rdb, cfg: cfg}
	e.exec(`INSERT INTO messages (id, content, phone_number) VALUES ('pending-1', 'hi', '+905551111111')`)

	requests := []req{
		{method: http.MethodGet, path: "/healthz"},
		{method: http.MethodGet, path: "/api/v1/messages/unknown"},
		{method: http.MethodPost, path: "/api/v1/messages/pending-1/retry", headers: []string{bearer(testKey)}},
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "\u200b", "phone_number": "+905551111111"}`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "hi", "phone_number": "+905551111111"}`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "hi"`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{}`),
		{method: http.MethodPost, path: "/api/v1/messages", body: "content=hi", headers: []string{"Content-Type: text/plain", bearer(testKey)}},
		{method: http.MethodGet, path: "/api/v1/messages/sent?limit=x"},
		{method: http.MethodGet, path: "/no/such/route"},
		{method: http.MethodDelete, path: "/api/v1/scheduler"},
	}
	// The rate limit (12 a minute; /healthz is exempt) answers the rest
	// with 429.
	for len(requests) < 15 {
		requests = append(requests, req{method: http.MethodGet, path: "/api/v1/scheduler"})
	}
	var sent []int
	for _, r := range requests {
		status, _, _ := e.do(r)
		sent = append(sent, status)
	}
	type line struct {
		Msg    string `json:"msg"`
		Method string `json:"method"`
		Path   string `json:"path"`
		Status int    `json:"status"`
	}
	var logged []int
	for _, l := range logs.lines() {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if v.Msg == "request" {
			logged = append(logged, v.Status)
		}
	}
	want := []int{200, 404, 409, 422, 201, 400, 401, 415, 400, 404, 405, 200, 200, 429, 429}
	if !equalInts(sent, want) {
		t.Fatalf("answers %v, want %v", sent, want)
	}
	if !equalInts(logged, sent) {
		t.Fatalf("access log statuses %v, answers %v", logged, sent)
	}
	if strings.Contains(strings.Join(logs.lines(), "\n"), testKey) {
		t.Fatal("the access log shows the API key")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
		err := api.CheckJSONText(body)
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
