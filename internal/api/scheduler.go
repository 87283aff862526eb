package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/task"
)

// SchedulerStatus describes automatic sending. The switch lives in
// PostgreSQL and is shared by every scheduler and worker process.
type SchedulerStatus struct {
	// Running tells whether messages are being sent.
	Running bool `json:"running" example:"true"`
	// IntervalSeconds is CRON_INTERVAL, the time between ticks.
	IntervalSeconds int `json:"interval_seconds" example:"120"`
	// BatchSize is MESSAGE_FETCH_LIMIT, the most messages sent per tick
	// across all workers.
	BatchSize int `json:"batch_size" example:"2"`
	// PausedReason says why sending paused on its own (empty when it runs
	// or an operator stopped it).
	PausedReason string `json:"paused_reason" example:""`
	// LastRunAt is when a worker last started a tick; null before the
	// first.
	LastRunAt *time.Time `json:"last_run_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	// NextRunAt is the next tick the live scheduler replicas have
	// planned, never in the past. In the seconds after a start, before a
	// replica has published its plan, it is the switch's change (or the
	// last tick, if later) plus CRON_INTERVAL. Null while stopped, when no
	// scheduler is alive, or when Redis does not answer.
	NextRunAt *time.Time `json:"next_run_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:06:05Z"`
	// SchedulerAlive tells whether a scheduler process read the switch in
	// the last few seconds (each does every second). While it is false no
	// tick is enqueued, whatever running says.
	SchedulerAlive bool `json:"scheduler_alive" example:"true"`
	// UpdatedAt is when the switch last changed.
	UpdatedAt time.Time `json:"updated_at" format:"date-time" example:"2025-01-02T03:00:00.5Z"`
	// Breaker is the circuit breaker every worker shares.
	Breaker BreakerStatus `json:"breaker"`
	// Retention is the purge of finished messages.
	Retention RetentionStatus `json:"retention"`
}

// RetentionStatus is the purge that deletes messages which have been in a
// final status (sent, failed, expired, canceled) for longer than
// RETENTION_PERIOD, with their attempts and cached records. A scheduler
// process runs it every RETENTION_INTERVAL; pending, sending and scheduled
// messages are never touched.
type RetentionStatus struct {
	// PeriodSeconds is RETENTION_PERIOD in seconds; 0 keeps every message.
	PeriodSeconds int64 `json:"period_seconds" example:"2592000"`
	// LastPurgeAt is when the last purge run ended, whichever scheduler
	// made it; null before the first.
	LastPurgeAt *time.Time `json:"last_purge_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:00:00Z"`
	// LastPurged is how many messages that run deleted.
	LastPurged int64 `json:"last_purged" example:"1000"`
}

// BreakerStatus is the shared circuit breaker. It opens when, within
// BREAKER_WINDOW, at least BREAKER_MIN_CALLS webhook calls were made and at
// least BREAKER_FAILURE_RATE of them failed retryably (5xx, 408, 429, a
// timeout, a connection error); while open no call starts and no attempt is
// charged. After BREAKER_COOLDOWN it is half_open: one probe call, whose
// success closes it and whose failure opens it again.
type BreakerStatus struct {
	// State is closed (calls flow), open (no call starts) or half_open
	// (one probe call is out).
	State string `json:"state" enums:"closed,open,half_open" example:"closed"`
	// Since is when the breaker entered State.
	Since time.Time `json:"since" format:"date-time" example:"2025-01-02T03:00:00Z"`
	// Reason says why it is in State (the failures that tripped it, the
	// probe's result).
	Reason string `json:"reason" example:"probe call succeeded"`
	// FailureRate is the share of calls that failed retryably within the
	// window, at the last report (at the trip, while open), from 0 to 1.
	FailureRate float64 `json:"failure_rate" example:"0.02"`
}

// getScheduler reports whether sending runs.
//
//	@Summary		Scheduler status
//	@Description	Whether automatic sending runs, its interval and batch size, the last and next tick, the state of the circuit breaker the workers share, and the last retention purge.
//	@Tags			scheduler
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	SchedulerStatus
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/scheduler [get]
func (s *Server) getScheduler(c *fiber.Ctx) error {
	ctl, err := s.deps.Store.Control(c.UserContext())
	if err != nil {
		return err
	}
	st, err := s.schedulerStatus(c.UserContext(), ctl)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

// startScheduler turns sending on.
//
//	@Summary		Start sending
//	@Description	Turns automatic sending on for every scheduler and worker process (schedulers notice within about a second). Idempotent: starting a running scheduler changes nothing and answers 200.
//	@Tags			scheduler
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	SchedulerStatus
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/scheduler/start [post]
func (s *Server) startScheduler(c *fiber.Ctx) error { return s.setRunning(c, true) }

// stopScheduler turns sending off.
//
//	@Summary		Stop sending
//	@Description	Turns automatic sending off for every scheduler and worker process: no new tick is enqueued and workers claim nothing more; deliveries already in flight finish. Idempotent: stopping a stopped scheduler changes nothing and answers 200.
//	@Tags			scheduler
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	SchedulerStatus
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/scheduler/stop [post]
func (s *Server) stopScheduler(c *fiber.Ctx) error { return s.setRunning(c, false) }

func (s *Server) setRunning(c *fiber.Ctx, running bool) error {
	ctl, err := s.deps.Store.SetRunning(c.UserContext(), running, "")
	if err != nil {
		return err
	}
	s.log.Info("sending switch set", "running", running, "ip", c.IP())
	st, err := s.schedulerStatus(c.UserContext(), ctl)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) schedulerStatus(ctx context.Context, ctl store.Control) (SchedulerStatus, error) {
	// With several providers, the first one's breaker.
	br, err := breaker.Read(ctx, s.deps.Store.ProviderBreaker(s.firstProvider()))
	if err != nil {
		return SchedulerStatus{}, err
	}
	st := SchedulerStatus{
		Breaker:         BreakerStatus{State: string(br.State), Since: br.Since, Reason: br.Reason, FailureRate: br.FailureRate},
		Running:         ctl.Running,
		IntervalSeconds: int(s.cfg.CronIntervalDuration() / time.Second),
		BatchSize:       s.cfg.MessageFetchLimit,
		PausedReason:    ctl.PausedReason,
		LastRunAt:       utc(ctl.LastTickAt),
		UpdatedAt:       ctl.UpdatedAt.UTC(),
	}
	ret, err := s.deps.Store.Retention(ctx)
	if err != nil {
		return SchedulerStatus{}, err
	}
	st.Retention = RetentionStatus{
		PeriodSeconds: int64(s.cfg.Retention() / time.Second),
		LastPurgeAt:   utc(ret.LastRunAt),
		LastPurged:    ret.LastPurged,
	}
	st.SchedulerAlive = ctl.SchedulerAlive(schedulerAliveWithin)
	if ctl.Running && st.SchedulerAlive {
		st.NextRunAt = s.nextRun(ctl)
	}
	return st, nil
}

// schedulerAliveWithin is how recently a scheduler must have read the
// switch to count as alive: each replica reads it every second.
const schedulerAliveWithin = 5 * time.Second

// nextRun is the earliest next enqueue of our dispatch task among the live
// scheduler replicas' entries in Redis, or nil when Redis does not answer
// (the status is still worth returning). An entry is a snapshot written
// every heartbeat, so its next run may already have passed: it is carried
// forward by the interval (the entry is "@every CRON_INTERVAL") to the first
// one after now. A replica publishes its entry only after it has seen the
// switch on and its next heartbeat has passed (about 3 s); until then the
// next run is estimated by expectedRun.
func (s *Server) nextRun(ctl store.Control) *time.Time {
	entries, err := s.insp.SchedulerEntries()
	if err != nil {
		s.log.Warn("read scheduler entries", "err", err)
		return nil
	}
	interval := s.cfg.CronIntervalDuration()
	var next *time.Time
	for _, e := range entries {
		if e.Task == nil || e.Task.Type() != task.Dispatch || queueOf(e.Opts) != s.cfg.Queue || e.Next.IsZero() {
			continue
		}
		n := nextAfter(e.Next, interval, ctl.Now)
		if next == nil || n.Before(*next) {
			next = &n
		}
	}
	if next == nil {
		n := expectedRun(ctl.LastTickAt, ctl.UpdatedAt, interval, ctl.Now)
		next = &n
	}
	return next
}

// expectedRun estimates the next tick while no replica has published its
// entry: a replica adds its "@every CRON_INTERVAL" entry when it sees the
// switch on, so ticks follow the later of the last tick and the switch's
// last change by whole intervals.
func expectedRun(lastTick *time.Time, switched time.Time, interval time.Duration, now time.Time) time.Time {
	from := switched
	if lastTick != nil && lastTick.After(from) {
		from = *lastTick
	}
	return nextAfter(from.Add(interval), interval, now)
}

// nextAfter carries a planned run forward by whole intervals until it is
// after now.
func nextAfter(planned time.Time, interval time.Duration, now time.Time) time.Time {
	if interval > 0 && !planned.After(now) {
		planned = planned.Add(interval * (now.Sub(planned)/interval + 1))
	}
	return planned.UTC()
}

// queueOf is the queue a task option list names; asynq's default queue when
// none does.
func queueOf(opts []asynq.Option) string {
	for _, o := range opts {
		if o.Type() == asynq.QueueOpt {
			if q, ok := o.Value().(string); ok {
				return q
			}
		}
	}
	return "default"
}

// providerNames are the names in PROVIDERS, or default when it is unset.
func (s *Server) providerNames() []string {
	if names := s.cfg.ProviderNames(); len(names) > 0 {
		return names
	}
	return []string{messaging.DefaultProvider}
}

// firstProvider is the name of the first provider in PROVIDERS (default
// when it is unset).
func (s *Server) firstProvider() string {
	if len(s.cfg.ProviderList) == 0 {
		return messaging.DefaultProvider
	}
	return s.cfg.ProviderList[0].Name
}
