// Package retry is the delay before each retry of a failed webhook call: a
// schedule of steps measured in hours, not seconds, so that a message outlives
// a provider outage. It is pure: no clock, no randomness of its
// own, no I/O.
package retry

import (
	"errors"
	"fmt"
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

// Parse reads a comma-separated list of Go durations ("5s,30s,2m"). Each
// step must be above zero and at most MaxStep; there are 1 to MaxSteps of
// them. Spaces around a step are allowed.
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
		d, err := time.ParseDuration(strings.TrimSpace(p))
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
