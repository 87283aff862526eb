package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/app"
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
	// The receipts' cases name a sent message, so that only the hostile
	// part of each body stands between it and a 200.
	e.exec(`INSERT INTO messages (id, content, phone_number) VALUES ('sent-1', 'hi', '+905551111111')`)
	e.markSent(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), "sent-1")
	const batchPath, receiptPath = "/api/v1/messages/batch", "/api/v1/receipts"
	cases := []struct {
		name, body, contentType string
		status                  int
		code, field             string
		// path is /api/v1/messages when empty; index is the bad item of
		// a refused batch (error.items[0]), -1 for none.
		path  string
		index int
	}{
		{"raw invalid byte", "{\"content\": \"a\xffb\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"raw invalid byte in a key", "{\"content\xff\": \"ab\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"truncated sequence", "{\"content\": \"a\xe2\x82b\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"overlong slash", "{\"content\": \"a\xc0\xafb\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"overlong NUL", "{\"content\": \"a\xc0\x80b\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"encoded surrogate", "{\"content\": \"a\xed\xa0\x80b\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"beyond U+10FFFF", "{\"content\": \"a\xf4\x90\x80\x80b\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped lone high surrogate", `{"content": "a\ud800b"` + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped lone low surrogate", `{"content": "\udfff"` + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped high surrogate at the end", `{"content": "a\uD800"` + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped pair reversed", `{"content": "\udc00\ud800"` + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped high surrogate then a letter", `{"content": "\ud800\u0041"` + ok, "", 400, "invalid_json", "", "", -1},
		{"escaped lone surrogate in the phone", `{"content": "hi", "phone_number": "+90555111111\ud800"}`, "", 400, "invalid_json", "", "", -1},
		{"latin-1 declared", "{\"content\": \"caf\xe9\"" + ok, "application/json; charset=iso-8859-1", 415, "unsupported_media_type", "", "", -1},
		{"utf-16 declared", `{"content": "hi"` + ok, "application/json; charset=utf-16", 415, "unsupported_media_type", "", "", -1},
		{"multipart form", form, formType, 415, "unsupported_media_type", "", "", -1},
		{"multipart without boundary", `{"content": "hi"` + ok, "multipart/form-data", 415, "unsupported_media_type", "", "", -1},
		{"urlencoded form", "content=hi&phone_number=%2B905551111111", "application/x-www-form-urlencoded", 415, "unsupported_media_type", "", "", -1},
		{"json-ish type", `{"content": "hi"` + ok, "application/json-patch+json", 415, "unsupported_media_type", "", "", -1},
		{"bad media type", `{"content": "hi"` + ok, "application/json; charset", 415, "unsupported_media_type", "", "", -1},
		{"C1 escaped", `{"content": "a\u0085b"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"C1 raw", "{\"content\": \"a\xc2\x9bb\"" + ok, "", 422, "validation_failed", "content", "", -1},
		{"C1 first", `{"content": "\u0080hi"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"zero-width space only", `{"content": "\u200b"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"BOM only", `{"content": "\ufeff"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"bidi controls only", `{"content": "\u202e\u2066\u2069\u200f"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"invisible and spaces", `{"content": " \u200b\n\u2060\u00a0\ufe0f "` + ok, "", 422, "validation_failed", "content", "", -1},
		{"braille blanks only", `{"content": "\u2800\u2800\u2800"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"combining marks only", `{"content": "\u0301\u0308\u20dd"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"hangul fillers and spaces", `{"content": "\u3164 \uffa0\u115f"` + ok, "", 422, "validation_failed", "content", "", -1},
		{"batch: braille blank item", `{"messages": [{"content": "hi"` + ok + `, {"content": "\u2800"` + ok + `]}`, "", 422, "validation_failed", "content", batchPath, 1},
		{"create: escaped lone surrogate in the id", `{"id": "otp\udc00", "content": "hi"` + ok, "", 400, "invalid_json", "", "", -1},
		{"create: raw invalid byte in send_at", "{\"send_at\": \"2030-01-01T00:00:00Z\xff\", \"content\": \"hi\"" + ok, "", 400, "invalid_json", "", "", -1},
		{"create: C1 control in the id", `{"id": "otp\u0085", "content": "hi"` + ok, "", 422, "validation_failed", "id", "", -1},
		{"batch: raw invalid byte in an item", "{\"messages\": [{\"content\": \"hi\"" + ok + ", {\"content\": \"a\xffb\"" + ok + "]}", "", 400, "invalid_json", "", batchPath, -1},
		{"batch: overlong sequence in an item", "{\"messages\": [{\"content\": \"a\xc0\xafb\"" + ok + "]}", "", 400, "invalid_json", "", batchPath, -1},
		{"batch: escaped lone surrogate in an item's phone", `{"messages": [{"content": "hi", "phone_number": "+90555111111\ud800"}]}`, "", 400, "invalid_json", "", batchPath, -1},
		{"batch: escaped lone surrogate in an item's id", `{"messages": [{"id": "\ud800", "content": "hi"` + ok + `]}`, "", 400, "invalid_json", "", batchPath, -1},
		{"batch: latin-1 declared", "{\"messages\": [{\"content\": \"caf\xe9\"" + ok + "]}", "application/json; charset=iso-8859-1", 415, "unsupported_media_type", "", batchPath, -1},
		{"batch: multipart form", form, formType, 415, "unsupported_media_type", "", batchPath, -1},
		{"batch: C1 control in the second item", `{"messages": [{"content": "hi"` + ok + `, {"content": "a\u0085b"` + ok + `]}`, "", 422, "validation_failed", "content", batchPath, 1},
		{"batch: raw C1 control in an item", "{\"messages\": [{\"content\": \"a\xc2\x9bb\"" + ok + "]}", "", 422, "validation_failed", "content", batchPath, 0},
		{"batch: zero-width only item", `{"messages": [{"content": "hi"` + ok + `, {"content": "\u200b\ufeff"` + ok + `]}`, "", 422, "validation_failed", "content", batchPath, 1},
		{"batch: bidi controls only item", `{"messages": [{"content": "\u202e\u2066\u2069"` + ok + `]}`, "", 422, "validation_failed", "content", batchPath, 0},
		{"receipt: raw invalid byte in message_id", "{\"message_id\": \"remote-sent-1\xff\", \"status\": \"delivered\"}", "", 400, "invalid_json", "", receiptPath, -1},
		{"receipt: escaped lone surrogate in message_id", `{"message_id": "remote-sent-1\ud800", "status": "delivered"}`, "", 400, "invalid_json", "", receiptPath, -1},
		{"receipt: escaped lone surrogate in error_code", `{"message_id": "remote-sent-1", "status": "undelivered", "error_code": "\udfff"}`, "", 400, "invalid_json", "", receiptPath, -1},
		{"receipt: encoded surrogate in error_code", "{\"message_id\": \"remote-sent-1\", \"status\": \"undelivered\", \"error_code\": \"\xed\xa0\x80\"}", "", 400, "invalid_json", "", receiptPath, -1},
		{"receipt: C1 control in error_code", `{"message_id": "remote-sent-1", "status": "undelivered", "error_code": "3\u009b0"}`, "", 422, "validation_failed", "error_code", receiptPath, -1},
		{"receipt: latin-1 declared", `{"message_id": "remote-sent-1", "status": "delivered"}`, "application/json; charset=iso-8859-1", 415, "unsupported_media_type", "", receiptPath, -1},
		{"receipt: multipart form", form, formType, 415, "unsupported_media_type", "", receiptPath, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			path := c.path
			if path == "" {
				path = "/api/v1/messages"
			}
			ee := &env{t: t, srv: e.srv}
			status, h, b := ee.do(req{method: http.MethodPost, path: path, body: c.body, headers: []string{"Content-Type: " + ct}})
			got := wantError(t, status, h, b, c.status, c.code)
			if c.index >= 0 {
				// A refused batch names the bad item in error.items.
				if got.Field != "" || len(got.Items) != 1 || got.Items[0].Index != c.index || got.Items[0].Field != c.field {
					t.Fatalf("error.items %+v (field %q), want item %d field %q (%s)", got.Items, got.Field, c.index, c.field, b)
				}
			} else if got.Field != c.field || len(got.Items) != 0 {
				t.Fatalf("field %q, items %+v, want field %q (%s)", got.Field, got.Items, c.field, b)
			}
			if !utf8.Valid(b) {
				t.Fatalf("answer is not UTF-8: %q", b)
			}
		})
	}
	if n := e.count("id <> 'sent-1'"); n != 0 {
		t.Fatalf("%d messages stored by rejected requests", n)
	}
	if n := e.count("delivery_status IS NOT NULL OR delivered_at IS NOT NULL OR delivery_error IS NOT NULL"); n != 0 {
		t.Fatalf("a rejected receipt was stored on %d messages", n)
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
	srv := api.New(cfg, &app.Deps{Pool: pool, Redis: rdb, Store: st, Log: log})
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	e := &env{t: t, srv: srv, pool: pool, st: st, rdb: rdb, cfg: cfg}
	e.exec(`INSERT INTO messages (id, content, phone_number) VALUES ('pending-1', 'hi', '+905551111111')`)

	requests := []req{
		{method: http.MethodGet, path: "/healthz"},
		{method: http.MethodGet, path: "/api/v1/messages/unknown", headers: []string{bearer(testKey)}},
		{method: http.MethodPost, path: "/api/v1/messages/pending-1/retry", headers: []string{bearer(testKey)}},
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "\u200b", "phone_number": "+905551111111"}`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "hi", "phone_number": "+905551111111"}`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{"content": "hi"`, bearer(testKey)),
		jsonReq(http.MethodPost, "/api/v1/messages", `{}`),
		{method: http.MethodPost, path: "/api/v1/messages", body: "content=hi", headers: []string{"Content-Type: text/plain", bearer(testKey)}},
		{method: http.MethodGet, path: "/api/v1/messages/sent?limit=x", headers: []string{bearer(testKey)}},
		{method: http.MethodGet, path: "/no/such/route"},
		{method: http.MethodDelete, path: "/api/v1/scheduler", headers: []string{bearer(testKey)}},
	}
	// The rate limit (12 a minute; /healthz is exempt) answers the rest
	// with 429.
	for len(requests) < 15 {
		requests = append(requests, req{method: http.MethodGet, path: "/api/v1/scheduler", headers: []string{bearer(testKey)}})
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
