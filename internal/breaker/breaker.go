package breaker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/store"
)

// Store is what the breaker needs of PostgreSQL.
type Store interface {
	Breaker(ctx context.Context) (store.BreakerRow, time.Time, error)
	UpdateBreaker(ctx context.Context, apply func(store.BreakerRow, time.Time) store.BreakerChange) (store.BreakerRow, int64, error)
	ClaimBreakerProbe(ctx context.Context, cooldown, probeTimeout time.Duration, reason, reprobe string) (store.BreakerRow, time.Time, bool, error)
}

var _ Store = (*store.Store)(nil)

// Deps are what a Breaker is built from.
type Deps struct {
	Store    Store
	Settings Settings
	Log      *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Breaker
	// Now is the local clock (default time.Now). It decides when this
	// process's view is stale and when to write its tally; the shared
	// state's own times come from PostgreSQL's clock.
	Now func() time.Time
	// FlushEvery is the longest a tally of healthy calls waits before it is
	// written (default 250 ms). A tally with a retryable failure or a probe
	// result is written with the batch that carries it.
	FlushEvery time.Duration
	// RefreshEvery is how old this process's view of the shared state may
	// get before it is read again (default 1 s): another process may have
	// tripped or closed the breaker.
	RefreshEvery time.Duration
	// RefreshFailing replaces RefreshEvery while calls fail (default
	// 20 ms): this process has failures it has not written, or the shared
	// window fails at the tripping rate. Every worker wakes at the same
	// tick, and against a provider that fails at once each process alone
	// would reach BREAKER_MIN_CALLS before it read the others' failures.
	RefreshFailing time.Duration
	// Signals tells a test what the breaker does; nil in production.
	Signals *TestSignals
}

// Breaker is one worker process's handle on the shared breaker. It keeps a
// view of the shared row, so asking it before a claim or a call costs no
// round trip unless the view is older than RefreshEvery; outcomes are
// added up locally and written once per batch at most, never per message.
type Breaker struct {
	d Deps

	mu        sync.Mutex
	view      State
	disabled  string        // a 410's reason from the shared row; empty: enabled
	viewAt    time.Time     // local time the view was read
	skew      time.Duration // PostgreSQL's clock minus ours, at that read
	permit    bool          // this process won the probe and has not started it
	pending   Tally
	flushing  Tally // taken from pending by a write that has not returned
	seen      Tally // calls the executors observed that no Report carried yet
	lastFlush time.Time

	flushMu sync.Mutex // one write at a time from this process
}

// New builds a Breaker. Its view starts stale, so the first question reads
// the shared row.
func New(d Deps) *Breaker {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.FlushEvery <= 0 {
		d.FlushEvery = 250 * time.Millisecond
	}
	if d.RefreshEvery <= 0 {
		d.RefreshEvery = time.Second
	}
	if d.RefreshFailing <= 0 {
		d.RefreshFailing = 20 * time.Millisecond
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Breaker{d: d, view: Initial(time.Time{})}
}

// Admission is the answer before a claim.
type Admission struct {
	// N is how many calls may start: all that were asked while closed, 1
	// when this process won the half-open probe, else 0.
	N int
	// Probe tells that the one call admitted is the probe.
	Probe bool
	// Until, when N is 0, is the local time to ask again: claim nothing
	// before it.
	Until time.Time
}

// Admit is asked before a claim of up to n rows.
func (b *Breaker) Admit(ctx context.Context, n int) Admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(ctx)
	now := b.d.Now()
	if b.disabled != "" {
		// A 410 disabled the provider: look again at the next refresh,
		// an operator may enable it.
		return Admission{Until: now.Add(b.d.RefreshEvery)}
	}
	if b.permit {
		return Admission{N: 1, Probe: true}
	}
	v := b.view.Verdict(now.Add(b.skew), b.d.Settings)
	switch {
	case v.Allow && b.wouldTripLocked(now):
		// This process's own failures, not yet written, trip it: claim
		// nothing until the completer's report has written the trip.
		return Admission{Until: now.Add(b.d.FlushEvery)}
	case v.Allow:
		return Admission{N: n}
	case v.Probe:
		if b.claimProbeLocked(ctx) {
			return Admission{N: 1, Probe: true}
		}
		return Admission{Until: now.Add(b.d.RefreshEvery)}
	}
	if b.view.Mode == HalfOpen {
		// Another process's probe is out: look again soon, its result
		// may close the breaker well before the probe timeout.
		return Admission{Until: now.Add(b.d.RefreshEvery)}
	}
	return Admission{Until: v.Until.Add(-b.skew)}
}

// Allow is asked right before each call starts, at the seam of the
// executor. It answers from the view (reading the row when the view is
// stale): true while closed, and once for the probe this process won;
// false otherwise, and then the caller hands the row back uncharged.
func (b *Breaker) Allow(ctx context.Context) (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.permit {
		b.permit = false
		return true, true
	}
	b.refreshLocked(ctx)
	return b.readyLocked(), false
}

// Ready tells whether a call could start now, as Allow would, without
// taking the probe this process may hold: the breaker is closed, its
// unwritten failures would not trip it, and a 410 has not disabled it.
// Failover asks it of the providers after the one that failed.
func (b *Breaker) Ready(ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(ctx)
	return b.readyLocked()
}

func (b *Breaker) readyLocked() bool {
	return b.disabled == "" && b.view.Mode == Closed && !b.wouldTripLocked(b.d.Now())
}

// Observe notes one finished call (not the probe) the moment the executor
// has its answer, with no I/O. The completer reports the same call later,
// in its batch; until then Allow and Admit count it, so a process stops
// calling as soon as its own unwritten failures would trip the breaker,
// not one database write later (a fast-failing provider answers many calls
// in the time of one write).
func (b *Breaker) Observe(retryable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen.Calls++
	if retryable {
		b.seen.Failures++
	}
}

// wouldTripLocked tells whether the closed view, with the outcomes this
// process observed or added up and has not written yet, would trip.
func (b *Breaker) wouldTripLocked(now time.Time) bool {
	if b.view.Mode != Closed {
		return false
	}
	t := b.pending.Add(b.seen).Add(b.flushing)
	if t.Failures == 0 {
		return false
	}
	next, _ := b.view.Report(now.Add(b.skew), t, b.d.Settings)
	return next.Mode != Closed
}

// Report adds one batch's outcomes, as the completer saw them. It writes
// the shared row at most once per call, and only when the batch carries a
// retryable failure or the probe's result, or FlushEvery has passed since
// the last write: the healthy path costs a few statements a second per
// process whatever the throughput.
func (b *Breaker) Report(ctx context.Context, t Tally) {
	b.mu.Lock()
	// The executors observed these calls already; from now on pending
	// (or the shared row) carries them.
	b.seen.Calls = max(b.seen.Calls-t.Calls, 0)
	b.seen.Failures = max(b.seen.Failures-t.Failures, 0)
	if t.Probe == NoProbe && b.view.Mode != Closed {
		// Calls that were in flight when the breaker opened: the state
		// machine ignores them, so do not spend a write on them.
		b.mu.Unlock()
		return
	}
	b.pending = b.pending.Add(t)
	now := b.d.Now()
	due := b.pending.Probe != NoProbe || b.pending.Failures > 0 || now.Sub(b.lastFlush) >= b.d.FlushEvery
	if b.pending.Empty() || !due {
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.Flush(ctx)
}

// Flush writes the tally added so far, if any.
func (b *Breaker) Flush(ctx context.Context) {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	t := b.pending
	// Until the write returns, the view does not hold t: count it as
	// flushing, or the executors would stop counting this process's own
	// failures for the length of a round trip and call on.
	b.pending, b.flushing = Tally{}, t
	b.lastFlush = b.d.Now()
	b.mu.Unlock()
	if t.Empty() {
		return
	}
	var tr Transition
	// When this write closes the breaker after an outage, the same
	// transaction makes the retries the outage scheduled due at once.
	row, due, err := b.d.Store.UpdateBreaker(ctx, func(cur store.BreakerRow, now time.Time) store.BreakerChange {
		next, trans := fromRow(cur).Report(now, t, b.d.Settings)
		tr = trans
		return store.BreakerChange{Row: toRow(next), Write: true, DueSince: trans.OutageStart}
	})
	if err != nil {
		b.d.Log.Warn("breaker: write outcomes", "calls", t.Calls, "failures", t.Failures, "err", err)
		b.mu.Lock()
		b.pending, b.flushing = b.pending.Add(t), Tally{}
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	b.flushing = Tally{}
	b.setViewLocked(row, time.Time{}, false)
	b.mu.Unlock()
	if tr.Changed() {
		if tr.To == Open && tr.From == Closed {
			b.d.Metrics.Trip()
		}
		b.logTransition(ctx, tr, row, "held_back_now_due", due)
		b.signal(tr)
	}
}

// View is this process's last view of the shared state.
func (b *Breaker) View() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view
}

func (b *Breaker) refreshLocked(ctx context.Context) {
	every := b.d.RefreshEvery
	if b.failingLocked() {
		every = min(every, b.d.RefreshFailing)
	}
	if !b.viewAt.IsZero() && b.d.Now().Sub(b.viewAt) < every {
		return
	}
	row, dbNow, err := b.d.Store.Breaker(ctx)
	if err != nil {
		// The claim that follows needs PostgreSQL too and will say so;
		// keep the last view and try again at the next question.
		b.d.Log.Warn("breaker: read shared state", "err", err)
		return
	}
	b.setViewLocked(row, dbNow, true)
}

// failingLocked tells whether calls fail now, as far as this process
// knows: it has failures it has not written, or the shared window of a
// closed breaker fails at the tripping rate.
func (b *Breaker) failingLocked() bool {
	if b.seen.Failures > 0 || b.pending.Failures > 0 || b.flushing.Failures > 0 {
		return true
	}
	v := b.view
	calls, failures := v.Calls+v.PrevCalls, v.Failures+v.PrevFailures
	return v.Mode == Closed && failures > 0 && float64(failures) >= b.d.Settings.FailureRate*float64(calls)
}

func (b *Breaker) claimProbeLocked(ctx context.Context) bool {
	row, dbNow, won, err := b.d.Store.ClaimBreakerProbe(ctx, b.d.Settings.Cooldown, b.d.Settings.ProbeTimeout, ReasonProbe, ReasonReprobe)
	if err != nil {
		b.d.Log.Warn("breaker: claim the probe", "err", err)
		return false
	}
	from := b.view.Mode
	b.setViewLocked(row, dbNow, true)
	if !won {
		return false
	}
	b.permit = true
	tr := Transition{From: from, To: HalfOpen, Reason: row.Reason}
	b.logTransition(ctx, tr, row)
	b.signal(tr)
	return true
}

func (b *Breaker) setViewLocked(row store.BreakerRow, dbNow time.Time, fresh bool) {
	b.view = fromRow(row)
	b.disabled = row.Disabled
	if fresh {
		now := b.d.Now()
		b.viewAt = now
		b.skew = dbNow.Sub(now)
	}
	state := string(b.view.Mode)
	if b.disabled != "" {
		state = Disabled
	}
	b.d.Metrics.State(state, StateNames())
}

// Disabled is the state a provider a 410 disabled shows, beside the
// breaker's own modes.
const Disabled = "disabled"

// StateNames lists every state a provider shows: the breaker's modes and
// disabled, for metrics and the API.
func StateNames() []string { return append(modeNames(), Disabled) }

func (b *Breaker) logTransition(ctx context.Context, tr Transition, row store.BreakerRow, extra ...any) {
	level := slog.LevelInfo
	if tr.To == Open {
		level = slog.LevelWarn
	}
	if tr.OutageStart.IsZero() {
		extra = nil
	}
	b.d.Log.Log(ctx, level, "circuit breaker "+string(tr.From)+" -> "+string(tr.To), append([]any{
		"state", tr.To, "reason", tr.Reason, "failure_rate", row.FailureRate, "since", row.Since.UTC().Format(time.RFC3339)}, extra...)...)
}

func modeNames() []string {
	out := make([]string, len(Modes))
	for i, m := range Modes {
		out[i] = string(m)
	}
	return out
}

// ModeNames lists the states as strings, for metrics.
func ModeNames() []string { return modeNames() }

func fromRow(r store.BreakerRow) State {
	s := State{
		Mode: Mode(r.State), Since: r.Since, Reason: r.Reason, FailureRate: r.FailureRate,
		WindowStart: r.WindowStart, Calls: r.Calls, Failures: r.Failures,
		PrevCalls: r.PrevCalls, PrevFailures: r.PrevFailures, Trips: r.Trips,
	}
	if r.ProbeAt != nil {
		s.ProbeAt = *r.ProbeAt
	}
	return s
}

func toRow(s State) store.BreakerRow {
	r := store.BreakerRow{
		State: string(s.Mode), Since: s.Since, Reason: s.Reason, FailureRate: s.FailureRate,
		WindowStart: s.WindowStart, Calls: s.Calls, Failures: s.Failures,
		PrevCalls: s.PrevCalls, PrevFailures: s.PrevFailures, Trips: s.Trips,
	}
	if !s.ProbeAt.IsZero() {
		p := s.ProbeAt
		r.ProbeAt = &p
	}
	return r
}

// Status is the read-only view the API shows.
type Status struct {
	State       Mode
	Since       time.Time
	Reason      string
	FailureRate float64
	Trips       int64
	// Disabled is a 410's reason, empty while the provider is enabled;
	// DisabledAt is when.
	Disabled   string
	DisabledAt time.Time
}

// Reader is what Read needs: internal/store's Store satisfies it.
type Reader interface {
	Breaker(ctx context.Context) (store.BreakerRow, time.Time, error)
}

// Read returns the shared breaker's state, for the API and metrics.
func Read(ctx context.Context, r Reader) (Status, error) {
	row, _, err := r.Breaker(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{State: Mode(row.State), Since: row.Since.UTC(), Reason: row.Reason, FailureRate: row.FailureRate, Trips: row.Trips, Disabled: row.Disabled}
	if row.DisabledAt != nil {
		st.DisabledAt = row.DisabledAt.UTC()
	}
	return st, nil
}
