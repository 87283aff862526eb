// Package callback sends status callbacks: the events the message_events
// outbox holds (written by a trigger in the same transaction as the change
// they report), claimed by the worker processes under a lease, POSTed in
// Standard Webhooks form, retried on STATUS_CALLBACK_RETRY_SCHEDULE, in
// order per message. It also holds the rule a message's own
// status_callback URL must follow.
package callback

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
)

// Outcome is what becomes of an event after one call.
type Outcome struct {
	Status string        // store.EventDelivered, EventPending or EventFailed
	Delay  time.Duration // before the next call; pending only
	Reason string        // why the call was not accepted; empty when it was
}

// Decide judges one call: code is the HTTP status (0 without an answer),
// callErr why there was none, round the call's number within the current
// round of sched (1 for the first). Any 2xx accepts the event; anything
// else is tried again after the schedule's round-th step (±20% from
// jitter in [0, 1)) while a step is left, and fails the event after the
// last one, so a round makes len(sched)+1 calls.
func Decide(code int, callErr error, round int, sched retry.Schedule, jitter float64) Outcome {
	if callErr == nil && code >= 200 && code < 300 {
		return Outcome{Status: store.EventDelivered}
	}
	reason := fmt.Sprintf("callback answered %d", code)
	switch {
	case callErr != nil && isTimeout(callErr):
		reason = "callback timed out"
	case callErr != nil:
		reason = "callback failed: no answer"
	}
	if round > len(sched) {
		return Outcome{Status: store.EventFailed, Reason: reason}
	}
	return Outcome{Status: store.EventPending, Delay: sched.Delay(round, 0, jitter), Reason: reason}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Errors of CheckURL; internal/api maps them to 422.
var (
	ErrNotHTTP        = errors.New("status_callback must be an absolute http or https URL")
	ErrHostNotAllowed = errors.New("status_callback names a host that is not allowed")
)

// MaxURLLength bounds a status_callback URL.
const MaxURLLength = 2048

// CheckURL accepts raw as a message's status_callback when it is an
// absolute http or https URL of at most MaxURLLength bytes, without user
// information or fragment, whose host is one of allowed (lower-case host
// names or IP addresses, as config.ParseHosts gives them).
func CheckURL(raw string, allowed []string) error {
	if raw == "" || len(raw) > MaxURLLength || strings.TrimSpace(raw) != raw {
		return ErrNotHTTP
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return ErrNotHTTP
	}
	if !slices.Contains(allowed, strings.ToLower(u.Hostname())) {
		return ErrHostNotAllowed
	}
	return nil
}
