// Package sink is a webhook receiver that answers like the production one
// (202 {"message":"Accepted","messageId":"<uuid>"}) and keeps a ledger of
// what it received. It backs the local run (cmd/sink), the tests and the
// benchmarks, so all three exercise the same receiver. The local run adds
// Triggers, so that a developer can watch a retry and a failure.
package sink

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/messaging-server/messaging-server/internal/logging"
)

// Delivery is one request the sink received.
type Delivery struct {
	IdempotencyKey string
	To             string
	Content        string
	Header         http.Header
}

// Responder may override the answer to a request: it returns ok=false to let
// the sink accept it. n counts the requests with the same Idempotency-Key,
// starting at 1.
type Responder func(w http.ResponseWriter, r *http.Request, d Delivery, n int) (handled bool)

// Sink is an http.Handler.
type Sink struct {
	mu       sync.Mutex
	byKey    map[string]int
	received []Delivery
	notify   chan Delivery
	respond  Responder
	log      *slog.Logger
}

// New returns a Sink. respond may be nil; log may be nil.
func New(respond Responder, log *slog.Logger) *Sink {
	return &Sink{byKey: map[string]int{}, notify: make(chan Delivery, 1<<16), respond: respond, log: log}
}

// Received is a channel that gets every accepted delivery (buffered; the
// sink drops notifications nobody reads once the buffer is full).
func (s *Sink) Received() <-chan Delivery { return s.notify }

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body struct {
		To      string `json:"to"`
		Content string `json:"content"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	d := Delivery{IdempotencyKey: r.Header.Get("Idempotency-Key"), To: body.To, Content: body.Content, Header: r.Header.Clone()}
	s.mu.Lock()
	s.byKey[d.IdempotencyKey]++
	n := s.byKey[d.IdempotencyKey]
	s.mu.Unlock()
	if s.respond != nil && s.respond(w, r, d, n) {
		return
	}
	s.mu.Lock()
	s.received = append(s.received, d)
	s.mu.Unlock()
	select {
	case s.notify <- d:
	default:
	}
	if s.log != nil {
		// The number masked and the content's length only: no personal
		// data in a log.
		s.log.Info("webhook received", "idempotency_key", d.IdempotencyKey, "to", logging.MaskPhone(d.To),
			"content_chars", utf8.RuneCountInString(d.Content), "attempt", n)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": "Accepted", "messageId": uuid.NewString()})
}

// Accepted returns the deliveries the sink accepted, in order.
func (s *Sink) Accepted() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.received...)
}

// Calls returns how many requests carried each Idempotency-Key, accepted or
// not.
func (s *Sink) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byKey)
}

// The words in a message's content that make Triggers refuse it.
const (
	// TriggerFailOnce answers 500 to the first request for a message (per
	// Idempotency-Key) and accepts the retry.
	TriggerFailOnce = "fail-once"
	// TriggerReject answers 400 to every request for a message, which
	// fails it at once.
	TriggerReject = "reject"
)

// Trigger decides the local receiver's answer to the nth request for a
// message with this content: the status to refuse it with, or ok=false to
// accept it. "reject" wins over "fail-once".
func Trigger(content string, n int) (status int, refuse bool) {
	switch {
	case strings.Contains(content, TriggerReject):
		return http.StatusBadRequest, true
	case strings.Contains(content, TriggerFailOnce) && n == 1:
		return http.StatusInternalServerError, true
	}
	return 0, false
}

// Triggers returns the Responder of the local receiver: it refuses what
// Trigger says to refuse, with a short JSON error and a log line (log may be
// nil), and lets the sink accept the rest.
func Triggers(log *slog.Logger) Responder {
	return func(w http.ResponseWriter, _ *http.Request, d Delivery, n int) bool {
		status, refuse := Trigger(d.Content, n)
		if !refuse {
			return false
		}
		reason := "rejected: the content contains " + TriggerReject
		if status == http.StatusInternalServerError {
			reason = "failed once: the content contains " + TriggerFailOnce
		}
		if log != nil {
			log.Info("webhook refused", "idempotency_key", d.IdempotencyKey, "status", status, "attempt", n, "reason", reason)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
		return true
	}
}
