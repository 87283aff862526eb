package api

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

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
	// planned, never in the past; null while stopped or when no scheduler
	// is alive.
	NextRunAt *time.Time `json:"next_run_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:06:05Z"`
	// SchedulerAlive tells whether a scheduler process read the switch in
	// the last few seconds (each does every second). While it is false no
	// tick is enqueued, whatever running says.
	SchedulerAlive bool `json:"scheduler_alive" example:"true"`
	// UpdatedAt is when the switch last changed.
	UpdatedAt time.Time `json:"updated_at" format:"date-time" example:"2025-01-02T03:00:00.5Z"`
}

// getScheduler reports whether sending runs.
//
//	@Summary		Scheduler status
//	@Description	Whether automatic sending runs, its interval and batch size, and the last and next tick.
//	@Tags			scheduler
//	@Produce		json
//	@Success		200	{object}	SchedulerStatus
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/scheduler [get]
func (s *Server) getScheduler(c *fiber.Ctx) error {
	ctl, err := s.deps.Store.Control(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(s.schedulerStatus(ctl))
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
	return c.JSON(s.schedulerStatus(ctl))
}

func (s *Server) schedulerStatus(ctl store.Control) SchedulerStatus {
	st := SchedulerStatus{
		Running:         ctl.Running,
		IntervalSeconds: s.cfg.CronInterval,
		BatchSize:       s.cfg.MessageFetchLimit,
		PausedReason:    ctl.PausedReason,
		LastRunAt:       utc(ctl.LastTickAt),
		UpdatedAt:       ctl.UpdatedAt.UTC(),
	}
	st.SchedulerAlive = ctl.SchedulerAlive(schedulerAliveWithin)
	if ctl.Running && st.SchedulerAlive {
		st.NextRunAt = s.nextRun(ctl.Now)
	}
	return st
}

// schedulerAliveWithin is how recently a scheduler must have read the
// switch to count as alive: each replica reads it every second.
const schedulerAliveWithin = 5 * time.Second

// nextRun is the earliest next enqueue of our dispatch task among the live
// scheduler replicas' entries in Redis, or nil when there is none or Redis
// does not answer (the status is still worth returning). An entry is a
// snapshot written every heartbeat, so its next run may already have
// passed: it is carried forward by the interval (the entry is "@every
// CRON_INTERVAL") to the first one after now.
func (s *Server) nextRun(now time.Time) *time.Time {
	entries, err := s.insp.SchedulerEntries()
	if err != nil {
		s.log.Warn("read scheduler entries", "err", err)
		return nil
	}
	var next *time.Time
	for _, e := range entries {
		if e.Task == nil || e.Task.Type() != task.Dispatch || queueOf(e.Opts) != s.cfg.Queue || e.Next.IsZero() {
			continue
		}
		n := nextAfter(e.Next, s.cfg.CronIntervalDuration(), now)
		if next == nil || n.Before(*next) {
			next = &n
		}
	}
	return next
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
