package delivery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// RetryDelay is how long a message waits before attempt+1 after attempt
// failed retryably; retryAfter is the receiver's Retry-After hint, zero when
// it gave none.
type RetryDelay func(attempt int, retryAfter time.Duration) time.Duration

// Policy is what the decision needs besides the call itself.
type Policy struct {
	// MaxAttempts is how many calls a message gets before it fails.
	MaxAttempts int
	// RetryDelay spaces retries.
	RetryDelay RetryDelay
}

// ExponentialBackoff is the default RetryDelay: the receiver's Retry-After
// when it gave one, else base doubled per attempt, capped at maxDelay, with
// jitter (see Backoff).
func ExponentialBackoff(base, maxDelay time.Duration) RetryDelay {
	return func(attempt int, retryAfter time.Duration) time.Duration {
		if retryAfter > 0 {
			return retryAfter
		}
		return Backoff(attempt, base, maxDelay, rand.Float64()) //nolint:gosec // jitter, not a secret
	}
}

// Scheduled is the RetryDelay of a retry schedule (RETRY_SCHEDULE): the
// schedule's step for the attempt, ±20% jitter, and the receiver's
// Retry-After honoured up to the schedule's largest step.
func Scheduled(s retry.Schedule) RetryDelay {
	return func(attempt int, retryAfter time.Duration) time.Duration {
		return s.Delay(attempt, retryAfter, rand.Float64()) //nolint:gosec // jitter, not a secret
	}
}

// Backoff is the delay before retry number attempt (1-based): base doubled
// per attempt, capped at maxDelay, then spread over [d/2, d) by jitter in
// [0,1) so that messages failing together do not retry together.
func Backoff(attempt int, base, maxDelay time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// Call is what one attempt did: the claimed row, when the call started and
// how long it took, and its answer. Invalid is set, and nothing was sent,
// when the row failed the pre-call validation.
type Call struct {
	Claimed   store.Claimed
	StartedAt time.Time
	Duration  time.Duration
	Invalid   error
	Resp      webhook.Response
	Err       error
	// Aborted says this process cut the call at shutdown: the receiver
	// is not to blame, so a retry is due at once.
	Aborted bool
	// Provider is the provider called; Round the providers of the
	// message's chain that failed retryably earlier in this round; Chain
	// how many providers the chain has (0 counts as 1).
	Provider string
	Round    []string
	Chain    int
	// Failover says another provider of the chain, not failed in this
	// round, could take the next attempt now.
	Failover bool
}

// failedIn is round with provider added: the round after provider failed.
func failedIn(round []string, provider string) []string {
	out := append([]string(nil), round...)
	if provider != "" && !slices.Contains(out, provider) {
		out = append(out, provider)
	}
	return out
}

// Decision is what becomes of a call: the outcome to record, whether the
// receiver said the endpoint is gone, and the metric labels.
type Decision struct {
	Outcome store.Outcome
	Gone    bool
	// Retryable says the receiver failed retryably (5xx, 408, 429, a
	// timeout, a connection error): the call counts against the circuit
	// breaker. A 4xx such as 400 for one bad number never does.
	Retryable bool
	// Metric and Reason label messaging_deliveries_total.
	Metric, Reason string
}

// roundStep is the retry schedule's step after attempt calls of a chain
// of n providers: with one provider the attempt itself, with more the
// rounds so far (each round calls every provider once).
func roundStep(attempt, n int) int {
	if n <= 1 {
		return attempt
	}
	return max((attempt+n-1)/n, 1)
}

// Decide applies the delivery rules to a call. It is pure: now and the
// policy's RetryDelay are its only sources of time and chance.
func Decide(c Call, now time.Time, p Policy) Decision {
	o := store.Outcome{Claimed: c.Claimed, StartedAt: c.StartedAt, Duration: c.Duration, Provider: c.Provider, NextRound: c.Round}
	if ce := (*message.CountryError)(nil); errors.As(c.Invalid, &ce) {
		// A row inserted for a country ALLOWED_COUNTRIES leaves out: the
		// reason is the bare code, for programs to match.
		o.Status, o.Kind = messaging.StatusFailed, messaging.KindFailed
		o.Error = message.CountryNotAllowed
		return Decision{Outcome: o, Metric: "failed", Reason: message.CountryNotAllowed}
	}
	if c.Invalid != nil {
		// Rows inserted around the API may break the rules the receiver
		// relies on: they fail at once with the reason.
		o.Status, o.Kind = messaging.StatusFailed, messaging.KindFailed
		o.Error = "not sent: invalid message: " + c.Invalid.Error()
		return Decision{Outcome: o, Metric: "failed", Reason: "invalid"}
	}
	if c.Err == nil {
		o.Status, o.Kind, o.StatusCode = messaging.StatusSent, messaging.KindSent, c.Resp.Status
		o.RemoteID = c.Resp.MessageID
		o.NextRound = nil
		o.SentAt = now.UTC().Truncate(time.Microsecond) // PostgreSQL's precision
		return Decision{Outcome: o, Metric: "sent", Reason: "ok"}
	}
	var werr *webhook.Error
	if !errors.As(c.Err, &werr) {
		werr = &webhook.Error{Retryable: true, Reason: c.Err.Error(), Err: c.Err}
	}
	o.StatusCode, o.Error = werr.Status, werr.Error()
	kind := werr.Kind()
	switch {
	case werr.Gone():
		// The message is not at fault: it waits, due at once, for sending
		// to be started again, or goes on to the chain's next provider.
		o.Status, o.Kind, o.NextAt = messaging.StatusPending, messaging.KindGone, now
		if c.Chain > 1 {
			o.NextRound = failedIn(c.Round, c.Provider)
		}
		return Decision{Outcome: o, Gone: true, Metric: "retried", Reason: kind}
	case !werr.Retryable:
		o.Status, o.Kind = messaging.StatusFailed, messaging.KindFailed
		return Decision{Outcome: o, Metric: "failed", Reason: kind}
	case c.Claimed.Attempt >= p.MaxAttempts:
		o.Status, o.Kind = messaging.StatusFailed, messaging.KindFailed
		o.Error = fmt.Sprintf("gave up after %d attempts: %s", c.Claimed.Attempt, o.Error)
		return Decision{Outcome: o, Retryable: true, Metric: "failed", Reason: kind}
	}
	var delay time.Duration
	switch {
	case c.Aborted:
		// Cut here at shutdown: not the provider's failure.
	case c.Failover:
		// Another provider of the chain takes the next attempt at once.
		o.NextRound = failedIn(c.Round, c.Provider)
	default:
		// Every provider of the chain failed in this round: the
		// schedule's next step, and a new round.
		delay = p.RetryDelay(roundStep(c.Claimed.Attempt, c.Chain), werr.RetryAfter)
		o.NextRound = nil
	}
	o.Status, o.Kind, o.NextAt = messaging.StatusPending, messaging.KindRetry, now.Add(delay)
	return Decision{Outcome: o, Retryable: true, Metric: "retried", Reason: kind}
}
