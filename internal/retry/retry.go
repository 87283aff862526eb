// Package retry is the delay before each retry of a failed webhook call: a
// schedule of steps measured in hours, not seconds, so that a message outlives
// a provider outage; and the short backoff and deadline of a database write
// that must land (an outcome record). It is pure: no clock, no randomness
// of its own, no I/O.
package retry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Default is the schedule RETRY_SCHEDULE defaults to. Its steps add up to
// 24 h 42 min 35 s, so with its length + 1 attempts a message is retried for
// at least a day before it fails. (The example ends 8h,8h, which adds
// up to 23 h 43 min; the last step is 9 h to keep the promise of a day.)
const Default = "5s,30s,2m,10m,30m,1h,2h,4h,8h,9h"

// Bounds on a schedule an operator may write.
const (
	// MaxSteps bounds the number of steps; with MAX_ATTEMPTS at most 100,
	// more could never be used.
	MaxSteps = 99
	// MaxStep bounds one step: longer than a week is a mistake.
	MaxStep = 7 * 24 * time.Hour
	// MaxText bounds the length of the variable itself.
	MaxText = 1024
	// Jitter is the spread applied to each step: ±20%.
	Jitter = 0.2
)

// ErrInvalid is returned (wrapped) for a schedule that does not parse or
// breaks a bound.
var ErrInvalid = errors.New("invalid retry schedule")

// Schedule is the delay before retry 1, 2, ...; the last step repeats.
type Schedule []time.Duration

// Parse reads a comma-separated list of steps, each whole seconds ("30")
// or a Go duration ("5s,30,2m"). Each step must be above zero and at most
// MaxStep; there are 1 to MaxSteps of them. Spaces around a step are
// allowed.
func Parse(s string) (Schedule, error) {
	if len(s) > MaxText {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrInvalid, MaxText)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxSteps {
		return nil, fmt.Errorf("%w: %d steps, at most %d", ErrInvalid, len(parts), MaxSteps)
	}
	out := make(Schedule, 0, len(parts))
	for i, p := range parts {
		d, err := step(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%w: step %d: %w", ErrInvalid, i+1, err)
		}
		if d <= 0 || d > MaxStep {
			return nil, fmt.Errorf("%w: step %d is %s, want above 0 and at most %s", ErrInvalid, i+1, d, MaxStep)
		}
		out = append(out, d)
	}
	return out, nil
}

// step reads one step: whole seconds, like every other duration setting,
// or a Go duration.
func step(s string) (time.Duration, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil || secs > int64(MaxStep/time.Second) {
			return 0, fmt.Errorf("%q seconds is more than %s", s, MaxStep)
		}
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want whole seconds or a Go duration: %w", err)
	}
	return d, nil
}

// MustParse is Parse for constants known to be valid; it panics otherwise.
func MustParse(s string) Schedule {
	sc, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sc
}

// Largest is the schedule's longest step (0 for an empty schedule).
func (s Schedule) Largest() time.Duration {
	var m time.Duration
	for _, d := range s {
		m = max(m, d)
	}
	return m
}

// Total is the sum of the steps, without jitter.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t
}

// String is the schedule in the form Parse reads.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Delay is the wait before the next call of a message whose call number
// attempt (1-based) just failed retryably. The step is the schedule's
// attempt-th (the last one repeats), spread by ±20%: jitter in [0, 1) maps
// to [0.8, 1.2) of the step, so messages that failed together do not come
// back together. A Retry-After the receiver sent is honoured up to the
// schedule's largest step: the delay is never shorter than it asks (nor
// than the schedule's step), and a receiver cannot park a message for
// longer than the schedule's longest wait. An empty schedule retries at
// once.
func (s Schedule) Delay(attempt int, retryAfter time.Duration, jitter float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	step := s[min(max(attempt, 1), len(s))-1]
	jitter = min(max(jitter, 0), 1)
	d := time.Duration(float64(step) * (1 - Jitter + 2*Jitter*jitter))
	if retryAfter > 0 {
		d = max(d, min(retryAfter, s.Largest()))
	}
	return d
}

// The backoff between two tries of a database write that failed (an
// outcome record): WriteFirst doubling to WriteMax.
const (
	WriteFirst = 50 * time.Millisecond
	WriteMax   = 2 * time.Second
)

// WriteWait is the wait after a failed write whose backoff is d, spread
// over [d/2, d) by jitter (in [0, 1)) so that processes do not retry in
// step, and the backoff of the try after it: doubled, at most WriteMax.
func WriteWait(d time.Duration, jitter float64) (wait, next time.Duration) {
	return d/2 + time.Duration(jitter*float64(d/2)), min(2*d, WriteMax)
}

// LeaseDeadline is the last moment an outcome of a claim made at claimedAt
// under lease is written for sure: the lease minus a margin for the write
// itself (a quarter of the lease, at most 5 s). After it another worker
// may claim the row again.
func LeaseDeadline(claimedAt time.Time, lease time.Duration) time.Time {
	return claimedAt.Add(lease - min(lease/4, 5*time.Second))
}
