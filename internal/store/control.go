package store

// The dispatch_control row: the shared switch that starts and stops
// sending, the tick's budget, and the scheduler's heartbeat.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Control is the shared switch that starts and stops sending.
type Control struct {
	Running      bool
	PausedReason string
	LastTickAt   *time.Time
	UpdatedAt    time.Time
	// SchedulerSeenAt is when a scheduler replica last read the switch
	// (each does every second); nil before any did.
	SchedulerSeenAt *time.Time
	// Now is the database's clock when the row was read, to judge
	// SchedulerSeenAt without trusting this host's clock.
	Now time.Time
}

// SchedulerAlive tells whether a scheduler replica read the switch within
// within: a live one does every second.
func (c Control) SchedulerAlive(within time.Duration) bool {
	return c.SchedulerSeenAt != nil && c.Now.Sub(*c.SchedulerSeenAt) < within
}

const controlColumns = `running, paused_reason, last_tick_at, updated_at, scheduler_seen_at, now()`

func scanControl(row pgx.Row) (Control, error) {
	var c Control
	err := row.Scan(&c.Running, &c.PausedReason, &c.LastTickAt, &c.UpdatedAt, &c.SchedulerSeenAt, &c.Now)
	return c, err
}

// Control reads the shared switch.
func (s *Store) Control(ctx context.Context) (Control, error) {
	c, err := scanControl(s.pool.QueryRow(ctx, `SELECT `+controlColumns+` FROM dispatch_control WHERE id = 1`))
	if err != nil {
		return Control{}, fmt.Errorf("read dispatch control: %w", err)
	}
	return c, nil
}

// SchedulerBeat reads the shared switch for a scheduler replica and stamps
// the row, so the API can tell that a scheduler is alive.
func (s *Store) SchedulerBeat(ctx context.Context) (Control, error) {
	q := `UPDATE dispatch_control SET scheduler_seen_at = now() WHERE id = 1 RETURNING ` + controlColumns
	c, err := scanControl(s.pool.QueryRow(ctx, q))
	if err != nil {
		return Control{}, fmt.Errorf("scheduler heartbeat: %w", err)
	}
	return c, nil
}

// SetRunning flips the shared switch; reason says why sending paused (empty
// when an operator stopped it or when it runs). Setting the current value
// again is a no-op apart from the reason, so start and stop are idempotent.
func (s *Store) SetRunning(ctx context.Context, running bool, reason string) (Control, error) {
	q := `
UPDATE dispatch_control
SET running = $1, paused_reason = $2,
    updated_at = CASE WHEN running = $1 THEN updated_at ELSE now() END
WHERE id = 1
RETURNING ` + controlColumns
	c, err := scanControl(s.pool.QueryRow(ctx, q, running, reason))
	if err != nil {
		return Control{}, fmt.Errorf("set dispatch control: %w", err)
	}
	return c, nil
}

// ReserveTick starts a new tick: it resets the shared budget to budget when
// sending is running and no tick started within minGap. Scheduler replicas
// each enqueue a dispatch per interval; only the first of them in a window
// refills the budget, so the limit per tick holds however many replicas run.
// A fresh tick also fails rows whose lease expired after their last allowed
// attempt, so a message that kills its worker cannot loop forever; a
// duplicate tick skips that search.
func (s *Store) ReserveTick(ctx context.Context, budget int, minGap time.Duration, maxAttempts int) (bool, error) {
	const q = `
UPDATE dispatch_control
SET budget = $1, last_tick_at = now()
WHERE id = 1 AND running
  AND (last_tick_at IS NULL OR last_tick_at <= now() - $2::float8 * interval '1 second')`
	tag, err := s.pool.Exec(ctx, q, budget, seconds(minGap))
	if err != nil {
		return false, fmt.Errorf("reserve tick: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return false, nil // a duplicate: the fresh tick did the rest
	}
	const expire = `
UPDATE messages
SET status = 'failed', lease_expires_at = NULL, last_error = '` + leaseExpiredError + `'
WHERE status = 'sending' AND lease_expires_at < now() AND attempts >= $1`
	if _, err := s.pool.Exec(ctx, expire, maxAttempts); err != nil {
		return true, fmt.Errorf("fail expired leases: %w", err)
	}
	return true, nil
}
