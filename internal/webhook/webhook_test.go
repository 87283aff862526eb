package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, url string, mod ...func(*webhook.Options)) *webhook.Client {
	t.Helper()
	o := webhook.Options{URL: url, Timeout: 2 * time.Second, AuthHeader: "x-ins-auth-key", MaxConns: 4}
	for _, f := range mod {
		f(&o)
	}
	c := webhook.New(o)
	t.Cleanup(c.Close)
	return c
}

func TestSendsTheContract(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"message":"Accepted","messageId":"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849"}`))
	}))
	defer srv.Close()

	c := newClient(t, srv.URL, func(o *webhook.Options) { o.AuthKey = "k3y" })
	resp, err := c.Send(context.Background(), webhook.Request{ID: "msg-1", To: "+905551111111", Content: "hi \"there\""})
	if err != nil {
		t.Fatal(err)
	}
	if resp.MessageID != "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849" || resp.Status != 202 {
		t.Fatalf("response %+v", resp)
	}
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" ||
		got.Header.Get("Idempotency-Key") != "msg-1" || got.Header.Get("x-ins-auth-key") != "k3y" {
		t.Fatalf("request %s %v", got.Method, got.Header)
	}
	var b map[string]string
	if err := json.Unmarshal(body, &b); err != nil || len(b) != 2 || b["to"] != "+905551111111" || b["content"] != "hi \"there\"" {
		t.Fatalf("body %s (%v)", body, err)
	}
}

func TestNoAuthHeaderWithoutKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["X-Ins-Auth-Key"]; ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	if _, err := newClient(t, srv.URL).Send(context.Background(), webhook.Request{ID: "a"}); err != nil {
		t.Fatal(err)
	}
}

func TestClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		handler    http.HandlerFunc
		ok         bool
		retryable  bool
		retryAfter time.Duration
		kind       string
	}{
		{"200 without body", func(w http.ResponseWriter, _ *http.Request) {}, true, false, 0, ""},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, true, false, 0, ""},
		{"202 garbage body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202); _, _ = w.Write([]byte("<html>")) }, true, false, 0, ""},
		{"500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, false, true, 0, "http_5xx"},
		{"503 with retry-after", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}, false, true, 7 * time.Second, "http_5xx"},
		{"429 with retry-after", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
		}, false, true, 3 * time.Second, "http_429"},
		{"408", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(408) }, false, true, 0, "http_408"},
		{"400", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }, false, false, 0, "http_4xx"},
		{"404", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }, false, false, 0, "http_4xx"},
		{"410", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) }, false, false, 0, "http_410"},
		{"302 elsewhere", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://198.51.100.1/steal", http.StatusFound)
		}, false, false, 0, "http_3xx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := newClient(t, srv.URL).Send(context.Background(), webhook.Request{ID: "x", To: "+905551111111", Content: "c"})
			if tc.ok {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var werr *webhook.Error
			if !errors.As(err, &werr) {
				t.Fatalf("want *webhook.Error, got %v", err)
			}
			if werr.Retryable != tc.retryable || werr.RetryAfter != tc.retryAfter || werr.Kind() != tc.kind {
				t.Fatalf("got retryable=%v after=%v kind=%s, want %v %v %s", werr.Retryable, werr.RetryAfter, werr.Kind(), tc.retryable, tc.retryAfter, tc.kind)
			}
		})
	}
}

func TestTimeoutCutsAHang(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL, func(o *webhook.Options) { o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	_, err := c.Send(context.Background(), webhook.Request{ID: "x"})
	var werr *webhook.Error
	if !errors.As(err, &werr) || !werr.Retryable || werr.Kind() != "timeout" {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("timeout took %s", took)
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = newClient(t, "http://"+addr+"/").Send(context.Background(), webhook.Request{ID: "x"})
	var werr *webhook.Error
	if !errors.As(err, &werr) || !werr.Retryable || werr.Kind() != "connection" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(werr.Error(), addr+"/") {
		t.Fatalf("error repeats the URL: %v", werr)
	}
}

func TestHugeAnswerIsReadOnlyInPart(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 10 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	resp, err := newClient(t, srv.URL).Send(context.Background(), webhook.Request{ID: "x"})
	if err != nil || resp.MessageID != "" {
		t.Fatalf("got %+v %v", resp, err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 12 ", 12 * time.Second},
		{"-3", 0},
		{"abc", 0},
		{"99999999999999999999", 24 * time.Hour},
		{"Fri, 27 Nov 2026 10:00:30 GMT", 30 * time.Second},
		{"Fri, 27 Nov 2026 09:00:00 GMT", 0},
		{"Sun, 27 Nov 2050 10:00:00 GMT", 24 * time.Hour},
	}
	for _, tc := range cases {
		if got := webhook.ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
		ok       bool
	}{
		{`{"message":"Accepted","messageId":"abc"}`, "abc", true},
		{`{"messageId":123}`, "123", true},
		{`{"message":"Accepted"}`, "", false},
		{`{"messageId":null}`, "", false},
		{`{"messageId":{"a":1}}`, "", false},
		{`not json`, "", false},
		{``, "", false},
		{`{"messageId":"` + strings.Repeat("a", 255) + `"}`, strings.Repeat("a", 255), true},
		// An id that cannot be stored as sent is no id: too long, a NUL, a
		// control character, invalid UTF-8, a lone surrogate, empty.
		{`{"messageId":"` + strings.Repeat("a", 256) + `"}`, "", false},
		{`{"messageId":"` + strings.Repeat("é", 200) + `"}`, "", false},
		{`{"messageId":"a\u0000b"}`, "", false},
		{`{"messageId":"a\tb"}`, "", false},
		{"{\"messageId\":\"caf\xe9\"}", "", false},
		{`{"messageId":"\ud800"}`, "", false},
		{`{"messageId":""}`, "", false},
		{`{"messageId":"müşteri-42"}`, "müşteri-42", true},
	}
	for _, tc := range cases {
		got, err := webhook.ParseResponse([]byte(tc.in))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseResponse(%.40q) = %q, %v", tc.in, got, err)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"message":"Accepted","messageId":"abc"}`, `{"messageId":1e400}`, `[]`, `{"messageId":"\ud800"}`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := webhook.ParseResponse(b)
		if err != nil && id != "" {
			t.Fatalf("id %q with error %v", id, err)
		}
		if len(id) > webhook.MaxMessageIDBytes || !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl) {
			t.Fatalf("id %q cannot be stored", id)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"5", "Fri, 27 Nov 2026 10:00:30 GMT", "-1", "18446744073709551616", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := webhook.ParseRetryAfter(s, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %s", s, d)
		}
	})
}
