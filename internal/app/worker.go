package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/ratelimit"
	"github.com/messaging-server/messaging-server/internal/redisconn"
	"github.com/messaging-server/messaging-server/internal/retention"
	"github.com/messaging-server/messaging-server/internal/scheduler"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/task"
	"github.com/messaging-server/messaging-server/internal/wake"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// Tuning holds knobs the environment does not expose; zero values mean the
// production defaults. Tests shorten them to run fast.
type Tuning struct {
	// PollInterval is how often an idle worker asks Redis for a task
	// (asynq's TaskCheckInterval). The default, 200 ms, keeps the delay
	// between a tick's enqueue and its dispatch small next to the 10% of
	// CRON_INTERVAL that tells a late tick from a replica's duplicate.
	PollInterval time.Duration
	// BackoffBase, when set, replaces RETRY_SCHEDULE with a doubling
	// backoff from this first delay (tests that retry fast).
	BackoffBase time.Duration
	// Signals, when set, tells a test what the delivery engine does.
	Signals *delivery.TestSignals
	// Callbacks, when set, tells a test what the status callback sender
	// does.
	Callbacks *callback.Signals
}

// WorkerPoolSize is how many PostgreSQL connections a worker process holds
// at most: one claim loop, and short per-tick statements from the dispatch
// handlers, whatever MAX_CONCURRENT_JOBS is, and two more for the status
// callback sender's claims and records, so that callbacks do not wait on
// delivery's connections nor delivery on theirs.
const WorkerPoolSize = 8

// Worker is one worker process: an asynq server running dispatch tasks with
// MAX_CONCURRENT_JOBS handlers, and one claim loop with as many webhook calls
// in flight.
type Worker struct {
	cfg   config.Config
	srv   *asynq.Server
	svc   *delivery.Service
	ticks *wake.Channel
	hooks []*webhook.Client
	store *store.Store
	log   *slog.Logger
	grace time.Duration
	reg   *prometheus.Registry
	// calls sends status callbacks; nil when none can be sent (neither
	// STATUS_CALLBACK_URL nor an allowed host is set).
	calls *callback.Sender
}

// NewWorker builds a Worker over d.
func NewWorker(cfg config.Config, d *Deps, t Tuning) *Worker {
	log := d.Log.With("component", "worker")
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	brkMetrics := metrics.NewBreakers(reg)
	var (
		providers []delivery.Provider
		hooks     []*webhook.Client
	)
	for _, pc := range cfg.ProviderList {
		// config.Load validated the secret's format.
		key, _ := webhook.ParseSecret(pc.Secret)
		hook := webhook.New(webhook.Options{
			SigningKey: key,
			URL:        pc.URL,
			Timeout:    pc.Timeout,
			AuthHeader: pc.AuthHeader,
			AuthKey:    pc.AuthKey,
			MaxConns:   cfg.MaxConcurrentJobs,
			Propagator: d.Traces().Propagator,
		})
		hooks = append(hooks, hook)
		rows := d.Store.ProviderBreaker(pc.Name)
		// Each provider's circuit breaker, shared by every worker; its
		// probe may take a whole call before another process may probe
		// again.
		brk := breaker.New(breaker.Deps{
			Store: rows,
			Settings: breaker.Settings{
				Window: cfg.BreakerWindow, MinCalls: cfg.BreakerMinCalls, FailureRate: cfg.BreakerFailureRate,
				Cooldown: cfg.BreakerCooldown, ProbeTimeout: pc.Timeout + 10*time.Second,
			},
			Log:     log.With("provider", pc.Name),
			Metrics: brkMetrics.For(pc.Name, breaker.StateNames()),
		})
		providers = append(providers, delivery.Provider{
			Name: pc.Name, Sender: hook, Gate: brk, Rate: pc.Rate, Burst: pc.Burst, Disabler: rows,
		})
	}
	routes := cfg.RouteTable
	// RETRY_SCHEDULE spaces retries, unless a test asked for a fast
	// doubling backoff (or a Config built by hand has no schedule).
	var retryDelay delivery.RetryDelay
	if sched := cfg.Retry(); t.BackoffBase <= 0 && len(sched) > 0 {
		retryDelay = delivery.Scheduled(sched)
	}
	// Every fresh tick wakes every worker, not only the one that took its
	// dispatch task.
	ticks := wake.New(wake.Deps{Redis: d.Redis, Queue: cfg.Queue})
	svc := delivery.New(delivery.Params{
		Config: delivery.Config{
			Budget:      cfg.MessageFetchLimit,
			Interval:    cfg.CronIntervalDuration(),
			Concurrency: cfg.MaxConcurrentJobs,
			MaxAttempts: cfg.MaxAttempts,
			Lease:       cfg.LeaseDuration(),
			RetryDelay:  retryDelay,
			BackoffBase: t.BackoffBase,
			MaxContent:  cfg.MaxContentLength,
			Countries:   message.NewCountries(cfg.AllowedCountries),
		},
		Store:           d.Store,
		Providers:       providers,
		Router:          func(to string) []string { return config.ChainFor(routes, to) },
		Limiter:         ratelimit.New(ratelimit.Deps{Redis: d.Redis, Prefix: cfg.Queue}),
		ProviderMetrics: metrics.NewProviders(reg),
		Cache:           cache.New(d.Redis, cfg.CacheTTL()),
		Log:             log,
		Metrics:         metrics.NewDelivery(reg),
		Ticks:           ticks,
		Signals:         t.Signals,
		Tracing:         d.Traces(),
	})

	poll := t.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	grace := cfg.GracePeriod()
	srv := asynq.NewServerFromRedisClient(d.Redis, asynq.Config{
		Concurrency:       cfg.MaxConcurrentJobs,
		Queues:            map[string]int{cfg.Queue: 1},
		TaskCheckInterval: poll,
		// Handlers get the grace period plus time to record outcomes
		// before asynq gives up on them.
		ShutdownTimeout: grace + 15*time.Second,
		Logger:          logging.Asynq{L: log},
		LogLevel:        logging.AsynqLevel(cfg.LogLevel),
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return delivery.Backoff(n+1, time.Second, 30*time.Second, 0.5)
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(_ context.Context, task *asynq.Task, err error) {
			log.Error("dispatch task failed", "type", task.Type(), "err", err)
		}),
	})
	return &Worker{cfg: cfg, srv: srv, svc: svc, ticks: ticks, hooks: hooks, log: log, grace: grace, reg: reg, store: d.Store,
		calls: newCallbacks(cfg, d, d.Log.With("component", "callbacks"), reg, t)}
}

// newCallbacks builds the status callback sender, or nil when no event
// could have anywhere to go.
func newCallbacks(cfg config.Config, d *Deps, log *slog.Logger, reg prometheus.Registerer, t Tuning) *callback.Sender {
	if cfg.StatusCallbackURL == "" && len(cfg.CallbackHosts()) == 0 {
		return nil
	}
	// config.Load validated the secret's format.
	key, _ := webhook.ParseSecret(cfg.StatusCallbackSecret)
	return callback.New(callback.Deps{
		Config: callback.Config{
			URL: cfg.StatusCallbackURL, Key: key, Schedule: cfg.CallbackRetry(), Concurrency: cfg.StatusCallbackConcurrency,
			// The provider's timeout and lease serve callbacks too: a
			// receiver is held to what a provider is.
			Timeout: cfg.WebhookTimeoutDuration(), Lease: cfg.LeaseDuration(),
		},
		Store:   d.Store,
		Log:     log,
		Metrics: metrics.NewCallback(reg),
		Signals: t.Callbacks,
	})
}

// Service exposes the delivery service, for metrics and tests.
func (w *Worker) Service() *delivery.Service { return w.svc }

// Run processes dispatch tasks until ctx ends, then shuts down: it claims
// nothing more, hands back claimed messages that did not start, lets calls
// in flight finish within SERVER_GRACE_PERIOD (cutting them after it), and
// returns once every outcome is recorded.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.store.EnsureBreakers(ctx, w.cfg.ProviderNames()); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(task.Dispatch, w.svc.HandleDispatch)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	w.log.Info("worker started", "concurrency", w.cfg.MaxConcurrentJobs, "queue", w.cfg.Queue)
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		w.svc.Run(ctx)
	}()
	listenCtx, stopListening := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		w.ticks.Listen(listenCtx, w.svc.Wake)
	}()
	defer func() { stopListening(); <-listening }()
	// The status callback sender runs beside delivery, on its own
	// requests and connections; it stops claiming with ctx and returns
	// once the calls it started are recorded.
	callsCtx, stopCalls := context.WithCancel(ctx)
	callsDone := make(chan struct{})
	go func() {
		defer close(callsDone)
		if w.calls != nil {
			w.calls.Run(callsCtx)
		}
	}()
	defer func() { stopCalls(); <-callsDone }()
	stopMetrics, err := w.serveMetrics()
	if err != nil {
		w.svc.Drain()
		<-driven
		w.srv.Shutdown()
		return err
	}
	defer stopMetrics()
	<-ctx.Done()

	w.log.Info("worker stopping", "grace", w.grace)
	w.svc.Drain()
	abort := time.AfterFunc(w.grace, w.svc.Abort)
	defer abort.Stop()
	<-driven
	w.srv.Shutdown()
	w.svc.Wait()
	for _, h := range w.hooks {
		h.Close()
	}
	w.log.Info("worker stopped", "stats", fmt.Sprintf("%+v", w.svc.Stats()))
	return nil
}

// Scheduler is one scheduler process: the replica that enqueues ticks and
// the retention purge beside it.
type Scheduler struct {
	sch   *scheduler.Scheduler
	purge *retention.Purger
}

// NewScheduler builds a scheduler replica over d, with the retention purge
// (which does nothing while RETENTION_PERIOD is 0). The purge lives here
// because every deployment runs a scheduler and it has little else to do;
// replicas share the work under the purge's advisory lock.
func NewScheduler(cfg config.Config, d *Deps, syncInterval time.Duration) (*Scheduler, error) {
	sch, err := scheduler.New(RedisConnOpt(cfg), d.Store, scheduler.Config{
		Interval:     cfg.CronIntervalDuration(),
		Queue:        cfg.Queue,
		TaskTimeout:  TaskTimeout(cfg),
		SyncInterval: syncInterval,
		LogLevel:     cfg.LogLevel,
	}, d.Log)
	if err != nil {
		return nil, err
	}
	purge := retention.New(retention.Deps{
		Config: retention.Config{Period: cfg.Retention(), Interval: cfg.RetentionInterval, Batch: cfg.RetentionBatch},
		Store:  d.Store,
		Cache:  cache.New(d.Redis, cfg.CacheTTL()),
		Log:    d.Log,
	})
	return &Scheduler{sch: sch, purge: purge}, nil
}

// Run enqueues ticks and purges until ctx ends; it returns once both
// stopped.
func (s *Scheduler) Run(ctx context.Context) error {
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.purge.Run(pctx)
	}()
	err := s.sch.Run(ctx)
	stop() // the scheduler may stop on its own (a failed start)
	<-done
	return err
}

// RedisConnOpt describes the configured Redis (one server, Sentinel or
// Cluster) for asynq components that open their own connection.
func RedisConnOpt(cfg config.Config) asynq.RedisConnOpt { return redisconn.AsynqOpt(cfg) }

// TaskTimeout bounds one dispatch task: long enough for a tick's sends, short
// enough that a stuck one is retried.
func TaskTimeout(cfg config.Config) time.Duration {
	return max(cfg.CronIntervalDuration(), cfg.LeaseDuration()) + cfg.GracePeriod()
}

// serveMetrics serves /metrics and /readyz on METRICS_PORT with net/http (the worker
// links no web framework) and returns the function that stops it.
func (w *Worker) serveMetrics() (func(), error) {
	if w.cfg.MetricsPort == 0 {
		return func() {}, nil
	}
	ln, err := listenMetrics(w.cfg, w.log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /readyz", readyzHandler(w.svc.RecordHealth))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
