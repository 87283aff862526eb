// Package retention deletes messages that have been in a final status for
// longer than RETENTION_PERIOD, with their attempts and cached records. It
// runs in the scheduler process: every deployment runs one (ticks need it),
// it does little else, and its few connections are not the workers' claim
// and record path. Replicas are safe: each batch takes a transaction-scoped
// PostgreSQL advisory lock, so one process deletes at a time, also through
// PgBouncer in transaction pooling mode.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/store"
)

// Store is what the purge needs from PostgreSQL.
type Store interface {
	PurgeBatch(ctx context.Context, olderThan time.Duration, limit int, beforeCommit func(context.Context, []string) error) ([]string, error)
	RecordPurge(ctx context.Context, n int64) error
}

var _ Store = (*store.Store)(nil)

// Cache deletes the cached records of purged messages.
type Cache interface {
	Delete(ctx context.Context, ids ...string) error
}

var _ Cache = (*cache.Cache)(nil)

// Config tunes a Purger.
type Config struct {
	// Period is RETENTION_PERIOD; 0 turns the purge off.
	Period time.Duration
	// Interval is RETENTION_INTERVAL, the time between runs.
	Interval time.Duration
	// Batch is RETENTION_BATCH, the most rows one statement deletes.
	Batch int
}

// Deps are a Purger's dependencies.
type Deps struct {
	Config Config
	Store  Store
	Cache  Cache
	Log    *slog.Logger
}

// Purger runs the purge every Interval.
type Purger struct {
	d Deps
}

// New returns a Purger.
func New(d Deps) *Purger {
	d.Log = d.Log.With("component", "retention")
	return &Purger{d: d}
}

// Run purges every Interval until ctx ends; with a zero Period it returns
// at once. A failed run is logged and the next interval tries again.
func (p *Purger) Run(ctx context.Context) {
	if p.d.Config.Period <= 0 {
		return
	}
	p.d.Log.Info("retention purge on", "period", p.d.Config.Period, "interval", p.d.Config.Interval, "batch", p.d.Config.Batch)
	t := time.NewTicker(p.d.Config.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.Once(ctx)
		switch {
		case errors.Is(err, store.ErrPurgeBusy):
			p.d.Log.Debug("retention purge skipped: another process is purging")
		case err != nil && ctx.Err() == nil:
			p.d.Log.Warn("retention purge", "purged", n, "err", err)
		case n > 0:
			p.d.Log.Info("retention purge", "purged", n)
		}
	}
}

// Once runs one purge: batches of at most Batch rows, a pause after each
// (Pause), until a batch comes back short. It records the run's count
// (even 0) unless another process held the lock at the first batch.
func (p *Purger) Once(ctx context.Context) (int64, error) {
	var total int64
	drop := func(ctx context.Context, ids []string) error { return p.d.Cache.Delete(ctx, ids...) }
	for {
		start := time.Now()
		ids, err := p.d.Store.PurgeBatch(ctx, p.d.Config.Period, p.d.Config.Batch, drop)
		if errors.Is(err, store.ErrPurgeBusy) && total == 0 {
			return 0, err
		}
		if err != nil && !errors.Is(err, store.ErrPurgeBusy) {
			return total, p.record(ctx, total, err)
		}
		total += int64(len(ids))
		if len(ids) < p.d.Config.Batch {
			return total, p.record(ctx, total, nil)
		}
		wait := time.NewTimer(Pause(time.Since(start)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return total, p.record(ctx, total, ctx.Err())
		case <-wait.C:
		}
	}
}

// record stores the run's count with a fresh, bounded context (the run's
// own may have ended), and joins a failure to err.
func (p *Purger) record(ctx context.Context, n int64, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rerr := p.d.Store.RecordPurge(rctx, n); rerr != nil {
		return errors.Join(err, fmt.Errorf("retention: %w", rerr))
	}
	return err
}

// Pause is the wait after a batch that took took: as long as the batch,
// so the purge holds the database at most about half the time, within
// 10 ms and 1 s.
func Pause(took time.Duration) time.Duration {
	return min(max(took, 10*time.Millisecond), time.Second)
}
