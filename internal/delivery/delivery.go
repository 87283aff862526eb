// Package delivery turns a dispatch tick into webhook calls: it claims due
// messages within the tick's budget, sends each once, and records what
// happened. It holds no transaction across a call and records every outcome
// with its own bounded context, so a shutdown or a slow receiver never loses
// a result.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// TaskDispatch is the asynq task type the scheduler enqueues once per tick.
const TaskDispatch = "messages:dispatch"

// Store is what delivery needs of PostgreSQL.
type Store interface {
	ReserveTick(ctx context.Context, budget int, minGap time.Duration, maxAttempts int) (bool, error)
	Claim(ctx context.Context, n int, lease time.Duration) ([]store.Claimed, error)
	RecordOutcomes(ctx context.Context, outs []store.Outcome) (map[string]bool, error)
	Release(ctx context.Context, cs []store.Claimed) (int64, error)
	SetRunning(ctx context.Context, running bool, reason string) (store.Control, error)
}

// Sender makes one webhook call.
type Sender interface {
	Send(ctx context.Context, r webhook.Request) (webhook.Response, error)
}

// Cache records sent messages for fast reads.
type Cache interface {
	PutSent(ctx context.Context, recs ...cache.Sent) error
}

// Gate is the shared circuit breaker's seam (issue 13): asked before a
// claim and right before each call starts, and told each batch's outcomes.
type Gate interface {
	Admit(ctx context.Context, n int) breaker.Admission
	Allow(ctx context.Context) (ok, probe bool)
	Report(ctx context.Context, t breaker.Tally)
}

var (
	_ Gate   = (*breaker.Breaker)(nil)
	_ Store  = (*store.Store)(nil)
	_ Sender = (*webhook.Client)(nil)
	_ Cache  = (*cache.Cache)(nil)
)

// Config tunes a Service.
type Config struct {
	// Budget is how many messages one tick may send, across all workers.
	Budget int
	// Interval is the time between ticks.
	Interval time.Duration
	// Concurrency bounds webhook calls in flight in this process.
	Concurrency int
	// MaxAttempts is how many calls a message gets before it fails.
	MaxAttempts int
	// Lease is how long a claim stays reserved for this worker.
	Lease time.Duration
	// BackoffBase and BackoffMax shape the delay before a retry:
	// base*2^(attempt-1), capped, with jitter.
	BackoffBase, BackoffMax time.Duration
	// RecordTimeout bounds writing one outcome after the call returned.
	RecordTimeout time.Duration
	// MaxContent is the longest content, in characters, that is sent;
	// longer rows (inserted around the API) fail without a call.
	MaxContent int
	// Retry, when set, is the delay before each retry (RETRY_SCHEDULE); it
	// replaces BackoffBase and BackoffMax.
	Retry retry.Schedule
	// Breaker, when set, is the circuit breaker every worker shares.
	Breaker Gate
}

func (c *Config) setDefaults() {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = 1
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 5 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Minute
	}
	if c.RecordTimeout <= 0 {
		c.RecordTimeout = 10 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.MaxContent <= 0 {
		c.MaxContent = 255
	}
}

// Stats are running totals for metrics and tests.
type Stats struct {
	// Dispatches counts dispatch runs; Ticks counts those that refilled the
	// budget. With several scheduler replicas Dispatches exceeds Ticks.
	Dispatches, Ticks                                        int64
	Sent, Retried, Failed, Released, LostClaims, CacheErrors int64
}

// Service runs deliveries for one worker process.
type Service struct {
	cfg   Config
	store Store
	send  Sender
	cache Cache
	log   *slog.Logger
	now   func() time.Time
	m     *metrics.Delivery

	slots chan struct{} // one token per webhook call allowed in flight
	kick  chan struct{} // a tick refilled the budget: the driver should claim

	draining  chan struct{} // closed: claim nothing more, start nothing more
	drainOnce sync.Once
	callCtx   context.Context // canceled when the grace period runs out
	abort     context.CancelFunc
	inflight  sync.WaitGroup // deliveries started and not yet recorded

	resumeAt atomic.Int64 // unix nanoseconds: the breaker said claim nothing before

	dispatches, ticks                                atomic.Int64
	sent, retried, failed, released, lost, cacheErrs atomic.Int64
}

// New builds a Service. now is the clock used for sent_at and backoff; m may
// be nil.
func New(cfg Config, st Store, send Sender, c Cache, log *slog.Logger, now func() time.Time, m *metrics.Delivery) *Service {
	cfg.setDefaults()
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, store: st, send: send, cache: c, log: log, now: now, m: m,
		slots:    make(chan struct{}, cfg.Concurrency),
		kick:     make(chan struct{}, 1),
		draining: make(chan struct{}),
		callCtx:  ctx,
		abort:    cancel,
	}
}

// Drain stops claiming and starting deliveries; calls in flight go on.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Abort cancels the calls still in flight (the grace period is over). Their
// outcomes are still recorded, as retryable failures.
func (s *Service) Abort() { s.Drain(); s.abort() }

// Wait blocks until every started delivery has recorded its outcome (or
// failed to, leaving the row to its lease).
func (s *Service) Wait() { s.inflight.Wait() }

// Stats returns the running totals.
func (s *Service) Stats() Stats {
	return Stats{
		Dispatches: s.dispatches.Load(), Ticks: s.ticks.Load(),
		Sent: s.sent.Load(), Retried: s.retried.Load(), Failed: s.failed.Load(),
		Released: s.released.Load(), LostClaims: s.lost.Load(), CacheErrors: s.cacheErrs.Load(),
	}
}

// minGap is how close two ticks may start and still both refill the budget.
// It is a little under the interval so a late tick from the one scheduler is
// not mistaken for a replica's duplicate.
func (s *Service) minGap() time.Duration { return s.cfg.Interval * 9 / 10 }

// HandleDispatch is the asynq handler of TaskDispatch. It starts the tick
// and wakes the process's driver (Run), and returns at once: the task never
// outlives its timeout, and however many dispatch tasks a process runs at
// once, it has one claim loop, so claims do not queue on the budget row.
func (s *Service) HandleDispatch(ctx context.Context, _ *asynq.Task) error {
	if s.isDraining() {
		return nil
	}
	if err := s.reserve(ctx); err != nil {
		return err
	}
	select {
	case s.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// Run is the process's one claim loop: each time a tick wakes it, it drives
// until the budget is spent or nothing is due, then waits for the next. It
// returns once the service drains (after recording every outcome) or ctx
// ends. A drive that fails is logged and retried at the next tick, no sooner.
func (s *Service) Run(ctx context.Context) {
	for {
		// The breaker stopped the last drive: drive again when it allows,
		// without waiting for the next tick.
		var resume <-chan time.Time
		timer := time.NewTimer(time.Hour)
		if at := s.resumeAt.Swap(0); at != 0 {
			timer.Reset(max(time.Until(time.Unix(0, at)), time.Millisecond))
			resume = timer.C
		}
		select {
		case <-s.kick:
		case <-resume:
		case <-s.draining:
			timer.Stop()
			return
		case <-ctx.Done():
			timer.Stop()
			return
		}
		timer.Stop()
		if _, err := s.Drive(ctx); err != nil {
			s.log.Error("drive stopped; the next tick tries again", "err", err)
		}
	}
}

// Dispatch runs one tick synchronously: it starts the tick, then sends what
// the budget allows and returns how many deliveries it started. Tools and
// tests use it; workers use HandleDispatch and Run.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	if s.isDraining() {
		return 0, nil
	}
	if err := s.reserve(ctx); err != nil {
		return 0, err
	}
	return s.Drive(ctx)
}

// reserve refills the shared budget unless another tick did so moments ago.
// A duplicate tick (a second scheduler replica, or a task run again) spends
// only what is left, so the budget holds.
func (s *Service) reserve(ctx context.Context) error {
	s.dispatches.Add(1)
	fresh, err := s.store.ReserveTick(ctx, s.cfg.Budget, s.minGap(), s.cfg.MaxAttempts)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	if fresh {
		s.ticks.Add(1)
	}
	s.log.Debug("dispatch tick", "refilled", fresh, "budget", s.cfg.Budget)
	return nil
}

// Drive claims and sends until the budget is spent, nothing is due, sending
// is stopped, or the service drains. It returns how many deliveries it
// started, after all of them recorded their outcome.
//
// One loop claims rows as call slots free up and records outcomes as calls
// finish, in batches: a batch is written when every call in flight has
// returned, when half the slots' worth of outcomes wait, when the oldest has
// waited recordLinger, or at once after a 410. Under load a batch of messages
// so costs a claim and a record round trip and one Redis pipeline; at low
// load nothing waits.
func (s *Service) Drive(ctx context.Context) (int, error) {
	results := make(chan result, cap(s.slots))
	var (
		started, inflight int
		claiming          = true
		firstErr          error
		pending           []result
		gone              bool             // a 410 waits in pending
		linger            <-chan time.Time // fires recordLinger after pending's first
	)
	flush := func() {
		s.record(ctx, pending)
		s.inflight.Add(-len(pending))
		pending, gone, linger = nil, false, nil
	}
	add := func(r result) {
		inflight--
		pending = append(pending, r)
		gone = gone || r.gone
		if len(pending) == 1 {
			linger = time.After(recordLinger)
		}
	}
	for claiming || inflight > 0 || len(pending) > 0 {
		// Take every finished call first: a 410 must pause sending before
		// the slot it freed is claimed again.
		for taken := true; taken; {
			select {
			case r := <-results:
				add(r)
			default:
				taken = false
			}
		}
		if len(pending) > 0 && (inflight == 0 || gone || len(pending) >= max(cap(s.slots)/2, 1)) {
			flush()
			continue
		}
		var free chan struct{}
		var drain, done <-chan struct{}
		if claiming {
			free, drain, done = s.slots, s.draining, ctx.Done()
		}
		select {
		case r := <-results:
			add(r)
		case <-linger:
			flush()
		case free <- struct{}{}:
			n := 1 + s.acquireMore()
			if s.isDraining() {
				s.release(n)
				claiming = false
				continue
			}
			if s.cfg.Breaker != nil {
				// The breaker's seam before a claim: while open, claim
				// nothing until it may probe.
				adm := s.cfg.Breaker.Admit(ctx, n)
				if adm.N == 0 {
					s.release(n)
					s.resumeAt.Store(adm.Until.UnixNano())
					claiming = false
					continue
				}
				s.release(n - adm.N)
				n = adm.N
			}
			t0 := time.Now()
			claimed, err := s.claim(ctx, n)
			if err != nil {
				s.release(n)
				firstErr, claiming = fmt.Errorf("dispatch: %w", err), false
				continue
			}
			s.m.Claim(len(claimed), time.Since(t0))
			s.release(n - len(claimed))
			if len(claimed) == 0 {
				claiming = false
				continue
			}
			if s.isDraining() {
				s.handBack(ctx, claimed)
				s.release(len(claimed))
				claiming = false
				continue
			}
			var refused []store.Claimed
			for _, c := range claimed {
				// The breaker's seam right before a call starts: a row
				// it refuses goes back uncharged.
				probe := false
				if s.cfg.Breaker != nil {
					var ok bool
					if ok, probe = s.cfg.Breaker.Allow(ctx); !ok {
						refused = append(refused, c)
						continue
					}
				}
				started++
				inflight++
				s.inflight.Add(1)
				go func() {
					// The result is queued before the slot frees, so a
					// 410 is seen before the slot can be claimed again.
					r := s.call(c)
					r.probe = probe
					results <- r
					s.release(1)
				}()
			}
			if len(refused) > 0 {
				s.handBack(ctx, refused)
				s.release(len(refused))
				claiming = false
			}
		case <-drain:
			claiming = false
		case <-done:
			claiming = false
		}
	}
	return started, firstErr
}

// recordLinger is the longest an outcome waits for others to share its
// statement: small next to a webhook call, long enough to batch under load.
const recordLinger = 2 * time.Millisecond

// claim runs one claim statement with a context that ends only by its own
// timeout: a claim abandoned after PostgreSQL committed it would leave its
// rows claimed, unsent, until their lease ran out.
func (s *Service) claim(ctx context.Context, n int) ([]store.Claimed, error) {
	cctx, cancel := s.recordCtx(ctx)
	defer cancel()
	return s.store.Claim(cctx, n, s.cfg.Lease)
}

// acquireMore takes as many more free call slots as there are, up to the
// concurrency, so a claim takes only rows that can start at once: no
// message waits in this process behind a slow call.
func (s *Service) acquireMore() int {
	n := 0
	for n < cap(s.slots)-1 {
		select {
		case s.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (s *Service) release(n int) {
	for range n {
		<-s.slots
	}
}

func (s *Service) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// recordCtx is a fresh, bounded context for writing an outcome: the
// handler's context may already be canceled, the result must still land.
func (s *Service) recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RecordTimeout)
}

func (s *Service) handBack(ctx context.Context, cs []store.Claimed) {
	rctx, cancel := s.recordCtx(ctx)
	defer cancel()
	n, err := s.store.Release(rctx, cs)
	if err != nil {
		s.log.Error("hand back claimed messages; they return after their lease", "count", len(cs), "err", err)
		return
	}
	s.released.Add(n)
	s.m.Released(int(n))
	s.log.Info("handed back claimed messages", "count", n)
}

// result is one finished call, waiting to be recorded.
type result struct {
	out       store.Outcome
	gone      bool // the receiver answered 410
	called    bool // a webhook call was made and ended on its own (not cut at shutdown)
	retryable bool // ... and failed retryably: it counts against the breaker
	probe     bool // the call was the breaker's half-open probe
}

// call makes one webhook call and decides the outcome by the delivery rules.
// The call ends by the webhook timeout or by Abort, not by the handler's
// context: a started call is allowed to finish.
func (s *Service) call(c store.Claimed) result {
	// Rows inserted around the API may break the rules the receiver
	// relies on: they fail at once with the reason, and the queue moves on.
	if err := message.Validate(c.Content, c.PhoneNumber, s.cfg.MaxContent); err != nil {
		s.m.Outcome("failed", "invalid", 0)
		return result{out: store.Outcome{Claimed: c, Status: store.StatusFailed, Error: "not sent: invalid message: " + err.Error()}}
	}
	t0 := time.Now()
	resp, err := s.send.Send(s.callCtx, webhook.Request{ID: c.ID, To: c.PhoneNumber, Content: c.Content})
	took := time.Since(t0)
	if err == nil {
		s.m.Outcome("sent", "ok", took)
		return result{called: true, out: store.Outcome{
			Claimed: c, Status: store.StatusSent, RemoteID: resp.MessageID,
			SentAt: s.now().UTC().Truncate(time.Microsecond), // PostgreSQL's precision
		}}
	}
	var werr *webhook.Error
	if !errors.As(err, &werr) {
		werr = &webhook.Error{Retryable: true, Reason: err.Error(), Err: err}
	}
	reason := werr.Error()
	cut := s.callCtx.Err() != nil // we cut the call short at shutdown; the receiver is not to blame
	called := !cut
	switch {
	case werr.Gone():
		// The message is not at fault: it waits, due at once, for sending
		// to be started again.
		s.m.Outcome("retried", werr.Kind(), took)
		return result{gone: true, called: called, out: store.Outcome{Claimed: c, Status: store.StatusPending, NextAt: s.now(), Error: reason}}
	case !werr.Retryable:
		s.m.Outcome("failed", werr.Kind(), took)
		return result{called: called, out: store.Outcome{Claimed: c, Status: store.StatusFailed, Error: reason}}
	case c.Attempt >= s.cfg.MaxAttempts:
		s.m.Outcome("failed", werr.Kind(), took)
		return result{called: called, retryable: true, out: store.Outcome{Claimed: c, Status: store.StatusFailed,
			Error: fmt.Sprintf("gave up after %d attempts: %s", c.Attempt, reason)}}
	}
	s.m.Outcome("retried", werr.Kind(), took)
	var delay time.Duration
	switch {
	case cut:
	case s.cfg.Retry != nil:
		delay = s.cfg.Retry.Delay(c.Attempt, werr.RetryAfter, rand.Float64())
	case werr.RetryAfter > 0:
		delay = werr.RetryAfter
	default:
		delay = Backoff(c.Attempt, s.cfg.BackoffBase, s.cfg.BackoffMax, rand.Float64())
	}
	return result{called: called, retryable: true, out: store.Outcome{Claimed: c, Status: store.StatusPending, NextAt: s.now().Add(delay), Error: reason}}
}

// record writes a batch of outcomes in one statement and caches the sent
// ones in one Redis pipeline, with a fresh bounded context: the handler's
// may be canceled, the results must still land. A failed write loses
// nothing: the rows come back after their lease and are sent again with the
// same Idempotency-Key.
func (s *Service) record(ctx context.Context, batch []result) {
	rctx, cancel := s.recordCtx(ctx)
	defer cancel()
	if s.cfg.Breaker != nil {
		// One report per batch; the breaker writes it at most once.
		s.cfg.Breaker.Report(rctx, tally(batch))
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
	if err := s.cache.PutSent(rctx, sent...); err != nil {
		s.cacheErrs.Add(int64(len(sent)))
		for range sent {
			s.m.CacheError()
		}
		s.log.Error("cache sent records; the database has them", "count", len(sent), "err", err)
	}
}

// tally sums a batch's calls for the breaker: a call that failed
// retryably counts against it, any other answer (2xx, 4xx, 410) for it; a
// message that was never sent and a call cut at shutdown do not count. The
// probe's result is reported on its own.
func tally(batch []result) breaker.Tally {
	var t breaker.Tally
	for _, r := range batch {
		if !r.called {
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

// logMessage writes one line about a message, with its id and attempt, and
// builds nothing when the level is off.
func (s *Service) logMessage(ctx context.Context, level slog.Level, msg string, o store.Outcome, args ...any) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.Log(ctx, level, msg, append([]any{"message_id", o.ID, "attempt", o.Attempt}, args...)...)
}

// pauseForGone handles a 410: the receiver says the endpoint is gone for
// good, so sending pauses for every process, with the reason visible in the
// API, until an operator starts it again. One pause serves a whole batch.
func (s *Service) pauseForGone(ctx context.Context) {
	why := fmt.Sprintf("paused at %s: webhook answered 410 Gone; fix WEBHOOK_URL or the receiver, then start sending again",
		s.now().UTC().Format(time.RFC3339))
	if _, err := s.store.SetRunning(ctx, false, why); err != nil {
		s.log.Error("pause sending after 410", "err", err)
	}
}

// Backoff is the delay before retry number attempt (1-based): base doubled
// per attempt, capped at max, then spread over [d/2, d) by jitter in [0,1)
// so that messages failing together do not retry together.
func Backoff(attempt int, base, max time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(jitter*float64(d/2))
}
