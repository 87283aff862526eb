package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/store"
)

// maxBatch bounds the outcomes one record statement writes.
const maxBatch = 1000

// completer records outcomes in batches, one statement and one Redis
// pipeline each, while the executors go on calling and the producer claims.
// One batch is written at a time; outcomes that arrive meanwhile form the
// next. A batch is written at once when nothing else is outstanding (no
// claimed row still queued or in a call), when a 410 is in it, or when the
// executors are done; else after RecordLinger or at maxBatch outcomes.
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
				linger.Reset(c.s.cfg.RecordLinger)
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
			// behind a slow write: an unbounded batch made the next write
			// slower still, until one of 7,296 rows ran past RecordTimeout.
			n := min(len(batch), maxBatch)
			done, b := make(chan struct{}), batch[:n:n]
			go func() { defer close(done); c.s.record(c.ctx, b) }()
			rest := append([]result(nil), batch[n:]...)
			flushing, batch, urgent, lingerC = done, rest, len(rest) > 0, nil
			linger.Stop()
		}
	}
}

// record writes a batch of outcomes in one statement and caches the sent
// ones in one Redis pipeline, with a fresh bounded context: the handler's
// may be canceled, the results must still land. A failed write loses
// nothing: the rows come back after their lease and are sent again with the
// same Idempotency-Key.
func (s *Service) record(ctx context.Context, batch []result) {
	rctx, cancel := s.recordCtx(ctx)
	defer cancel()
	if s.gate != nil {
		// One report per batch, never a round trip per message; the
		// breaker writes the shared row at most once for it.
		s.gate.Report(rctx, tally(batch))
	}
	outs := make([]store.Outcome, len(batch))
	paused := false
	for i, r := range batch {
		outs[i] = r.out
		if r.gone {
			if !paused {
				s.pauseForGone(rctx)
				paused = true
			}
			s.logMessage(ctx, slog.LevelError, "WEBHOOK ENDPOINT GONE: sending paused for every worker", r.out, "reason", r.out.Error)
		}
	}
	s.records.Add(1)
	done, err := s.store.RecordOutcomes(rctx, outs)
	if err != nil {
		s.log.Error("record outcomes failed; the messages return after their lease", "count", len(outs), "err", err)
		return
	}
	var sent []cache.Sent
	for _, o := range outs {
		if !done[o.ID] {
			s.lost.Add(1)
			s.logMessage(ctx, slog.LevelWarn, "outcome not recorded: the claim was taken over after its lease expired", o, "outcome", o.Status)
			continue
		}
		switch o.Status {
		case store.StatusSent:
			s.sent.Add(1)
			sent = append(sent, cache.Sent{ID: o.ID, MessageID: o.RemoteID, SentAt: o.SentAt})
			s.logMessage(ctx, slog.LevelInfo, "message sent", o, "remote_message_id", o.RemoteID)
		case store.StatusPending:
			s.retried.Add(1)
			s.logMessage(ctx, slog.LevelWarn, "delivery failed; will retry", o, "reason", o.Error, "retry_at", o.NextAt)
		case store.StatusFailed:
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
