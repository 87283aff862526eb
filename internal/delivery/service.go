// Package delivery turns a dispatch tick into webhook calls: it claims due
// messages within the tick's budget, sends each once, and records what
// happened. It holds no transaction across a call and records every outcome
// with its own bounded context, so a shutdown or a slow receiver never loses
// a result.
//
// The engine has three parts with one job each, in the manner of River's
// producer and jobcompleter:
//
//   - the producer (producer.go) claims ahead into a short local queue,
//     bounded by count and by age, and hands back what never started;
//   - the executors (executor.go) take rows from the queue and make the
//     calls, MAX_CONCURRENT_JOBS at a time;
//   - the completer (completer.go) records outcomes in batches, one
//     statement and one Redis pipeline each, while the next claim runs.
//
// What becomes of a call is decided by Decide (decide.go), a pure function.
package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/tracing"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// Store is what delivery needs of PostgreSQL.
type Store interface {
	ReserveTick(ctx context.Context, budget int, minGap time.Duration, maxAttempts int) (bool, error)
	Claim(ctx context.Context, n int, lease time.Duration, maxAttempts int) ([]store.Claimed, error)
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

// Gate is the shared circuit breaker's seam: the producer asks
// it how many calls may start before each claim, each executor asks it
// right before a call starts and tells it (in memory) how the call ended,
// and the completer reports each batch's outcomes, which the breaker
// writes.
type Gate interface {
	Admit(ctx context.Context, n int) breaker.Admission
	Allow(ctx context.Context) (ok, probe bool)
	Observe(retryable bool)
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
	// RetryDelay spaces retries; by default ExponentialBackoff(BackoffBase,
	// BackoffMax).
	RetryDelay RetryDelay
	// BackoffBase and BackoffMax shape the default RetryDelay:
	// base*2^(attempt-1), capped, with jitter (default 5 s and 30 min).
	BackoffBase, BackoffMax time.Duration
	// MaxContent is the longest content, in characters, that is sent;
	// longer rows (inserted around the API) fail without a call.
	MaxContent int
	// Countries are the regions rows may be sent to (ALLOWED_COUNTRIES);
	// a row for any other fails with reason country_not_allowed, without
	// a call. Empty: every country.
	Countries message.Countries
	// QueueSize is the most claimed rows that may wait for a free call
	// slot (default QueueFactor × Concurrency). The producer queues that
	// many only while calls are fast; see MaxQueueWait.
	QueueSize int
	// MaxQueueWait bounds how long a claimed row should wait for a call
	// slot: the producer claims ahead no deeper than half of it at the
	// recent call duration, and stops claiming ahead when a row waits this
	// long (default 1 s).
	MaxQueueWait time.Duration
}

// recordTimeout bounds one claim, record or hand-back statement, even after
// shutdown canceled the caller's context.
const recordTimeout = 10 * time.Second

// recordLinger is the longest an outcome waits for others to share its
// statement while calls are in flight.
const recordLinger = 10 * time.Millisecond

// QueueFactor sets the default QueueSize: how many times Concurrency the
// claimed rows waiting for a slot may number. Bigger claims cost fewer
// statements a message, so a deeper queue drains a backlog faster; the
// queue's age bound (MaxQueueWait) keeps it from holding rows long when
// calls are slow. docs/benchmarks.md has the drain rates per queue depth.
const QueueFactor = 8

func (c *Config) setDefaults() {
	c.Concurrency = max(c.Concurrency, 1)
	c.MaxAttempts = max(c.MaxAttempts, 1)
	if c.BackoffBase <= 0 {
		c.BackoffBase = 5 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Minute
	}
	if c.RetryDelay == nil {
		c.RetryDelay = ExponentialBackoff(c.BackoffBase, c.BackoffMax)
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.MaxContent <= 0 {
		c.MaxContent = 255
	}
	if c.QueueSize <= 0 {
		c.QueueSize = QueueFactor * c.Concurrency
	}
	if c.MaxQueueWait <= 0 {
		c.MaxQueueWait = time.Second
	}
}

// Params are a Service's configuration and dependencies.
type Params struct {
	Config Config
	Store  Store
	Sender Sender
	Cache  Cache
	Log    *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Delivery
	// Breaker, when set, is the circuit breaker every worker shares.
	Breaker Gate
	// Providers, when set, are the providers in order of preference,
	// each with its own sender, breaker and rate limit; Sender and
	// Breaker are then unused. Unset: one provider, default, of Sender
	// and Breaker.
	Providers []Provider
	// Router gives the chain of provider names for an E.164 number
	// (ROUTES); nil: every provider in order.
	Router func(to string) []string
	// Limiter takes the providers' rate limits; nil: no limits.
	Limiter Limiter
	// ProviderMetrics may be nil.
	ProviderMetrics *metrics.Providers
	// Ticks, when set, hears of every fresh tick this process starts, so
	// that the other workers can be woken (see Wake).
	Ticks TickAnnouncer
	// Signals tells a test what the engine does; nil in production.
	Signals *TestSignals
	// Tracing makes each attempt a span in its message's trace; nil is
	// tracing.Off.
	Tracing *tracing.Tracing
}

// TickAnnouncer tells the other worker processes that a tick started.
type TickAnnouncer interface {
	TickStarted(ctx context.Context) error
}

// Stats are running totals for metrics and tests.
type Stats struct {
	// Dispatches counts dispatch runs; Ticks counts those that refilled the
	// budget. With several scheduler replicas Dispatches exceeds Ticks.
	Dispatches, Ticks                                        int64
	Sent, Retried, Failed, Released, LostClaims, CacheErrors int64
	// Claims counts claim statements; Records counts record statements.
	Claims, Records int64
}

// gone states: a 410 moves the process from goneNo to goneSeen at once (no
// call starts any more), the completer to gonePaused once it has written the
// pause, and a fresh tick (sending was started again) back to goneNo.
const (
	goneNo int32 = iota
	goneSeen
	gonePaused
)

// Service runs deliveries for one worker process.
type Service struct {
	cfg    Config
	policy Policy
	store  Store
	cache  Cache
	log    *slog.Logger
	m      *metrics.Delivery
	gate   Gate // the one provider's breaker (one provider only); nil: none
	// providers in order of preference, by name; router gives a number's
	// chain; limiter takes rate limits (nil: none).
	providers []*provider
	byName    map[string]*provider
	router    func(to string) []string
	limiter   Limiter
	pm        *metrics.Providers
	herald    TickAnnouncer // nil: other workers are not told of ticks
	traces    *tracing.Tracing
	tracer    trace.Tracer

	kick chan struct{} // a tick refilled the budget: the producer should claim

	draining  chan struct{} // closed: claim nothing more, start nothing more
	drainOnce sync.Once
	callCtx   context.Context // canceled when the grace period runs out
	abort     context.CancelFunc
	drives    sync.WaitGroup // Run calls not yet finished
	gone      atomic.Int32
	health    recordHealth
	signals   TestSignals // zero: no test listens
	linger    time.Duration

	dispatches, ticks, claims, records               atomic.Int64
	sent, retried, failed, released, lost, cacheErrs atomic.Int64
}

// New builds a Service.
func New(p Params) *Service {
	cfg := p.Config
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	var signals TestSignals
	if p.Signals != nil {
		signals = *p.Signals
	}
	traces := p.Tracing
	if traces == nil {
		traces = tracing.Off()
	}
	provs := p.Providers
	if len(provs) == 0 {
		provs = []Provider{{Name: messaging.DefaultProvider, Sender: p.Sender, Gate: p.Breaker}}
	}
	var gate Gate
	if len(provs) == 1 {
		// One provider: its breaker gates every claim and call, as
		// before providers were named.
		gate = provs[0].Gate
	}
	byName := make(map[string]*provider, len(provs))
	list := make([]*provider, len(provs))
	for i, pr := range provs {
		list[i] = &provider{Provider: pr}
		byName[pr.Name] = list[i]
	}
	router := p.Router
	if router == nil {
		names := make([]string, len(provs))
		for i, pr := range provs {
			names[i] = pr.Name
		}
		router = func(string) []string { return names }
	}
	return &Service{
		providers: list, byName: byName, router: router, limiter: p.Limiter, pm: p.ProviderMetrics,
		traces: traces, tracer: traces.Tracer("github.com/messaging-server/messaging-server/internal/delivery"),
		cfg: cfg, store: p.Store, cache: p.Cache, log: p.Log, m: p.Metrics, gate: gate, herald: p.Ticks,
		policy:   Policy{MaxAttempts: cfg.MaxAttempts, RetryDelay: cfg.RetryDelay},
		signals:  signals,
		linger:   recordLinger,
		kick:     make(chan struct{}, 1),
		draining: make(chan struct{}),
		callCtx:  ctx,
		abort:    cancel,
	}
}

// Drain stops claiming and starting deliveries; calls in flight go on.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Abort cancels the calls still in flight (the grace period is over). Their
// outcomes are still recorded, as retryable failures due at once.
func (s *Service) Abort() { s.Drain(); s.abort() }

// Wait blocks until every Run has handed back its unstarted rows and
// recorded its outcomes (or failed to, leaving the rows to their lease).
func (s *Service) Wait() { s.drives.Wait() }

// Stats returns the running totals.
func (s *Service) Stats() Stats {
	return Stats{
		Dispatches: s.dispatches.Load(), Ticks: s.ticks.Load(),
		Sent: s.sent.Load(), Retried: s.retried.Load(), Failed: s.failed.Load(),
		Released: s.released.Load(), LostClaims: s.lost.Load(), CacheErrors: s.cacheErrs.Load(),
		Claims: s.claims.Load(), Records: s.records.Load(),
	}
}

// minGap is how close two ticks may start and still both refill the budget.
// It is a little under the interval so a late tick from the one scheduler is
// not mistaken for a replica's duplicate.
func (s *Service) minGap() time.Duration { return s.cfg.Interval * 9 / 10 }

// HandleDispatch is the asynq handler of task.Dispatch. It refills the
// tick's budget, wakes the process's producer (Run) and returns at once:
// the task never outlives its timeout, and however many dispatch tasks a
// process runs at once, it has one producer, so claims do not queue on the
// budget row.
func (s *Service) HandleDispatch(ctx context.Context, _ *asynq.Task) error {
	if s.isDraining() {
		return nil
	}
	if err := s.reserve(ctx); err != nil {
		return err
	}
	s.wakeProducer()
	return nil
}

// Wake tells the producer that another process started a fresh tick: it
// claims until the budget is spent or nothing is due, as after a dispatch
// task of its own. A fresh tick means sending runs, so a 410 pause an
// operator lifted is lifted here too.
func (s *Service) Wake() {
	if s.isDraining() {
		return
	}
	s.gone.CompareAndSwap(gonePaused, goneNo)
	s.wakeProducer()
}

func (s *Service) wakeProducer() {
	select {
	case s.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run drives the process's deliveries with a producer, Concurrency
// executors and a completer: each time a tick wakes it, the producer claims
// until the budget is spent or nothing is due, then waits for the next. It
// returns once the service drains or ctx ends, after handing back unstarted
// rows and recording every outcome. A claim that fails is logged and
// retried at the next tick, no sooner.
func (s *Service) Run(ctx context.Context) {
	s.drives.Add(1)
	defer s.drives.Done()

	c := s.cfg.Concurrency
	var (
		ready    = make(chan job)                       // producer -> executors
		returned = make(chan job, c)                    // executors -> producer: not started
		finished = make(chan time.Duration, c)          // executors -> producer: a call ended
		results  = make(chan result, c+s.cfg.QueueSize) // executors -> completer
		pending  atomic.Int64                           // claimed rows whose result has not reached the completer
	)
	comp := &completer{s: s, ctx: ctx, in: results, pending: &pending}
	compDone := make(chan struct{})
	go func() { defer close(compDone); comp.run() }()

	var execs sync.WaitGroup
	for range c {
		execs.Add(1)
		go func() {
			defer execs.Done()
			ex := executor{s: s, ctx: ctx, ready: ready, returned: returned, finished: finished, results: results, pending: &pending}
			ex.run()
		}()
	}

	p := &producer{s: s, ready: ready, returned: returned, finished: finished, pending: &pending}
	p.run(ctx)
	execs.Wait()
	close(results)
	<-compDone
}

// reserve refills the shared budget unless another tick did so moments ago.
// A duplicate tick (a second scheduler replica, or a task run again) spends
// only what is left, so the budget holds. A fresh tick means sending runs,
// so a 410 pause an operator has lifted is lifted here too.
func (s *Service) reserve(ctx context.Context) error {
	s.dispatches.Add(1)
	fresh, err := s.store.ReserveTick(ctx, s.cfg.Budget, s.minGap(), s.cfg.MaxAttempts)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	if fresh {
		s.ticks.Add(1)
		s.gone.CompareAndSwap(gonePaused, goneNo)
		if s.herald != nil {
			if err := s.herald.TickStarted(ctx); err != nil {
				// The others still wake at their own dispatch tasks.
				s.log.Warn("could not tell the other workers of the tick", "err", err)
			}
		}
	}
	s.log.Debug("dispatch tick", "refilled", fresh, "budget", s.cfg.Budget)
	return nil
}

// job is a claimed row waiting in the producer's queue.
type job struct {
	c store.Claimed
	// claimedAt is when the claim statement started: the row's lease
	// ends no later than claimedAt + Lease.
	claimedAt time.Time
	// refused is set when an executor hands the job back because the
	// circuit breaker refused the call (not because of a drain or a 410).
	refused bool
	// retryAt, when set, is when the row is due again: it waits alone,
	// uncharged, for its chain's providers (a rate limit, breakers).
	retryAt time.Time
}

// result is one finished attempt, waiting to be recorded.
type result struct {
	out  store.Outcome
	prov *provider // the provider called; nil when no call was made
	gone bool      // the receiver answered 410
	// counts says the call ended on its own (not invalid, not cut at
	// shutdown), so the circuit breaker counts it; retryable says it
	// failed retryably and counts against the breaker; probe says it was
	// the breaker's half-open probe.
	counts, retryable, probe bool
	// deadline is when the completer stops promising to record the
	// outcome: shortly before the row's lease ends.
	deadline time.Time
}

// recordDeadline is the last moment an outcome of a row claimed at
// claimedAt is written for sure (retry.LeaseDeadline).
func (s *Service) recordDeadline(claimedAt time.Time) time.Time {
	return retry.LeaseDeadline(claimedAt, s.cfg.Lease)
}

func (s *Service) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// isGone says a 410 was read and sending has not been started again since.
func (s *Service) isGone() bool { return s.gone.Load() != goneNo }

// recordCtx is a fresh, bounded context for a statement that must land:
// the handler's context may already be canceled, the result must still be
// written. Claims use it too: a claim abandoned after PostgreSQL committed
// it would leave its rows claimed, unsent, until their lease ran out.
func (s *Service) recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

// handBack returns claimed rows that never started, so they are due again
// at once with the attempt uncounted.
func (s *Service) handBack(ctx context.Context, cs []store.Claimed, why string) {
	if len(cs) == 0 {
		return
	}
	rctx, cancel := s.recordCtx(ctx)
	defer cancel()
	defer emit(s.signals.HandedBack, len(cs))
	n, err := s.store.Release(rctx, cs)
	if err != nil {
		s.log.Error("hand back claimed messages; they return after their lease", "count", len(cs), "why", why, "err", err)
		return
	}
	s.released.Add(n)
	s.m.Released(int(n))
	s.log.Info("handed back claimed messages", "count", n, "why", why)
}

// logMessage writes one line about a message, with its id and attempt, and
// builds nothing when the level is off.
func (s *Service) logMessage(ctx context.Context, level slog.Level, msg string, o store.Outcome, args ...any) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.Log(ctx, level, msg, append([]any{"message_id", o.ID, "attempt", o.Attempt}, args...)...)
}
