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

	"github.com/messaging-server/messaging-server/internal/messaging"
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
	// Disabled is why a 410 disabled the provider, empty while enabled;
	// DisabledAt is when. Only Disable and Enable write them.
	Disabled   string
	DisabledAt *time.Time
}

const breakerColumns = `state, since, reason, failure_rate, window_start, calls, failures,
    prev_calls, prev_failures, probe_at, trips, COALESCE(disabled_reason, ''), disabled_at`

func scanBreaker(row pgx.Row, extra ...any) (BreakerRow, error) {
	var b BreakerRow
	dst := append([]any{&b.State, &b.Since, &b.Reason, &b.FailureRate, &b.WindowStart, &b.Calls, &b.Failures,
		&b.PrevCalls, &b.PrevFailures, &b.ProbeAt, &b.Trips, &b.Disabled, &b.DisabledAt}, extra...)
	err := row.Scan(dst...)
	return b, err
}

// ProviderBreaker is one provider's breaker row.
type ProviderBreaker struct {
	s    *Store
	name string
}

// ProviderBreaker is the handle on provider name's breaker row. Call
// EnsureBreakers first so that the row exists.
func (s *Store) ProviderBreaker(name string) *ProviderBreaker {
	return &ProviderBreaker{s: s, name: name}
}

// EnsureBreakers creates a closed breaker row for each provider that has
// none; the rows of providers no longer configured are left alone.
func (s *Store) EnsureBreakers(ctx context.Context, names []string) error {
	if _, err := s.pool.Exec(ctx, `
INSERT INTO delivery_breaker (provider)
SELECT n FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM delivery_breaker b WHERE b.provider = n)
ON CONFLICT (provider) DO NOTHING`, names); err != nil {
		return fmt.Errorf("create breaker rows: %w", err)
	}
	return nil
}

// Breaker reads the default provider's breaker row (see
// ProviderBreaker.Breaker).
func (s *Store) Breaker(ctx context.Context) (BreakerRow, time.Time, error) {
	return s.ProviderBreaker(messaging.DefaultProvider).Breaker(ctx)
}

// UpdateBreaker changes the default provider's breaker row (see
// ProviderBreaker.UpdateBreaker).
func (s *Store) UpdateBreaker(ctx context.Context, apply func(cur BreakerRow, now time.Time) BreakerChange) (BreakerRow, int64, error) {
	return s.ProviderBreaker(messaging.DefaultProvider).UpdateBreaker(ctx, apply)
}

// ClaimBreakerProbe claims the default provider's probe (see
// ProviderBreaker.ClaimBreakerProbe).
func (s *Store) ClaimBreakerProbe(ctx context.Context, cooldown, probeTimeout time.Duration, reason, reprobe string) (BreakerRow, time.Time, bool, error) {
	return s.ProviderBreaker(messaging.DefaultProvider).ClaimBreakerProbe(ctx, cooldown, probeTimeout, reason, reprobe)
}

// Name is the provider's name.
func (p *ProviderBreaker) Name() string { return p.name }

// Breaker reads the breaker's row and PostgreSQL's clock, for the API and
// for workers refreshing their view.
func (p *ProviderBreaker) Breaker(ctx context.Context) (BreakerRow, time.Time, error) {
	var now time.Time
	b, err := scanBreaker(p.s.pool.QueryRow(ctx, `SELECT `+breakerColumns+`, now() FROM delivery_breaker WHERE provider = $1`, p.name), &now)
	if err != nil {
		return BreakerRow{}, time.Time{}, fmt.Errorf("read breaker of %s: %w", p.name, err)
	}
	return b, now, nil
}

// Disable marks the provider disabled with reason (a 410), for every
// worker, until Enable. A provider already disabled keeps its first
// reason and time.
func (p *ProviderBreaker) Disable(ctx context.Context, reason string) error {
	if _, err := p.s.pool.Exec(ctx, `UPDATE delivery_breaker SET disabled_reason = $2, disabled_at = now()
WHERE provider = $1 AND disabled_reason IS NULL`, p.name, reason); err != nil {
		return fmt.Errorf("disable provider %s: %w", p.name, err)
	}
	return nil
}

// Enable clears a 410's disable; it reports false when the provider has
// no row (an unknown name).
func (p *ProviderBreaker) Enable(ctx context.Context) (bool, error) {
	tag, err := p.s.pool.Exec(ctx, `UPDATE delivery_breaker SET disabled_reason = NULL, disabled_at = NULL WHERE provider = $1`, p.name)
	if err != nil {
		return false, fmt.Errorf("enable provider %s: %w", p.name, err)
	}
	return tag.RowsAffected() == 1, nil
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
func (p *ProviderBreaker) UpdateBreaker(ctx context.Context, apply func(cur BreakerRow, now time.Time) BreakerChange) (BreakerRow, int64, error) {
	var (
		out BreakerRow
		due int64
	)
	err := pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) error {
		var now time.Time
		cur, err := scanBreaker(tx.QueryRow(ctx, `SELECT `+breakerColumns+`, now() FROM delivery_breaker WHERE provider = $1 FOR UPDATE`, p.name), &now)
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
WHERE provider = $12`
		if _, err := tx.Exec(ctx, q, next.State, next.Since, next.Reason, next.FailureRate, next.WindowStart,
			next.Calls, next.Failures, next.PrevCalls, next.PrevFailures, next.ProbeAt, next.Trips, p.name); err != nil {
			return err
		}
		next.Disabled, next.DisabledAt = cur.Disabled, cur.DisabledAt
		if !ch.DueSince.IsZero() {
			tag, err := tx.Exec(ctx, retryHeldBackSQL, ch.DueSince, p.name)
			if err != nil {
				return fmt.Errorf("make held-back retries due: %w", err)
			}
			due = tag.RowsAffected()
		}
		out = next
		return nil
	})
	if err != nil {
		return BreakerRow{}, 0, fmt.Errorf("update breaker of %s: %w", p.name, err)
	}
	return out, due, nil
}

// retryHeldBackSQL makes due at once the messages an outage of provider
// $2 held back: pending rows waiting for a retry whose last recorded call,
// to that provider, failed retryably ('retry') at or after the outage's
// start ($1). Their wait was
// earned from the outage, which is over. send_at is not touched, so a
// scheduled message stays scheduled, and the claim still spends the tick's
// budget on them. The search starts from the calls made since the outage
// began (message_attempts_started_idx), which the breaker kept few, never
// from the backlog.
const retryHeldBackSQL = `
WITH held AS (
    SELECT DISTINCT a.message_id AS id FROM message_attempts a
    WHERE a.started_at >= $1 AND a.outcome = 'retry' AND COALESCE(a.provider, 'default') = $2
)
UPDATE messages m
SET next_attempt_at = now()
WHERE m.id = ANY (ARRAY(SELECT id FROM held))
  AND m.status = 'pending' AND m.next_attempt_at > now()
  AND (SELECT a.outcome = 'retry' AND a.started_at >= $1 AND COALESCE(a.provider, 'default') = $2
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
WHERE provider = $5
  AND ((state = 'open' AND since <= now() - $1::float8 * interval '1 second')
    OR (state = 'half_open' AND probe_at <= now() - $2::float8 * interval '1 second'))
RETURNING ` + breakerColumns + `, now()`

// ClaimBreakerProbe tries to claim the half-open probe; reason is the new
// reason after a cooldown, reprobe after a probe that never reported. It
// returns whether this caller won, and the row with PostgreSQL's clock
// either way.
func (p *ProviderBreaker) ClaimBreakerProbe(ctx context.Context, cooldown, probeTimeout time.Duration, reason, reprobe string) (BreakerRow, time.Time, bool, error) {
	var now time.Time
	b, err := scanBreaker(p.s.pool.QueryRow(ctx, claimProbeSQL, seconds(cooldown), seconds(probeTimeout), reason, reprobe, p.name), &now)
	if err == nil {
		return b, now, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return BreakerRow{}, time.Time{}, false, fmt.Errorf("claim breaker probe of %s: %w", p.name, err)
	}
	b, now, err = p.Breaker(ctx)
	return b, now, false, err
}
