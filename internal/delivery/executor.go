package delivery

import (
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// executor makes webhook calls, one at a time, for rows the producer hands
// it; a drive runs Concurrency of them. It reports each result to the
// completer and then tells the producer its slot is free.
type executor struct {
	s        *Service
	ready    <-chan job
	returned chan<- job
	finished chan<- time.Duration
	results  chan<- result
	started  *atomic.Int64
	pending  *atomic.Int64
}

func (e *executor) run() {
	for j := range e.ready {
		if !e.s.beforeCall() {
			e.returned <- j // the producer hands it back
			continue
		}
		e.started.Add(1)
		call := e.s.call(j)
		d := Decide(call, time.Now(), e.s.policy)
		e.s.afterCall(d)
		e.pending.Add(-1)
		e.results <- result{out: d.Outcome, gone: d.Gone}
		e.finished <- call.Duration
	}
}

// beforeCall is checked right before each call starts, once the executor
// holds its slot: no call starts once the service drains or a 410 was read
// in this process. (A shared circuit breaker's Allow belongs here too.)
func (s *Service) beforeCall() bool {
	return !s.isDraining() && !s.isGone()
}

// afterCall sees each decision right after its call returned, before the
// executor takes another row: a 410 stops every executor of this process
// from starting another call. (A shared circuit breaker's Report belongs
// here too.)
func (s *Service) afterCall(d Decision) {
	if d.Gone {
		s.gone.CompareAndSwap(goneNo, goneSeen)
	}
	s.m.Outcome(d.Metric, d.Reason, d.Outcome.Duration)
}

// call validates one claimed row and, when it is sendable, makes its
// webhook call. The call ends by the webhook timeout or by Abort, not by the
// handler's context: a started call is allowed to finish.
func (s *Service) call(j job) Call {
	c := Call{Claimed: j.c}
	if err := message.ValidateClaimed(j.c.ID, j.c.Content, j.c.PhoneNumber, s.cfg.MaxContent); err != nil {
		c.Invalid = err // no call: a zero StartedAt writes no attempt row
		return c
	}
	c.StartedAt = time.Now()
	c.Resp, c.Err = s.send.Send(s.callCtx, webhook.Request{ID: j.c.ID, To: j.c.PhoneNumber, Content: j.c.Content})
	c.Duration = time.Since(c.StartedAt)
	c.Aborted = c.Err != nil && s.callCtx.Err() != nil
	return c
}
