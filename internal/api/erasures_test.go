package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/cache"
)

// An erasure cancels the pending messages to the number, erases content
// and number from the finished ones, their errors and attempts, deletes
// their cached records, and leaves other numbers alone; the messages still
// answer and still count; a second call changes nothing.
func TestErasure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const phone, other = "+905551234567", "+905557654321"
	create := func(content, to string) string {
		t.Helper()
		status, _, b := e.postJSON("/api/v1/messages", `{"content": "`+content+`", "phone_number": "`+to+`"}`)
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, b)
		}
		return decode[api.MessageDetail](t, b).ID
	}
	pending, sent, failed := create("secret pending", phone), create("secret sent", phone), create("secret failed", phone)
	kept := create("other person", other)
	e.markSent(time.Now().Add(-time.Minute), sent)
	e.exec(`UPDATE messages SET status = 'failed', last_error = 'HTTP 400: bad number +905551234567 for "secret failed"' WHERE id = $1`, failed)
	e.exec(`INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, status_code, outcome, error)
VALUES ($1, 1, now(), 5, 400, 'failed', 'HTTP 400: {"to": "905551234567", "text": "secret failed"}'),
       ($2, 1, now(), 5, 400, 'failed', 'HTTP 400: other person +905557654321')`, failed, kept)
	c := cache.New(e.rdb, time.Hour)
	if err := c.PutSent(ctx, cache.Sent{ID: sent, MessageID: "remote-" + sent, SentAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, _, before := e.get("/api/v1/stats/counts")

	status, _, b := e.postJSON("/api/v1/erasures", `{"phone_number": "`+phone+`"}`)
	if status != 200 || string(b) != `{"canceled":1,"erased":3}` {
		t.Fatalf("erasure: %d %s", status, b)
	}
	for _, id := range []string{pending, sent, failed} {
		status, _, b := e.get("/api/v1/messages/" + id)
		m := decode[api.MessageDetail](t, b)
		if status != 200 || m.Content != "" || m.PhoneNumber != "erased" {
			t.Fatalf("erased message %s: %d %s", id, status, b)
		}
		_, _, a := e.get("/api/v1/messages/" + id + "/attempts")
		for _, s := range []string{string(b), string(a)} {
			if strings.Contains(s, "secret") || strings.Contains(s, "5551234567") {
				t.Fatalf("erased data in an answer: %s", s)
			}
		}
	}
	if st := decode[api.MessageDetail](t, func() []byte { _, _, b := e.get("/api/v1/messages/" + pending); return b }()).Status; st != "canceled" {
		t.Fatalf("the pending message is %s, want canceled", st)
	}
	if n := e.count(`content LIKE 'secret%' OR phone_number = $1`, phone); n != 0 {
		t.Fatalf("%d rows still hold the content or number", n)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM message_attempts WHERE error LIKE '%secret%' OR error LIKE '%5551234567%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d attempts still quote the content or number (%v)", n, err)
	}
	if _, err := c.GetSent(ctx, sent); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("cached record of an erased message: %v", err)
	}
	// The other recipient's message and attempt are untouched.
	_, _, b = e.get("/api/v1/messages/" + kept)
	if m := decode[api.MessageDetail](t, b); m.Content != "other person" || m.PhoneNumber != other {
		t.Fatalf("another number's message changed: %s", b)
	}
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM message_attempts WHERE message_id = $1 AND error LIKE '%+905557654321%'`, kept).Scan(&n); err != nil || n != 1 {
		t.Fatalf("another number's attempt changed: %d %v", n, err)
	}
	// Statistics count the erased messages as before (the pending one is
	// canceled now).
	_, _, after := e.get("/api/v1/stats/counts")
	if strings.Count(string(before), ",") != strings.Count(string(after), ",") || !strings.Contains(string(after), `"canceled":1`) {
		t.Fatalf("stats before %s, after %s", before, after)
	}

	// A second call is harmless.
	status, _, b = e.postJSON("/api/v1/erasures", `{"phone_number": "`+phone+`"}`)
	if status != 200 || string(b) != `{"canceled":0,"erased":0}` {
		t.Fatalf("second erasure: %d %s", status, b)
	}
	// The canceled message is never claimed.
	if _, err := e.st.ReserveTick(ctx, 10, 0, 3); err != nil {
		t.Fatal(err)
	}
	cs, err := e.st.Claim(ctx, 10, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == pending {
			t.Fatal("the canceled message was claimed")
		}
	}
}

// Bad erasure bodies get a clear 4xx and change nothing.
func TestErasureRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := create1(t, e)
	for _, tt := range []struct {
		body   string
		status int
		code   string
	}{
		{``, 400, "invalid_json"},
		{`{"phone_number": "+905551234567", "phone_number": "+905551234567"}`, 400, "invalid_json"},
		{`{"phone": "+905551234567"}`, 400, "unknown_field"},
		{`{"Phone_Number": "+905551234567"}`, 400, "unknown_field"},
		{`{"phone_number": 905551234567}`, 422, "validation_failed"},
		{`{"phone_number": ""}`, 422, "validation_failed"},
		{`{"phone_number": "+9055512345678901234567"}`, 422, "validation_failed"},
		{`{"phone_number": "+90555\u0000"}`, 422, "validation_failed"},
		{`{"phone_number": "erased"}`, 422, "validation_failed"},
		{`{}`, 422, "validation_failed"},
	} {
		status, h, b := e.postJSON("/api/v1/erasures", tt.body)
		wantError(t, status, h, b, tt.status, tt.code)
	}
	status, _, b := e.do(req{method: http.MethodPost, path: "/api/v1/erasures", body: `{"phone_number": "+905551111111"}`, headers: []string{"Content-Type: text/plain"}})
	if status != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d %s", status, b)
	}
	if n := e.count(`id = $1 AND status = 'pending' AND phone_number <> 'erased'`, id); n != 1 {
		t.Fatal("a refused erasure changed a message")
	}
}

func create1(t *testing.T, e *env) string {
	t.Helper()
	status, _, b := e.postJSON("/api/v1/messages", `{"content": "hello", "phone_number": "+905551111111"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, b)
	}
	return decode[api.MessageDetail](t, b).ID
}
