package store

// The shared circuit breaker's row. The decisions are made by the pure state
// machine in internal/breaker; this file only reads and writes the row,
// under the row lock, with PostgreSQL's clock as the one clock.

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

// BreakerChange is what an UpdateBreaker apply decides.
type BreakerChange struct {
	// Row is the row to write when Write is set.
	Row   BreakerRow
	Write bool
	// DueSince, when set, is the start of an outage that this write
	// ends: the retries it scheduled are made due in the same
	// transaction (see retryHeldBackSQL).
	DueSince time.Time
}

// UpdateBreaker changes the breaker's row in one short transaction: it
// locks the row, hands it and PostgreSQL's now() to apply, and writes what
// apply returns when it reports a change. Workers call it once per batch of
// outcomes at most (the breaker aggregates), never per message. It returns
// the row as it stands afterwards and how many held-back messages it made
// due. The row lock makes the process whose write closes the breaker the
// only one that sees the transition, so the retries are released once;
// and because the release commits with the closed state, a worker that
// reads the breaker closed finds those messages due.
func (s *Store) UpdateBreaker(ctx context.Context, apply func(cur BreakerRow, now time.Time) BreakerChange) (BreakerRow, int64, error) {
	var (
		out BreakerRow
		due int64
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var now time.Time
		cur, err := scanBreaker(tx.QueryRow(ctx, `SELECT `+breakerColumns+`, now() FROM delivery_breaker WHERE id = 1 FOR UPDATE`), &now)
		if err != nil {
			return err
		}
		ch := apply(cur, now)
		if !ch.Write {
			out = cur
			return nil
		}
		next := ch.Row
		const q = `
UPDATE delivery_breaker
SET state = $1, since = $2, reason = $3, failure_rate = $4, window_start = $5, calls = $6, failures = $7,
    prev_calls = $8, prev_failures = $9, probe_at = $10, trips = $11
WHERE id = 1`
		if _, err := tx.Exec(ctx, q, next.State, next.Since, next.Reason, next.FailureRate, next.WindowStart,
			next.Calls, next.Failures, next.PrevCalls, next.PrevFailures, next.ProbeAt, next.Trips); err != nil {
			return err
		}
		if !ch.DueSince.IsZero() {
			tag, err := tx.Exec(ctx, retryHeldBackSQL, ch.DueSince)
			if err != nil {
				return fmt.Errorf("make held-back retries due: %w", err)
			}
			due = tag.RowsAffected()
		}
		out = next
		return nil
	})
	if err != nil {
		return BreakerRow{}, 0, fmt.Errorf("update breaker: %w", err)
	}
	return out, due, nil
}

// retryHeldBackSQL makes due at once the messages an outage held back:
// pending rows waiting for a retry whose last recorded call failed
// retryably ('retry') at or after the outage's start ($1). Their wait was
// earned from the outage, which is over. send_at is not touched, so a
// scheduled message stays scheduled, and the claim still spends the tick's
// budget on them. The search starts from the calls made since the outage
// began (message_attempts_started_idx), which the breaker kept few, never
// from the backlog.
const retryHeldBackSQL = `
WITH held AS (
    SELECT DISTINCT a.message_id AS id FROM message_attempts a
    WHERE a.started_at >= $1 AND a.outcome = 'retry'
)
UPDATE messages m
SET next_attempt_at = now()
WHERE m.id = ANY (ARRAY(SELECT id FROM held))
  AND m.status = 'pending' AND m.next_attempt_at > now()
  AND (SELECT a.outcome = 'retry' AND a.started_at >= $1
       FROM message_attempts a WHERE a.message_id = m.id
       ORDER BY a.attempt DESC LIMIT 1)`

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
