// Package scheduler enqueues one dispatch task per CRON_INTERVAL while
// sending is running. It uses asynq's PeriodicTaskManager so the entry is
// added and removed within about a second of the shared switch changing.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/task"
)

// Switch tells whether sending runs; reading it through SchedulerBeat also
// tells the API that this scheduler is alive.
type Switch interface {
	SchedulerBeat(ctx context.Context) (store.Control, error)
}

var _ Switch = (*store.Store)(nil)

// Config tunes a Scheduler.
type Config struct {
	Interval time.Duration
	Queue    string
	// TaskTimeout bounds one dispatch task's run in the worker.
	TaskTimeout time.Duration
	// SyncInterval is how often the switch is read; about a second keeps
	// stop and start prompt.
	SyncInterval time.Duration
	LogLevel     string
}

// provider answers asynq's PeriodicTaskManager with the one dispatch entry,
// or none while sending is stopped.
type provider struct {
	sw      Switch
	cfg     Config
	log     *slog.Logger
	base    context.Context
	running *bool
}

var _ asynq.PeriodicTaskConfigProvider = (*provider)(nil)

func (p *provider) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	ctx, cancel := context.WithTimeout(p.base, 5*time.Second)
	defer cancel()
	c, err := p.sw.SchedulerBeat(ctx)
	if err != nil {
		// asynq keeps the previous entries when this fails; the workers
		// check the switch again when they claim.
		return nil, fmt.Errorf("read sending switch: %w", err)
	}
	if p.running == nil || *p.running != c.Running {
		p.log.Info("sending switch", "running", c.Running, "reason", c.PausedReason)
		r := c.Running
		p.running = &r
	}
	if !c.Running {
		return nil, nil
	}
	return []*asynq.PeriodicTaskConfig{{
		Cronspec: fmt.Sprintf("@every %s", p.cfg.Interval),
		Task:     asynq.NewTask(task.Dispatch, nil),
		Opts:     TaskOptions(p.cfg.Queue, p.cfg.TaskTimeout),
	}}, nil
}

// TaskOptions are the options of every dispatch task. A failed dispatch is
// retried a few times and then dropped: the next tick does the same work.
func TaskOptions(queue string, timeout time.Duration) []asynq.Option {
	return []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(2), asynq.Timeout(timeout)}
}

// Scheduler is one scheduler replica.
type Scheduler struct {
	mgr *asynq.PeriodicTaskManager
	log *slog.Logger
}

// New builds a Scheduler that enqueues into the Redis rdb describes. asynq
// opens and closes that connection itself: its scheduler closes the client
// it holds on shutdown, which on a shared client only logs an error.
func New(rdb asynq.RedisConnOpt, sw Switch, cfg Config, log *slog.Logger) (*Scheduler, error) {
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	log = log.With("component", "scheduler")
	p := &provider{sw: sw, cfg: cfg, log: log, base: context.Background()}
	mgr, err := asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		PeriodicTaskConfigProvider: p,
		RedisConnOpt:               rdb,
		SyncInterval:               cfg.SyncInterval,
		SchedulerOpts: &asynq.SchedulerOpts{
			// Entries (and their next run, which the API reports) reach
			// Redis within 2 s of a change and vanish 4 s after a crash.
			HeartbeatInterval: 2 * time.Second,
			Logger:            logging.Asynq{L: log},
			LogLevel:          logging.AsynqLevel(cfg.LogLevel),
			PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
				switch {
				case err == nil:
					log.Debug("dispatch enqueued", "task_id", info.ID, "queue", info.Queue)
				case errors.Is(err, asynq.ErrDuplicateTask), errors.Is(err, asynq.ErrTaskIDConflict):
					log.Debug("dispatch already enqueued", "err", err)
				default:
					log.Error("enqueue dispatch", "err", err)
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return &Scheduler{mgr: mgr, log: log}, nil
}

// Run enqueues ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.mgr.Start(); err != nil {
		return fmt.Errorf("scheduler: start: %w", err)
	}
	s.log.Info("scheduler started")
	<-ctx.Done()
	s.mgr.Shutdown()
	s.log.Info("scheduler stopped")
	return nil
}
