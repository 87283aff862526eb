package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
)

// maxBatch bounds the outcomes one record statement writes.
const maxBatch = 1000

// completer records outcomes in batches, one statement and one Redis
// pipeline each, while the executors go on calling and the producer claims.
// One batch is written at a time; outcomes that arrive meanwhile form the
// next. A batch is written at once when nothing else is outstanding (no
// claimed row still queued or in a call), when a 410 is in it, or when the
// executors are done; else after recordLinger or at maxBatch outcomes.
type completer struct {
	s       *Service
	ctx     context.Context
	in      <-chan result
	pending *atomic.Int64
}

func (c *completer) run() {
	var (
		batch    []result
		urgent   bool
		flushing chan struct{} // non-nil while a batch is written
		in       = c.in
		linger   = time.NewTimer(time.Hour)
		lingerC  <-chan time.Time
	)
	linger.Stop()
	defer linger.Stop()
	for in != nil || len(batch) > 0 || flushing != nil {
		select {
		case r, ok := <-in:
			if !ok {
				in = nil
				break
			}
			batch = append(batch, r)
			urgent = urgent || r.gone
			if len(batch) == 1 {
				linger.Reset(c.s.linger)
				lingerC = linger.C
			}
		case <-lingerC:
			lingerC, urgent = nil, true
		case <-flushing:
			flushing = nil
		}
		if flushing == nil && len(batch) > 0 &&
			(in == nil || urgent || len(batch) >= maxBatch || c.pending.Load() == 0) {
			// At most maxBatch a statement, even when outcomes piled up
			// behind a slow write: an unbounded batch makes the next write
			// slower still, until one runs past recordTimeout.
			n := min(len(batch), maxBatch)
			done, b := make(chan struct{}), batch[:n:n]
			go func() { defer close(done); c.s.record(c.ctx, b) }()
			rest := append([]result(nil), batch[n:]...)
			flushing, batch, urgent, lingerC = done, rest, len(rest) > 0, nil
			linger.Stop()
		}
	}
}

// record writes a batch of outcomes and caches the sent ones in one Redis
// pipeline, with fresh bounded contexts: the handler's may be canceled, the
// results must still land. When the write fails it keeps the outcomes and
// writes them again (persist); meanwhile no call starts.
func (s *Service) record(ctx context.Context, batch []result) {
	defer emit(s.signals.Recorded, len(batch))
	rctx, cancel := s.recordCtx(ctx)
	if s.gate != nil {
		// One report per batch, never a round trip per message; the
		// breaker writes the shared row at most once for it.
		s.gate.Report(rctx, tally(batch))
	} else {
		// Several providers: each breaker hears of its own calls.
		for _, p := range s.providers {
			if p.Gate != nil {
				p.Gate.Report(rctx, tally(ofProvider(batch, p)))
			}
		}
	}
	pend := make([]pendingOutcome, len(batch))
	paused := false
	disabled := map[*provider]bool{}
	for i, r := range batch {
		pend[i] = pendingOutcome{out: r.out, deadline: r.deadline}
		switch {
		case r.gone && len(s.providers) == 1:
			if !paused {
				s.pauseForGone(rctx)
				paused = true
			}
			s.logMessage(ctx, slog.LevelError, "WEBHOOK ENDPOINT GONE: sending paused for every worker", r.out, "reason", r.out.Error)
		case r.gone && r.prov != nil:
			if !disabled[r.prov] {
				s.disableForGone(rctx, r.prov)
				disabled[r.prov] = true
			}
			s.logMessage(ctx, slog.LevelError, "PROVIDER ENDPOINT GONE: provider disabled for every worker", r.out, "provider", r.prov.Name, "reason", r.out.Error)
		}
	}
	cancel()
	done, unwritten := s.persist(ctx, pend)

	rctx, cancel = s.recordCtx(ctx)
	defer cancel()
	var sent []cache.Sent
	for _, p := range pend {
		o := p.out
		if unwritten[o.ID] {
			continue // given up: counted and logged by persist
		}
		if !done.changed[o.ID] {
			s.lost.Add(1)
			s.logMessage(ctx, slog.LevelWarn, "outcome not recorded: the claim was taken over after its lease expired", o, "outcome", o.Status)
			continue
		}
		switch o.Status {
		case messaging.StatusSent:
			s.sent.Add(1)
			sent = append(sent, cache.Sent{ID: o.ID, MessageID: done.remoteID(o), SentAt: o.SentAt})
			s.logMessage(ctx, slog.LevelInfo, "message sent", o, "remote_message_id", done.remoteID(o))
		case messaging.StatusPending:
			s.retried.Add(1)
			s.logMessage(ctx, slog.LevelWarn, "delivery failed; will retry", o, "reason", o.Error, "retry_at", o.NextAt)
		case messaging.StatusFailed:
			s.failed.Add(1)
			s.logMessage(ctx, slog.LevelError, "delivery failed for good", o, "reason", o.Error)
		}
	}
	if len(sent) == 0 {
		return
	}
	if err := s.cache.PutSent(rctx, sent...); err != nil {
		s.cacheErrs.Add(int64(len(sent)))
		for range sent {
			s.m.CacheError()
		}
		s.log.Error("cache sent records; the database has them", "count", len(sent), "err", err)
	}
}

// pendingOutcome is an outcome not yet written.
type pendingOutcome struct {
	out      store.Outcome
	deadline time.Time // see Service.recordDeadline
	late     bool      // its deadline passed and it was given up
}

// written is what persist recorded: the ids whose row changed, and the
// remote id stored for those whose answer had to be stored in a safe form.
type written struct {
	changed map[string]bool
	safe    map[string]bool
}

// remoteID is the remote message id stored for o.
func (w written) remoteID(o store.Outcome) string {
	if w.safe[o.ID] {
		return ""
	}
	return o.RemoteID
}

// outcomeSet is a set of message ids.
type outcomeSet map[string]bool

// persist writes pend until every outcome is settled: recorded, or
// refused by the lease fence (its claim was taken over). While the write
// fails it tries again, 50 ms doubling to 2 s apart, and no call starts
// (recordFailed). An outcome whose deadline, shortly before its lease
// ends, passes is given up: logged once per batch with a count. A given-up
// outcome is still written with the others while the process runs: the
// fence makes that harmless if another worker took the row, and it lets
// the first write that works end the failing state when nothing else is
// left to write. Only when the service stops are given-up outcomes
// dropped; their rows come back after their lease. It returns what it
// recorded and the ids it dropped.
func (s *Service) persist(ctx context.Context, pend []pendingOutcome) (written, outcomeSet) {
	done := written{changed: map[string]bool{}, safe: map[string]bool{}}
	delay := retry.WriteFirst
	for {
		rctx, cancel := s.recordCtx(ctx)
		rest, err := s.write(rctx, pend, done)
		cancel()
		if err == nil {
			s.recordWorked()
			return done, nil
		}
		s.recordFailed(err)
		pend = rest
		var wait time.Duration
		wait, delay = retry.WriteWait(delay, rand.Float64()) //nolint:gosec // jitter, not a secret
		late, next := 0, time.Now().Add(wait)
		allLate := true
		for i := range pend {
			if !pend[i].late && !next.Before(pend[i].deadline) {
				pend[i].late = true
				late++
			}
			allLate = allLate && pend[i].late
		}
		if late > 0 {
			s.log.Error("outcomes given up: recording still fails and their lease ends soon; those messages are called again after it",
				"count", late, "err", err)
		}
		if allLate && (s.isDraining() || ctx.Err() != nil) {
			dropped := outcomeSet{}
			for _, p := range pend {
				dropped[p.out.ID] = true
			}
			return done, dropped
		}
		t := time.NewTimer(wait)
		<-t.C
	}
}

// answerNotStored replaces a provider's answer that PostgreSQL refused.
const answerNotStored = "answer could not be stored"

// safeOutcome is o without the parts of the provider's answer that could
// make PostgreSQL refuse it: the remote id is dropped and the error text
// replaced by a fixed one. The status stays, so the message still ends
// where its call says. changed is false when nothing could be removed.
func safeOutcome(o store.Outcome) (store.Outcome, bool) {
	safe := o
	safe.RemoteID = ""
	if safe.Error != "" {
		safe.Error = answerNotStored
	}
	return safe, safe.RemoteID != o.RemoteID || safe.Error != o.Error
}

// write records pend, one statement for the lot when it can. When
// PostgreSQL refuses the data of an outcome (store.IsDataError), the batch
// is halved until the good outcomes are recorded; one refused alone is
// written in its safe form (safeOutcome), and dropped when even that is
// refused: its row comes back after the lease. Any other failure stops it:
// it returns the outcomes not written with the error. Rows changed are
// added to w.
func (s *Service) write(ctx context.Context, pend []pendingOutcome, w written) ([]pendingOutcome, error) {
	if len(pend) == 0 {
		return nil, nil
	}
	outs := make([]store.Outcome, len(pend))
	for i, p := range pend {
		outs[i] = p.out
	}
	s.records.Add(1)
	got, err := s.store.RecordOutcomes(ctx, outs)
	if err == nil {
		for id := range got {
			w.changed[id] = true
		}
		return nil, nil
	}
	if !store.IsDataError(err) {
		return pend, err
	}
	if len(pend) == 1 {
		safe, changed := safeOutcome(pend[0].out)
		if !changed || w.safe[safe.ID] {
			s.logMessage(ctx, slog.LevelError, "outcome refused by the database even without the answer; the message returns after its lease", pend[0].out, "err", err)
			return nil, nil
		}
		s.logMessage(ctx, slog.LevelWarn, "the provider's answer could not be stored; outcome recorded without it", pend[0].out, "err", err)
		w.safe[safe.ID] = true
		one := pend[0]
		one.out = safe
		return s.write(ctx, []pendingOutcome{one}, w)
	}
	half := len(pend) / 2
	if rest, err := s.write(ctx, pend[:half], w); err != nil {
		return append(rest, pend[half:]...), err
	}
	return s.write(ctx, pend[half:], w)
}

// tally sums a batch's calls for the circuit breaker: a call that failed
// retryably counts against it, any other answer (2xx, 4xx, 410) for it; a
// message that was never sent (invalid) and a call cut at shutdown do not
// count. The probe's result is reported on its own.
func tally(batch []result) breaker.Tally {
	var t breaker.Tally
	for _, r := range batch {
		if !r.counts {
			continue
		}
		if r.retryable {
			t.LastError = r.out.Error
		}
		switch {
		case r.probe && r.retryable:
			t.Probe = breaker.ProbeFailed
		case r.probe:
			t.Probe = breaker.ProbeSucceeded
		default:
			t.Calls++
			if r.retryable {
				t.Failures++
			}
		}
	}
	return t
}

// ofProvider is the part of batch that called p.
func ofProvider(batch []result, p *provider) []result {
	var out []result
	for _, r := range batch {
		if r.prov == p {
			out = append(out, r)
		}
	}
	return out
}

// disableForGone handles a 410 with several providers: that provider is
// disabled for every worker, with the reason visible in the API, until an
// operator enables it; the others go on.
func (s *Service) disableForGone(ctx context.Context, p *provider) {
	why := fmt.Sprintf("disabled at %s: answered 410 Gone; fix PROVIDER_%s_URL or the receiver, then enable it",
		time.Now().UTC().Format(time.RFC3339), strings.ToUpper(p.Name))
	if p.Disabler == nil {
		return
	}
	if err := p.Disabler.Disable(ctx, why); err != nil {
		s.log.Error("disable provider after 410", "provider", p.Name, "err", err)
	}
}

// pauseForGone handles a 410: the receiver says the endpoint is gone for
// good, so sending pauses for every process, with the reason visible in the
// API, until an operator starts it again. One pause serves a whole batch.
// This process already started no call since the 410 was read (afterCall).
func (s *Service) pauseForGone(ctx context.Context) {
	why := fmt.Sprintf("paused at %s: webhook answered 410 Gone; fix WEBHOOK_URL or the receiver, then start sending again",
		time.Now().UTC().Format(time.RFC3339))
	if _, err := s.store.SetRunning(ctx, false, why); err != nil {
		s.log.Error("pause sending after 410", "err", err)
	}
	s.gone.CompareAndSwap(goneSeen, gonePaused)
}
