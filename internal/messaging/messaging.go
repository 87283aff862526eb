// Package messaging names what the system is about: the statuses a message
// moves through, the kinds of delivery attempt, and the errors callers
// branch on. It does no I/O and imports nothing of this module: store
// writes these names to PostgreSQL, delivery decides between them, and the
// API maps the errors to answers. The rules a message's id, content and
// phone number must meet are internal/message's.
package messaging

// DefaultProvider names the one provider of a deployment without
// PROVIDERS, built from WEBHOOK_*; its breaker row is the one that existed
// before providers were named.
const DefaultProvider = "default"

// Message statuses, as stored in messages.status.
const (
	// StatusPending: waiting for its first call, for a retry, or for its
	// send_at.
	StatusPending = "pending"
	// StatusSending: claimed by a worker, under a lease, for one call.
	StatusSending = "sending"
	// StatusSent: the receiver accepted it.
	StatusSent = "sent"
	// StatusFailed: failed for good; only a manual retry sends it again.
	StatusFailed = "failed"
	// StatusExpired: expires_at passed before a call started; no call was
	// made and last_error says so.
	StatusExpired = "expired"
	// StatusCanceled: canceled by the API while pending; never sent.
	StatusCanceled = "canceled"
	// StatusSuppressed: its number opted out (opt_outs) before a call
	// started; no call was made and no budget spent.
	StatusSuppressed = "suppressed"
)

// Statuses lists every status a message can have, in lifecycle order.
var Statuses = []string{StatusPending, StatusSending, StatusSent, StatusFailed, StatusExpired, StatusCanceled, StatusSuppressed}

// Attempt kinds: what one webhook call came to, as stored in
// message_attempts.outcome.
const (
	KindSent   = "sent"   // the receiver accepted the message
	KindRetry  = "retry"  // the message is due again after a delay
	KindFailed = "failed" // the message failed for good
	KindGone   = "gone"   // the receiver answered 410: sending pauses
)

// Kinds lists every attempt kind.
var Kinds = []string{KindSent, KindRetry, KindFailed, KindGone}

// KindOf is the attempt kind a message's new status implies, for an
// outcome whose call did not say: sent for StatusSent, retry for
// StatusPending, failed otherwise.
func KindOf(status string) string {
	switch status {
	case StatusSent:
		return KindSent
	case StatusPending:
		return KindRetry
	}
	return KindFailed
}
