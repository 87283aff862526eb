package delivery

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// executor makes webhook calls, one at a time, for rows the producer hands
// it; Run runs Concurrency of them. Before each call it checks the service
// may start one (mayStart), then chooses the row's provider (choose): a
// row no provider can take now goes back to the producer uncharged. It
// reports each result to the completer and then tells the producer its
// slot is free.
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
		if a := mayStart(e.s.isDraining(), e.s.isGone(), e.s.recordFailing()); a != callGo {
			e.returned <- j // the producer hands it back or keeps it
			continue
		}
		to, invalid := e.s.validate(j)
		var (
			pk    pick
			chain []string
		)
		if invalid == nil {
			chain = e.s.chain(to)
			pk = e.s.choose(e.ctx, j.c, chain)
			if pk.p == nil {
				j.refused, j.retryAt = pk.refused, pk.retryAt
				e.returned <- j // handed back uncharged
				continue
			}
		}
		name := ""
		if pk.p != nil {
			name = pk.p.Name
		}
		ctx, span := e.s.startAttempt(j, name)
		call := e.s.call(ctx, j, to, invalid, pk.p)
		call.Provider, call.Round, call.Chain = name, pk.round, len(chain)
		if call.Err != nil && len(chain) > 1 {
			call.Failover = e.s.failover(e.ctx, chain, pk.round, name)
		}
		d := Decide(call, time.Now(), e.s.policy)
		endAttempt(span, d)
		r := result{
			out: d.Outcome, gone: d.Gone, prov: pk.p,
			counts:    !call.StartedAt.IsZero() && !call.Aborted,
			retryable: d.Retryable, probe: pk.probe,
			deadline: e.s.recordDeadline(j.claimedAt),
		}
		e.s.afterCall(d, r)
		e.pending.Add(-1)
		e.results <- r
		e.finished <- call.Duration
	}
}

// gateAnswer is mayStart's answer, asked right before each call once the
// executor holds its slot; then choose asks the providers' breakers.
type gateAnswer int

const (
	callGo   gateAnswer = iota // start the call
	callStop                   // the service drains or a 410 was read
	callHeld                   // outcomes cannot be recorded now
)

// afterCall sees each decision right after its call returned, before the
// executor takes another row: a 410 stops every executor of this process
// from starting another call. The circuit breaker notes the call in
// memory; the completer reports it, once per batch.
func (s *Service) afterCall(d Decision, r result) {
	if d.Gone {
		if len(s.providers) == 1 {
			s.gone.CompareAndSwap(goneNo, goneSeen)
		} else {
			// Several providers: only this one stops, here at once and
			// for every worker once the completer wrote it.
			r.prov.offUntil.Store(time.Now().Add(localOff).UnixNano())
		}
	}
	if r.prov != nil && r.prov.Gate != nil && r.counts && !r.probe {
		// In memory only: this process stops calling as soon as its own
		// failures would trip the breaker, before the completer writes them.
		r.prov.Gate.Observe(r.retryable)
	}
	s.m.Outcome(d.Metric, d.Reason, d.Outcome.Duration)
	if r.prov != nil && r.counts {
		s.pm.Call(r.prov.Name, d.Metric, d.Outcome.Duration)
	}
}

// validate checks one claimed row (message.ValidateClaimed, then
// ALLOWED_COUNTRIES) and gives the number to send to. A row the API
// created had its number read, stored in E.164 and its country checked at
// the create, so only rows other systems inserted are read with the phone
// library here.
func (s *Service) validate(j job) (string, error) {
	to, err := message.ValidateClaimed(j.c.ID, j.c.Content, j.c.PhoneNumber, s.cfg.MaxContent, j.c.PhoneChecked)
	if err == nil && !j.c.PhoneChecked && !s.cfg.Countries.Allows(to) {
		err = &message.CountryError{Region: message.Region(to)}
	}
	return to, err
}

// call makes the webhook call of a valid row to provider p; an invalid
// row makes no call. The call ends by the webhook timeout or by Abort (ctx
// is the attempt's span under the service's call context), not by the
// handler's context: a started call is allowed to finish.
func (s *Service) call(ctx context.Context, j job, to string, invalid error, p *provider) Call {
	c := Call{Claimed: j.c}
	if invalid != nil {
		c.Invalid = invalid // no call: a zero StartedAt writes no attempt row
		return c
	}
	c.StartedAt = time.Now()
	// The webhook receives the number's E.164 form, which is what the API
	// stores; a row inserted around the API in another form is sent so too.
	c.Resp, c.Err = p.Sender.Send(ctx, webhook.Request{ID: j.c.ID, To: to, Content: j.c.Content})
	c.Duration = time.Since(c.StartedAt)
	c.Aborted = c.Err != nil && s.callCtx.Err() != nil
	return c
}
