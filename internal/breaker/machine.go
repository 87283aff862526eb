// Package breaker is the circuit breaker every worker process shares. The
// decisions are a pure state machine (this file), driven by
// whatever clock the caller passes: PostgreSQL's now() in production, a fake
// clock in the table test. The shared state lives in one PostgreSQL row
// (breaker.go, through internal/store), so a Redis restart cannot close an
// open breaker or lose a trip.
package breaker

import (
	"fmt"
	"time"
)

// Mode is the breaker's state, as the API shows it.
type Mode string

// The three states.
const (
	Closed   Mode = "closed"    // calls flow
	Open     Mode = "open"      // no call starts until the cooldown ends
	HalfOpen Mode = "half_open" // one probe call is out, nothing else starts
)

// The reasons ClaimProbe gives.
const (
	ReasonProbe   = "cooldown over: one probe call"
	ReasonReprobe = "the last probe never reported: another probe call"
)

// Modes lists every state, for metrics.
var Modes = []Mode{Closed, Open, HalfOpen}

// Settings shape the breaker. They come from BREAKER_* variables; the probe
// timeout is derived from the webhook timeout.
type Settings struct {
	// Window is how far back calls count (BREAKER_WINDOW).
	Window time.Duration
	// MinCalls is how many calls the window must hold before it can trip
	// (BREAKER_MIN_CALLS).
	MinCalls int
	// FailureRate is the share of retryable failures that trips it
	// (BREAKER_FAILURE_RATE).
	FailureRate float64
	// Cooldown is how long it stays open before a probe (BREAKER_COOLDOWN).
	Cooldown time.Duration
	// ProbeTimeout is how long a half-open breaker waits for its probe's
	// result before another process may probe: the prober may have died.
	ProbeTimeout time.Duration
}

// State is the shared breaker, one row in PostgreSQL.
//
// Calls are counted in two fixed buckets of Window each, the current one
// (from WindowStart) and the one before; the count "within the last
// Window" is the current bucket plus the previous one weighted by how much
// of it still lies inside the window. This sliding-window estimate costs two
// counters instead of a row per call.
type State struct {
	Mode        Mode
	Since       time.Time // when Mode was entered
	Reason      string    // why, for operators
	FailureRate float64   // the window's failure rate at the last report (at the trip while open)

	// WindowStart is where the current bucket starts. A trip starts a
	// fresh window at the trip's time, and nothing moves it while the
	// breaker is open or half-open: until it closes again it tells when
	// the outage was noticed.
	WindowStart             time.Time
	Calls, Failures         int // current bucket
	PrevCalls, PrevFailures int // the bucket before it

	ProbeAt time.Time // when the probe out now was claimed (half-open only)
	Trips   int64     // closed -> open transitions, ever
}

// Probe is what a batch says about the half-open probe.
type Probe int

// A batch carries no probe, or the probe's success or retryable failure.
const (
	NoProbe Probe = iota
	ProbeSucceeded
	ProbeFailed
)

// Tally is one batch of finished calls, as the completer reports it. Calls
// counts webhook calls that got an answer or an error (the probe
// excluded); Failures counts those that failed retryably (5xx, 408, 429, a
// timeout, a connection error). A 4xx such as 400 counts as a call, never
// as a failure. Calls cut short by a shutdown are not reported.
type Tally struct {
	Calls, Failures int
	Probe           Probe
	// LastError is the reason of the batch's last retryable failure, for
	// the trip's reason.
	LastError string
}

// Add merges u into t; a probe result in either is kept.
func (t Tally) Add(u Tally) Tally {
	t.Calls += u.Calls
	t.Failures += u.Failures
	if u.Probe != NoProbe {
		t.Probe = u.Probe
	}
	if u.LastError != "" {
		t.LastError = u.LastError
	}
	return t
}

// Empty tells whether t carries nothing.
func (t Tally) Empty() bool { return t.Calls == 0 && t.Probe == NoProbe }

// Transition is a change of Mode (zero when none happened).
type Transition struct {
	From, To Mode
	Reason   string
	// OutageStart is set when the breaker closes after an outage: the
	// trip's time minus Window, for the failures that tripped it came
	// before it. Retries the outage scheduled since then are due at once
	// (store.BreakerChange).
	OutageStart time.Time
}

// Changed tells whether a transition happened.
func (tr Transition) Changed() bool { return tr.From != tr.To }

// Initial is the state of a fresh deployment.
func Initial(now time.Time) State {
	return State{Mode: Closed, Since: now, WindowStart: now}
}

// roll moves the window buckets forward to now.
func (s State) roll(now time.Time, w time.Duration) State {
	if w <= 0 || now.Before(s.WindowStart.Add(w)) {
		return s
	}
	if now.Before(s.WindowStart.Add(2 * w)) {
		s.PrevCalls, s.PrevFailures = s.Calls, s.Failures
		s.WindowStart = s.WindowStart.Add(w)
	} else {
		s.PrevCalls, s.PrevFailures = 0, 0
		s.WindowStart = now
	}
	s.Calls, s.Failures = 0, 0
	return s
}

// resetWindow empties the counters, starting a fresh window at now.
func (s State) resetWindow(now time.Time) State {
	s.WindowStart = now
	s.Calls, s.Failures, s.PrevCalls, s.PrevFailures = 0, 0, 0, 0
	return s
}

// Window returns the estimated calls and retryable failures within the
// last Window at now.
func (s State) Window(now time.Time, w time.Duration) (calls, failures float64) {
	s = s.roll(now, w)
	weight := 0.0
	if w > 0 {
		weight = 1 - float64(now.Sub(s.WindowStart))/float64(w)
		weight = min(max(weight, 0), 1)
	}
	return float64(s.Calls) + weight*float64(s.PrevCalls), float64(s.Failures) + weight*float64(s.PrevFailures)
}

// Report applies one batch's tally at now and returns the new state and the
// transition it caused, if any.
//
//   - closed: the calls count; when the window holds at least MinCalls
//     calls and at least FailureRate of them failed retryably, it opens.
//   - half-open: the probe's result decides: a success closes it with a
//     fresh window (and dates the outage, Transition.OutageStart), a
//     failure opens it for another cooldown. Other calls
//     (started before the trip) are ignored.
//   - open: calls that were in flight when it tripped are ignored.
func (s State) Report(now time.Time, t Tally, cfg Settings) (State, Transition) {
	from := s.Mode
	switch s.Mode {
	case HalfOpen:
		switch t.Probe {
		case ProbeSucceeded:
			outage := s.WindowStart.Add(-cfg.Window)
			s = s.resetWindow(now)
			s.Mode, s.Since, s.FailureRate, s.ProbeAt = Closed, now, 0, time.Time{}
			s.Reason = "probe call succeeded"
			return s, Transition{From: from, To: s.Mode, Reason: s.Reason, OutageStart: outage}
		case ProbeFailed:
			s.Mode, s.Since, s.ProbeAt = Open, now, time.Time{}
			s.Reason = "probe call failed: " + orUnknown(t.LastError)
		}
	case Closed:
		s = s.roll(now, cfg.Window)
		s.Calls += t.Calls
		s.Failures += t.Failures
		calls, fails := s.Window(now, cfg.Window)
		if calls > 0 {
			s.FailureRate = round3(fails / calls)
		}
		if calls >= float64(cfg.MinCalls) && calls > 0 && fails/calls >= cfg.FailureRate {
			s.Mode, s.Since, s.Trips = Open, now, s.Trips+1
			s.Reason = fmt.Sprintf("%.0f of %.0f calls in the last %s failed (%s)", fails, calls, cfg.Window, orUnknown(t.LastError))
			s = s.resetWindow(now)
		}
	}
	return s, Transition{From: from, To: s.Mode, Reason: s.Reason}
}

// ClaimProbe lets one caller make the half-open probe: an open breaker
// whose cooldown is over, or a half-open one whose probe never reported
// within ProbeTimeout, goes (or stays) half-open with the probe claimed at
// now, and ok is true. Otherwise nothing changes. PostgreSQL runs the same
// rule as one conditional UPDATE (store.ClaimBreakerProbe), so exactly one
// process wins.
func (s State) ClaimProbe(now time.Time, cfg Settings) (State, bool) {
	switch {
	case s.Mode == Open && !now.Before(s.Since.Add(cfg.Cooldown)):
		s.Mode, s.Since, s.ProbeAt = HalfOpen, now, now
		s.Reason = ReasonProbe
		return s, true
	case s.Mode == HalfOpen && !now.Before(s.ProbeAt.Add(cfg.ProbeTimeout)):
		s.ProbeAt = now
		s.Reason = ReasonReprobe
		return s, true
	}
	return s, false
}

// Verdict is what a process may do at now, judged from a copy of the
// state it read: start calls, wait until a time, or try to claim the probe.
type Verdict struct {
	Allow bool      // closed: calls may start
	Probe bool      // a probe may be claimed now (ClaimProbe decides who)
	Until time.Time // neither: when to ask again
}

// Verdict judges s at now.
func (s State) Verdict(now time.Time, cfg Settings) Verdict {
	switch s.Mode {
	case Open:
		if until := s.Since.Add(cfg.Cooldown); now.Before(until) {
			return Verdict{Until: until}
		}
		return Verdict{Probe: true}
	case HalfOpen:
		if until := s.ProbeAt.Add(cfg.ProbeTimeout); now.Before(until) {
			return Verdict{Until: until}
		}
		return Verdict{Probe: true}
	}
	return Verdict{Allow: true}
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
