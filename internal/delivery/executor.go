package delivery

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// executor makes webhook calls, one at a time, for rows the producer hands
// it; Run runs Concurrency of them. It reports each result to the
// completer and then tells the producer its slot is free.
type executor struct {
	s        *Service
	ctx      context.Context
	ready    <-chan job
	returned chan<- job
	finished chan<- time.Duration
	results  chan<- result
	pending  *atomic.Int64
}

func (e *executor) run() {
	for j := range e.ready {
		g := e.s.beforeCall(e.ctx)
		if g != callGo && g != callProbe {
			j.refused = g == callRefused
			e.returned <- j // the producer hands it back
			continue
		}
		ctx, span := e.s.startAttempt(j)
		call := e.s.call(ctx, j)
		d := Decide(call, time.Now(), e.s.policy)
		endAttempt(span, d)
		r := result{
			out: d.Outcome, gone: d.Gone,
			counts:    !call.StartedAt.IsZero() && !call.Aborted,
			retryable: d.Retryable, probe: g == callProbe,
			deadline: e.s.recordDeadline(j.claimedAt),
		}
		e.s.afterCall(d, r)
		e.pending.Add(-1)
		e.results <- r
		e.finished <- call.Duration
	}
}

// gateAnswer is beforeCall's answer.
type gateAnswer int

const (
	callGo      gateAnswer = iota // start the call
	callProbe                     // start it: it is the breaker's half-open probe
	callStop                      // the service drains or a 410 was read
	callRefused                   // the circuit breaker is not closed
	callHeld                      // outcomes cannot be recorded now
)

// beforeCall is checked right before each call starts, once the executor
// holds its slot: no call starts once the service drains or a 410 was read
// in this process, nor while outcomes cannot be recorded (see mayStart),
// nor while the shared circuit breaker refuses calls. A row not started
// goes back to the producer: a refused one is handed back uncharged, a
// held one waits in the queue until records work.
// The breaker answers from its cached view, reading the shared row only
// when the view is stale; it allows the one half-open probe only to the
// process that won it, once.
func (s *Service) beforeCall(ctx context.Context) gateAnswer {
	if a := mayStart(s.isDraining(), s.isGone(), s.recordFailing()); a != callGo {
		return a
	}
	if s.gate == nil {
		return callGo
	}
	switch ok, probe := s.gate.Allow(ctx); {
	case !ok:
		return callRefused
	case probe:
		return callProbe
	}
	return callGo
}

// afterCall sees each decision right after its call returned, before the
// executor takes another row: a 410 stops every executor of this process
// from starting another call. The circuit breaker notes the call in
// memory; the completer reports it, once per batch.
func (s *Service) afterCall(d Decision, r result) {
	if d.Gone {
		s.gone.CompareAndSwap(goneNo, goneSeen)
	}
	if s.gate != nil && r.counts && !r.probe {
		// In memory only: this process stops calling as soon as its own
		// failures would trip the breaker, before the completer writes them.
		s.gate.Observe(r.retryable)
	}
	s.m.Outcome(d.Metric, d.Reason, d.Outcome.Duration)
}

// call validates one claimed row (message.ValidateClaimed, then
// ALLOWED_COUNTRIES) and, when it is sendable, makes its
// webhook call. The call ends by the webhook timeout or by Abort (ctx is
// the attempt's span under the service's call context), not by the
// handler's context: a started call is allowed to finish. A row the API
// created had its number read, stored in E.164 and its country checked at
// the create, so only rows other systems inserted are read with the phone
// library here.
func (s *Service) call(ctx context.Context, j job) Call {
	c := Call{Claimed: j.c}
	to, err := message.ValidateClaimed(j.c.ID, j.c.Content, j.c.PhoneNumber, s.cfg.MaxContent, j.c.PhoneChecked)
	if err == nil && !j.c.PhoneChecked && !s.cfg.Countries.Allows(to) {
		err = &message.CountryError{Region: message.Region(to)}
	}
	if err != nil {
		c.Invalid = err // no call: a zero StartedAt writes no attempt row
		return c
	}
	c.StartedAt = time.Now()
	// The webhook receives the number's E.164 form, which is what the API
	// stores; a row inserted around the API in another form is sent so too.
	c.Resp, c.Err = s.send.Send(ctx, webhook.Request{ID: j.c.ID, To: to, Content: j.c.Content})
	c.Duration = time.Since(c.StartedAt)
	c.Aborted = c.Err != nil && s.callCtx.Err() != nil
	return c
}
