package store

// The shared circuit breaker's row (issue 13). The decisions are made by the
// pure state machine in internal/breaker; this file only reads and writes
// the row, under the row lock, with PostgreSQL's clock as the one clock.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BreakerRow is the delivery_breaker row.
type BreakerRow struct {
	State                   string
	Since                   time.Time
	Reason                  string
	FailureRate             float64
	WindowStart             time.Time
	Calls, Failures         int
	PrevCalls, PrevFailures int
	ProbeAt                 *time.Time
	Trips                   int64
}

const breakerColumns = `state, since, reason, failure_rate, window_start, calls, failures,
    prev_calls, prev_failures, probe_at, trips`

func scanBreaker(row pgx.Row, extra ...any) (BreakerRow, error) {
	var b BreakerRow
	dst := append([]any{&b.State, &b.Since, &b.Reason, &b.FailureRate, &b.WindowStart, &b.Calls, &b.Failures,
		&b.PrevCalls, &b.PrevFailures, &b.ProbeAt, &b.Trips}, extra...)
	err := row.Scan(dst...)
	return b, err
}

// Breaker reads the breaker's row and PostgreSQL's clock, for the API and
// for workers refreshing their view.
func (s *Store) Breaker(ctx context.Context) (BreakerRow, time.Time, error) {
	var now time.Time
	b, err := scanBreaker(s.pool.QueryRow(ctx, `SELECT `+breakerColumns+`, now() FROM delivery_breaker WHERE id = 1`), &now)
	if err != nil {
		return BreakerRow{}, time.Time{}, fmt.Errorf("read breaker: %w", err)
	}
	return b, now, nil
}

// UpdateBreaker changes the breaker's row in one short transaction: it
// locks the row, hands it and PostgreSQL's now() to apply, and writes what
// apply returns when it reports a change. Workers call it once per batch of
// outcomes at most (the breaker aggregates), never per message. It returns
// the row as it stands afterwards.
func (s *Store) UpdateBreaker(ctx context.Context, apply func(cur BreakerRow, now time.Time) (BreakerRow, bool)) (BreakerRow, error) {
	var out BreakerRow
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var now time.Time
		cur, err := scanBreaker(tx.QueryRow(ctx, `SELECT `+breakerColumns+`, now() FROM delivery_breaker WHERE id = 1 FOR UPDATE`), &now)
		if err != nil {
			return err
		}
		next, changed := apply(cur, now)
		if !changed {
			out = cur
			return nil
		}
		const q = `
UPDATE delivery_breaker
SET state = $1, since = $2, reason = $3, failure_rate = $4, window_start = $5, calls = $6, failures = $7,
    prev_calls = $8, prev_failures = $9, probe_at = $10, trips = $11
WHERE id = 1`
		if _, err := tx.Exec(ctx, q, next.State, next.Since, next.Reason, next.FailureRate, next.WindowStart,
			next.Calls, next.Failures, next.PrevCalls, next.PrevFailures, next.ProbeAt, next.Trips); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return BreakerRow{}, fmt.Errorf("update breaker: %w", err)
	}
	return out, nil
}

// claimProbeSQL lets exactly one process make the half-open probe: an open
// breaker whose cooldown is over, or a half-open one whose probe never
// reported within the probe timeout, is claimed by the one UPDATE that
// matches; every other process's UPDATE matches no row. It is
// breaker.State.ClaimProbe in SQL.
const claimProbeSQL = `
UPDATE delivery_breaker
SET state = 'half_open', probe_at = now(),
    reason = CASE WHEN state = 'open' THEN $3 ELSE $4 END,
    since = CASE WHEN state = 'open' THEN now() ELSE since END
WHERE id = 1
  AND ((state = 'open' AND since <= now() - $1::float8 * interval '1 second')
    OR (state = 'half_open' AND probe_at <= now() - $2::float8 * interval '1 second'))
RETURNING ` + breakerColumns + `, now()`

// ClaimBreakerProbe tries to claim the half-open probe; reason is the new
// reason after a cooldown, reprobe after a probe that never reported. It
// returns whether this caller won, and the row with PostgreSQL's clock
// either way.
func (s *Store) ClaimBreakerProbe(ctx context.Context, cooldown, probeTimeout time.Duration, reason, reprobe string) (BreakerRow, time.Time, bool, error) {
	var now time.Time
	b, err := scanBreaker(s.pool.QueryRow(ctx, claimProbeSQL, seconds(cooldown), seconds(probeTimeout), reason, reprobe), &now)
	if err == nil {
		return b, now, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return BreakerRow{}, time.Time{}, false, fmt.Errorf("claim breaker probe: %w", err)
	}
	b, now, err = s.Breaker(ctx)
	return b, now, false, err
}
