package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/messaging-server/messaging-server/internal/api"
)

// Inbound STOP keywords opt a number out and START opts it back in; HELP
// changes nothing. A create to an opted-out number answers 201 suppressed;
// in a batch only that item is suppressed. The opt-out endpoints add,
// list and remove.
func TestOptOutsAndSuppressedCreates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	inbound := func(body string) api.InboundResult {
		t.Helper()
		status, _, b := e.postJSON("/api/v1/inbound", body)
		if status != 200 {
			t.Fatalf("inbound %s: %d %s", body, status, b)
		}
		return decode[api.InboundResult](t, b)
	}
	if r := inbound(`{"from": "+1 (201) 555-0123", "text": " Stop "}`); r.Action != "opted_out" || r.PhoneNumber != "+12015550123" {
		t.Fatalf("STOP: %+v", r)
	}
	if r := inbound(`{"from": "+12015550123", "text": "HELP"}`); r.Action != "none" {
		t.Fatalf("HELP: %+v", r)
	}
	if n := e.count("TRUE"); n != 0 {
		t.Fatalf("%d messages", n)
	}

	status, _, b := e.postJSON("/api/v1/messages", `{"id": "to-stopped", "content": "hi", "phone_number": "+1 201 555 0123"}`)
	m := decode[api.MessageCreated](t, b)
	if status != 201 || m.Status != "suppressed" || m.PhoneNumber != "+12015550123" {
		t.Fatalf("create to an opted-out number: %d %s", status, b)
	}
	// A replay with the number formatted otherwise is the same message.
	status, _, b = e.postJSON("/api/v1/messages", `{"id": "to-stopped", "content": "hi", "phone_number": "+1-201-555-0123"}`)
	if status != 200 || decode[api.MessageCreated](t, b).Status != "suppressed" {
		t.Fatalf("replay: %d %s", status, b)
	}
	status, _, b = e.postJSON("/api/v1/messages/batch", `{"messages": [
		{"content": "a", "phone_number": "+12015550123"}, {"content": "b", "phone_number": "+447400123456"}]}`)
	batch := decode[api.BatchCreated](t, b)
	if status != 201 || len(batch.Data) != 2 || batch.Data[0].Status != "suppressed" || batch.Data[1].Status != "pending" {
		t.Fatalf("batch: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/messages?status=suppressed")
	if status != 200 || decode[api.MessagePage](t, b).Data == nil || len(decode[api.MessagePage](t, b).Data) != 2 {
		t.Fatalf("list suppressed: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/stats/counts")
	if status != 200 || decode[api.StatusCounts](t, b).Suppressed != 2 {
		t.Fatalf("counts: %d %s", status, b)
	}

	// By hand: PUT is idempotent and keeps the inbound source.
	put := func(path string) (int, []byte) {
		status, _, b := e.do(req{method: http.MethodPut, path: path})
		return status, b
	}
	status, b = put("/api/v1/opt-outs/%2B12015550123")
	if o := decode[api.OptOutEntry](t, b); status != 200 || o.Source != "inbound" || o.PhoneNumber != "+12015550123" {
		t.Fatalf("PUT existing: %d %s", status, b)
	}
	status, b = put("/api/v1/opt-outs/%2B44%207400%20123456")
	if o := decode[api.OptOutEntry](t, b); status != 200 || o.Source != "api" || o.PhoneNumber != "+447400123456" {
		t.Fatalf("PUT new: %d %s", status, b)
	}
	if status, b = put("/api/v1/opt-outs/0555"); status != 422 || !strings.Contains(string(b), `"field":"phone_number"`) {
		t.Fatalf("PUT not a number: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/opt-outs?limit=1")
	page := decode[api.OptOutPage](t, b)
	if status != 200 || len(page.Data) != 1 || page.Data[0].PhoneNumber != "+447400123456" || page.NextCursor == nil {
		t.Fatalf("first page: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/opt-outs?limit=1&cursor=" + *page.NextCursor)
	page = decode[api.OptOutPage](t, b)
	if status != 200 || len(page.Data) != 1 || page.Data[0].PhoneNumber != "+12015550123" || page.NextCursor != nil {
		t.Fatalf("second page: %d %s", status, b)
	}
	del := func(path string) int {
		status, _, _ := e.do(req{method: http.MethodDelete, path: path})
		return status
	}
	if s := del("/api/v1/opt-outs/%2B447400123456"); s != 204 {
		t.Fatalf("DELETE: %d", s)
	}
	if s := del("/api/v1/opt-outs/%2B447400123456"); s != 404 {
		t.Fatalf("DELETE again: %d", s)
	}

	// START opts back in: the next create is pending.
	if r := inbound(`{"from": "+12015550123", "text": "start"}`); r.Action != "opted_in" {
		t.Fatalf("START: %+v", r)
	}
	status, _, b = e.postJSON("/api/v1/messages", `{"content": "hi again", "phone_number": "+12015550123"}`)
	if status != 201 || decode[api.MessageCreated](t, b).Status != "pending" {
		t.Fatalf("create after START: %d %s", status, b)
	}
}

// ALLOWED_COUNTRIES refuses a create to another country with 422 on
// phone_number and stores nothing.
func TestAllowedCountriesAtCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "ALLOWED_COUNTRIES=US,GB")
	status, _, b := e.postJSON("/api/v1/messages", `{"content": "hi", "phone_number": "+90 501 234 56 78"}`)
	if status != 422 || !strings.Contains(string(b), `"field":"phone_number"`) || !strings.Contains(string(b), "TR") {
		t.Fatalf("+90: %d %s", status, b)
	}
	for _, phone := range []string{"+1 (201) 555-0123", "+44 7400 123456", "+1 555 010 0001"} {
		if status, _, b := e.postJSON("/api/v1/messages", `{"content": "hi", "phone_number": "`+phone+`"}`); status != 201 {
			t.Fatalf("%s: %d %s", phone, status, b)
		}
	}
	if n := e.count("phone_number LIKE '+90%'"); n != 0 {
		t.Fatalf("%d +90 rows stored", n)
	}
}
