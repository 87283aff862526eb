package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/messaging-server/messaging-server/internal/api"
)

// A create takes a status_callback on an allowed host and shows it; one
// that is not absolute http(s) or names another host gets 422 and stores
// nothing, alone or in a batch.
func TestStatusCallbackOnCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "STATUS_CALLBACK_URL=https://hooks.example.com/all", "STATUS_CALLBACK_ALLOWED_HOSTS=hooks.example.com,127.0.0.1")
	status, _, b := e.postJSON("/api/v1/messages", `{"id": "cb-1", "content": "m", `+okPhone+`, "status_callback": "http://127.0.0.1:9/mine"}`)
	if status != http.StatusCreated || *decode[api.MessageCreated](t, b).StatusCallback != "http://127.0.0.1:9/mine" {
		t.Fatalf("create: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/messages/cb-1")
	if d := decode[api.MessageDetail](t, b); status != 200 || d.StatusCallback == nil || *d.StatusCallback != "http://127.0.0.1:9/mine" {
		t.Fatalf("get: %d %s", status, b)
	}
	// Without one, the answer says null.
	status, _, b = e.postJSON("/api/v1/messages", `{"id": "cb-2", "content": "m", `+okPhone+`}`)
	if status != http.StatusCreated || decode[api.MessageCreated](t, b).StatusCallback != nil {
		t.Fatalf("create without: %d %s", status, b)
	}
	// The same id with another status_callback is another body.
	status, h, b := e.postJSON("/api/v1/messages", `{"id": "cb-1", "content": "m", `+okPhone+`, "status_callback": "https://hooks.example.com/x"}`)
	wantError(t, status, h, b, http.StatusConflict, "duplicate_id")
	for _, bad := range []string{`"https://evil.example.com/x"`, `"ftp://hooks.example.com/"`, `"/relative"`, `""`, `"https://u:p@hooks.example.com/"`, `5`} {
		status, h, b := e.postJSON("/api/v1/messages", `{"content": "m", `+okPhone+`, "status_callback": `+bad+`}`)
		if eb := wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed"); eb.Field != "status_callback" {
			t.Errorf("%s: field %q", bad, eb.Field)
		}
		status, h, b = e.postJSON("/api/v1/messages/batch", fmt.Sprintf(`{"messages": [{"content": "ok", %s}, {"content": "m", %s, "status_callback": %s}]}`, okPhone, okPhone, bad))
		if eb := wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed"); len(eb.Items) != 1 || eb.Items[0].Index != 1 || eb.Items[0].Field != "status_callback" {
			t.Errorf("batch %s: %+v", bad, eb.Items)
		}
	}
	if n := e.count(`true`); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
}

// Without STATUS_CALLBACK_URL and STATUS_CALLBACK_ALLOWED_HOSTS no host
// is allowed.
func TestStatusCallbackNoHostAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, h, b := e.postJSON("/api/v1/messages", `{"content": "m", `+okPhone+`, "status_callback": "https://hooks.example.com/x"}`)
	wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
}

// The events of a message, oldest first; redelivery answers 202 with the
// event pending again, 404 for an unknown id.
func TestEventsListAndRedeliver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, _, b := e.postJSON("/api/v1/messages", `{"id": "ev-1", "content": "m", `+okPhone+`}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/messages/ev-1/events")
	if l := decode[api.EventList](t, b); status != 200 || len(l.Data) != 0 {
		t.Fatalf("events at creation: %d %s", status, b)
	}
	if status, _, b := e.postJSON("/api/v1/messages/ev-1/cancel", ""); status != 200 {
		t.Fatalf("cancel: %d %s", status, b)
	}
	e.exec(`UPDATE message_events SET status = 'failed', attempts = 12, last_error = 'callback answered 500' WHERE message_id = 'ev-1'`)
	status, _, b = e.get("/api/v1/messages/ev-1/events")
	l := decode[api.EventList](t, b)
	if status != 200 || len(l.Data) != 1 || l.Data[0].Type != "message.canceled" || l.Data[0].Status != "failed" ||
		l.Data[0].Attempts != 12 || l.Data[0].LastError == nil || l.Data[0].DeliveredAt != nil {
		t.Fatalf("events: %d %s", status, b)
	}
	status, _, b = e.postJSON("/api/v1/events/"+l.Data[0].ID+"/redeliver", "")
	if v := decode[api.EventView](t, b); status != http.StatusAccepted || v.Status != "pending" || v.ID != l.Data[0].ID {
		t.Fatalf("redeliver: %d %s", status, b)
	}
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
		status, h, b := e.postJSON("/api/v1/events/"+id+"/redeliver", "")
		wantError(t, status, h, b, http.StatusNotFound, "not_found")
	}
	status, h, b := e.get("/api/v1/messages/unknown/events")
	wantError(t, status, h, b, http.StatusNotFound, "not_found")
}
