package sink

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrigger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		content    string
		n          int
		wantStatus int
		wantRefuse bool
	}{
		{"plain text is accepted", "hello", 1, 0, false},
		{"fail-once refuses the first call", "please fail-once", 1, http.StatusInternalServerError, true},
		{"fail-once accepts the second call", "please fail-once", 2, 0, false},
		{"fail-once accepts every later call", "fail-once", 7, 0, false},
		{"reject refuses the first call", "reject me", 1, http.StatusBadRequest, true},
		{"reject refuses every call", "reject me", 3, http.StatusBadRequest, true},
		{"reject wins over fail-once", "fail-once and reject", 1, http.StatusBadRequest, true},
		{"the words are case-sensitive", "REJECT FAIL-ONCE", 1, 0, false},
		{"empty content is accepted", "", 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, refuse := Trigger(tt.content, tt.n)
			if status != tt.wantStatus || refuse != tt.wantRefuse {
				t.Fatalf("Trigger(%q, %d) = %d, %v; want %d, %v", tt.content, tt.n, status, refuse, tt.wantStatus, tt.wantRefuse)
			}
		})
	}
}

// TestTriggersThroughTheSink posts to a sink with Triggers as its responder,
// as the local run does: the answers per call, and the ledger of accepted
// deliveries and calls per message.
func TestTriggersThroughTheSink(t *testing.T) {
	t.Parallel()
	s := New(Triggers(nil), nil)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	post := func(key, content string) (int, map[string]string) {
		t.Helper()
		body, err := json.Marshal(map[string]string{"to": "+905551111111", "content": content})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var got map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatalf("answer to %s is not JSON: %v", key, err)
		}
		return resp.StatusCode, got
	}

	calls := []struct {
		key, content string
		wantStatus   int
		wantField    string
	}{
		{"m-ok", "hello", http.StatusAccepted, "messageId"},
		{"m-once", "fail-once please", http.StatusInternalServerError, "error"},
		{"m-once", "fail-once please", http.StatusAccepted, "messageId"},
		{"m-reject", "reject this", http.StatusBadRequest, "error"},
		{"m-reject", "reject this", http.StatusBadRequest, "error"},
		{"m-once-2", "fail-once", http.StatusInternalServerError, "error"},
	}
	for i, c := range calls {
		status, got := post(c.key, c.content)
		if status != c.wantStatus || got[c.wantField] == "" {
			t.Fatalf("call %d (%s): %d %v, want %d with %q", i+1, c.key, status, got, c.wantStatus, c.wantField)
		}
	}

	accepted := map[string]int{}
	for _, d := range s.Accepted() {
		accepted[d.IdempotencyKey]++
	}
	wantAccepted := map[string]int{"m-ok": 1, "m-once": 1}
	if len(accepted) != len(wantAccepted) || accepted["m-ok"] != 1 || accepted["m-once"] != 1 {
		t.Fatalf("accepted = %v, want %v", accepted, wantAccepted)
	}
	wantCalls := map[string]int{"m-ok": 1, "m-once": 2, "m-reject": 2, "m-once-2": 1}
	gotCalls := s.Calls()
	for k, n := range wantCalls {
		if gotCalls[k] != n {
			t.Fatalf("calls = %v, want %v", gotCalls, wantCalls)
		}
	}
}
