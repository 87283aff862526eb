package delivery

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/store"
)

// producer claims rows ahead of the executors into a short local queue, so
// that a freed executor finds its next row waiting instead of waiting for a
// claim round trip.
//
// The queue is bounded by count: claimed rows not yet finished never exceed
// Concurrency + QueueSize, and a claim takes all the room there is, once
// half of it is free or an executor idles, never one row per freed slot.
// It is bounded by age: until a call's duration is known it holds at most
// Concurrency rows; then the depth claimed ahead is what would start within
// half of MaxQueueWait at the recent call duration. When a queued row
// still waits MaxQueueWait anyway (calls became slow at once), the
// producer stops claiming ahead and hands back the queued rows beyond
// Concurrency, so that every row it keeps starts within one call's time,
// well inside its lease. Rows that never started are handed back when the
// service drains or a 410 was read.
//
// Before each claim it asks the shared circuit breaker how many calls may
// start: all of them while closed, one for the half-open probe this
// process won, none while open. Then it claims nothing and wakes again by
// itself when the breaker may allow calls (the end of the cooldown), not
// at the next tick. A row an executor was refused (the breaker opened
// between the claim and the call) comes back here and is handed back
// uncharged with the rest of the queue.
//
// While outcomes cannot be recorded (health.go) it claims nothing and
// hands no row to an executor; a row an executor held back comes back to
// the queue. When a write works again it hands back the whole queue, whose
// leases ran on meanwhile, and claims afresh.
//
// Only the producer's goroutine touches its fields.
type producer struct {
	s        *Service
	ready    chan<- job
	returned <-chan job
	finished <-chan time.Duration
	pending  *atomic.Int64

	queue    []job
	held     int           // claimed and not finished: queued or in flight
	inflight int           // taken by an executor, not finished nor returned
	active   bool          // this tick may claim more
	claiming bool          // a claim statement runs
	callTime time.Duration // moving average of a call's duration
	aged     bool          // the queue's head waited MaxQueueWait
	resumeAt time.Time     // the breaker said claim nothing before this; zero: no wait
	busy     bool          // it worked since it was last idle (see TestSignals.Idle)
}

// claimResult is one claim statement's answer.
type claimResult struct {
	rows []store.Claimed
	err  error
	took time.Duration
	at   time.Time // when the statement started
	// held says the circuit breaker admitted no call, so nothing was
	// claimed; until is when to ask it again.
	held  bool
	until time.Time
}

// run feeds the executors until the service drains or ctx ends, then
// closes ready. It returns only when every row it claimed has finished or
// been handed back.
func (p *producer) run(ctx context.Context) {
	s := p.s
	claimDone := make(chan claimResult, 1)
	age := time.NewTimer(time.Hour)
	defer age.Stop()
	resume := time.NewTimer(time.Hour)
	resume.Stop()
	defer resume.Stop()
	stopping := false
	for {
		if !stopping && (s.isDraining() || ctx.Err() != nil) {
			stopping = true
		}
		if stopping || s.isGone() {
			p.active = false
			why := "stopping"
			if !stopping {
				why = "webhook answered 410"
			}
			p.handBack(ctx, 0, why)
		}
		failing, worked := s.health.state()
		if mayClaim(p.active, p.claiming, failing) {
			if n := p.room(); n > 0 {
				p.claiming = true
				go func() { claimDone <- p.claim(ctx, n) }()
			}
		}
		if p.active || p.claiming || p.held > 0 {
			p.busy = true
		} else if p.busy {
			p.busy = false
			emit(s.signals.Idle, struct{}{})
		}
		if stopping && !p.claiming && p.held == 0 {
			close(p.ready)
			return
		}

		var (
			out         chan<- job
			head        job
			ageC        <-chan time.Time
			resumeC     <-chan time.Time
			kick        <-chan struct{}
			recovered   <-chan struct{}
			drain, done <-chan struct{}
		)
		if len(p.queue) > 0 && !failing {
			out, head = p.ready, p.queue[0]
			if !p.aged {
				age.Reset(time.Until(head.claimedAt.Add(s.cfg.MaxQueueWait)))
				ageC = age.C
			}
		}
		if !stopping {
			drain, done, kick = s.draining, ctx.Done(), s.kick
			if failing {
				recovered = worked
			}
			if !p.resumeAt.IsZero() && !p.active {
				resume.Reset(max(time.Until(p.resumeAt), time.Millisecond))
				resumeC = resume.C
			}
		}
		select {
		case out <- head:
			p.queue = p.queue[1:]
			p.inflight++
			p.aged = false
		case j := <-p.returned:
			p.inflight--
			if !j.retryAt.IsZero() {
				// Its chain's providers cannot take it now (a rate
				// limit, breakers): it alone goes back, uncharged,
				// due when they may.
				p.handBackOne(ctx, j)
				break
			}
			p.queue = append([]job{j}, p.queue...)
			if j.refused {
				// The breaker opened after the claim: nothing queued may
				// start, so all of it goes back uncharged. The next claim
				// asks the breaker first and waits out its cooldown.
				p.queue[0].refused = false
				p.handBack(ctx, 0, "circuit breaker open")
				p.active = true
			}
		case d := <-p.finished:
			p.inflight--
			p.held--
			p.observe(d)
		case r := <-claimDone:
			p.claiming = false
			p.claimed(r)
		case <-ageC:
			p.expire(ctx)
		case <-resumeC:
			p.resumeAt, p.active = time.Time{}, true
		case <-kick:
			p.active = true
		case <-recovered:
			// Records work again. What waited in the queue meanwhile may
			// be near the end of its lease: hand it back and claim afresh.
			p.handBack(ctx, 0, "outcomes can be recorded again: rows queued while they could not are claimed afresh")
			p.active = true
		case <-drain:
		case <-done:
		}
	}
}

// room is how many rows to claim now: all the room in the bounds, once half
// of it is free or an executor has nothing to do; else none.
func (p *producer) room() int {
	c := p.s.cfg.Concurrency
	capacity := c + p.depth()
	room := capacity - p.held
	switch {
	case room <= 0:
		return 0
	case len(p.queue) == 0 && p.inflight < c:
		return room
	case room >= max(1, capacity/2):
		return room
	}
	return 0
}

// depth is how many rows may wait in the queue: QueueSize while calls are
// fast, fewer when a full queue would wait longer than half MaxQueueWait,
// and no more than Concurrency before any call's duration is known.
func (p *producer) depth() int {
	q := p.s.cfg.QueueSize
	if p.callTime <= 0 {
		return min(q, p.s.cfg.Concurrency)
	}
	d := int64(p.s.cfg.MaxQueueWait/2) * int64(p.s.cfg.Concurrency) / int64(p.callTime)
	return int(min(max(d, 0), int64(q)))
}

// observe folds one call's duration into the moving average.
func (p *producer) observe(d time.Duration) {
	if p.callTime == 0 {
		p.callTime = d
		return
	}
	p.callTime += (d - p.callTime) / 8
}

func (p *producer) claim(ctx context.Context, n int) claimResult {
	cctx, cancel := p.s.recordCtx(ctx)
	defer cancel()
	if p.s.gate != nil {
		// The breaker's seam before a claim: while open, claim nothing.
		adm := p.s.gate.Admit(cctx, n)
		if adm.N <= 0 {
			return claimResult{held: true, until: adm.Until}
		}
		n = min(n, adm.N)
	} else if adm, ok := p.s.admitAny(cctx, n); !ok {
		// Several providers, none of which may take a call: claim
		// nothing until one may.
		return claimResult{held: true, until: adm.Until}
	} else {
		n = min(n, adm.N)
	}
	t0 := time.Now()
	rows, err := p.s.store.Claim(cctx, n, p.s.cfg.Lease, p.s.cfg.MaxAttempts)
	return claimResult{rows: rows, err: err, took: time.Since(t0), at: t0}
}

func (p *producer) claimed(r claimResult) {
	s := p.s
	if r.held {
		// The breaker is open: claim nothing until it may allow calls;
		// the producer wakes itself then.
		p.active, p.resumeAt = false, r.until
		return
	}
	p.resumeAt = time.Time{}
	s.claims.Add(1)
	if r.err != nil {
		p.active = false
		s.log.Error("claim failed; the next tick tries again", "err", r.err)
		return
	}
	s.m.Claim(len(r.rows), r.took)
	emit(s.signals.Claimed, len(r.rows))
	if len(r.rows) == 0 {
		p.active = false // the budget is spent or nothing is due
		return
	}
	for _, c := range r.rows {
		if c.Attempt == 1 {
			s.m.FirstAttempt(c.Waited)
		}
		p.queue = append(p.queue, job{c: c, claimedAt: r.at})
	}
	p.held += len(r.rows)
	p.pending.Add(int64(len(r.rows)))
}

// expire notices that the queue's head waited MaxQueueWait: calls became
// slow before their durations could show it. The producer stops claiming
// ahead until calls are fast again. Of the rows already queued it keeps the
// first Concurrency, which start within one call's time, well inside their
// lease; the rest, the last claimed, are handed back, due again at once.
func (p *producer) expire(ctx context.Context) {
	p.callTime = max(p.callTime, p.s.cfg.MaxQueueWait*time.Duration(p.s.cfg.Concurrency))
	p.aged = true
	p.handBack(ctx, p.s.cfg.Concurrency, "queued rows waited too long: calls became slow")
}

// handBack releases the queued rows after the first keep.
func (p *producer) handBack(ctx context.Context, keep int, why string) {
	if keep >= len(p.queue) {
		return
	}
	rest := p.queue[keep:]
	cs := make([]store.Claimed, len(rest))
	for i, j := range rest {
		cs[i] = j.c
	}
	p.queue = p.queue[:keep]
	p.held -= len(cs)
	p.pending.Add(-int64(len(cs)))
	p.s.handBack(ctx, cs, why)
}

// handBackOne releases one row an executor could not start, due at its
// retryAt.
func (p *producer) handBackOne(ctx context.Context, j job) {
	c := j.c
	c.RetryAt = j.retryAt
	p.held--
	p.pending.Add(-1)
	p.s.handBack(ctx, []store.Claimed{c}, "its providers cannot take it now")
}

// admitAny asks every provider's breaker before a claim (several
// providers): as many rows as the most generous admits, or none, then
// until the earliest time one may admit calls.
func (s *Service) admitAny(ctx context.Context, n int) (breaker.Admission, bool) {
	var (
		best  breaker.Admission
		gated bool
	)
	for _, pr := range s.providers {
		if pr.Gate == nil {
			return breaker.Admission{N: n}, true
		}
		gated = true
		adm := pr.Gate.Admit(ctx, n)
		if adm.N > best.N {
			best.N = adm.N
		}
		if adm.N <= 0 && !adm.Until.IsZero() && (best.Until.IsZero() || adm.Until.Before(best.Until)) {
			best.Until = adm.Until
		}
	}
	if !gated {
		return breaker.Admission{N: n}, true
	}
	return best, best.N > 0
}
