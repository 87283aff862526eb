package store

// Claims: reserving due messages for one delivery attempt each, within
// the tick's budget, under a lease.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claimed is a message reserved for one delivery attempt. Attempt is the
// attempt number this claim made; it fences the outcome, so a worker whose
// lease expired and whose row was claimed again cannot overwrite the newer
// attempt's result.
type Claimed struct {
	ID          string
	Content     string
	PhoneNumber string
	Attempt     int
	// Tick is the start of the tick whose budget the claim spent; a
	// hand-back within the same tick gives the budget back.
	Tick time.Time
	// Waited is how long the message had been due (since send_at, else
	// created_at) when this claim took it, by the database's clock.
	Waited time.Duration
	// PhoneChecked says the API created the row, so its number is in
	// E.164 and passed the phone checks at the create.
	PhoneChecked bool
	// Traceparent is the W3C trace context stored with the message at
	// create; empty for a row inserted by another system (NULL).
	Traceparent string
	// RoundFailed are the providers that failed retryably in the
	// message's current round of failover.
	RoundFailed []string
	// RetryAt, set by the caller of Release, is when a handed-back row is
	// due again (a provider's rate limit); zero: at once.
	RetryAt time.Time
}

// splitNames reads the comma-separated round_failed column.
func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// leaseExpiredError is the last_error of a row whose lease ran out on its
// last allowed attempt (SQL text: no quote in it).
const leaseExpiredError = "lease expired on the last attempt: the worker stopped during delivery"

// claimSQL reserves up to $1 due messages, highest priority first, then
// oldest, and spends the same amount of the tick budget, in one statement.
// A message is due when it is pending, its send_at (if any) and its retry
// time have passed, and its expires_at (if any) has not. The same statement
// marks 'expired' the pending rows (and rows of a dead worker) whose
// expires_at has passed, without a call and without spending budget; that
// search reads messages_expiry_idx, which holds only unsent rows with an
// expiry, so it costs nothing when none is due to expire. The budget row is locked for
// the statement only, which serializes claims across workers just long
// enough to keep the count exact; SKIP LOCKED keeps workers off each other's
// rows. Rows whose lease expired are due again: their worker died. A row
// whose lease expired on its last allowed attempt ($3) is never taken
// again: the same statement fails it, as ReserveTick's cleanup does, so
// no message gets more calls than MAX_ATTEMPTS. That search reads
// messages_lease_idx, which holds only the rows in flight. A picked row
// whose number is in opt_outs (it opted out after the message was created)
// is not claimed: the same statement marks it 'suppressed', without a call
// and without spending budget; that is one primary key probe of opt_outs
// per picked row. The update finds its rows by primary key (= ANY of an array): a join against
// picked let the planner hash-join over a scan of the whole table once the
// backlog was large, while every claim held the budget row.
const claimSQL = `
WITH budget AS (
    SELECT budget, last_tick_at FROM dispatch_control WHERE id = 1 AND running FOR UPDATE
), picked AS (
    SELECT id, phone_number FROM messages
    WHERE ((status = 'pending' AND next_attempt_at <= now())
        OR (status = 'sending' AND lease_expires_at < now()))
      AND (send_at IS NULL OR send_at <= now())
      AND (expires_at IS NULL OR expires_at > now())
      AND (status = 'pending' OR attempts < $3::int)
    ORDER BY priority DESC, created_at, id
    LIMIT GREATEST(LEAST($1::int, COALESCE((SELECT budget FROM budget), 0)), 0)
    FOR UPDATE SKIP LOCKED
), exhausting AS (
    SELECT id FROM messages
    WHERE status = 'sending' AND lease_expires_at < now() AND attempts >= $3::int
      AND (expires_at IS NULL OR expires_at > now())
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
), exhausted AS (
    UPDATE messages m
    SET status = 'failed', lease_expires_at = NULL, last_error = '` + leaseExpiredError + `'
    WHERE m.id = ANY (ARRAY(SELECT id FROM exhausting))
), expiring AS (
    SELECT id FROM messages
    WHERE expires_at <= now()
      AND (status = 'pending' OR (status = 'sending' AND lease_expires_at < now()))
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE messages m
    SET status = 'expired', lease_expires_at = NULL,
        last_error = 'not sent: expired at ' || to_char(m.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                     || ' before a call started'
    WHERE m.id = ANY (ARRAY(SELECT id FROM expiring))
), blocked AS (
    -- A scalar subquery, not EXISTS: EXISTS would become a join, which the
    -- planner, not knowing how few rows picked holds, hashes over a scan of
    -- all of opt_outs; this is one primary key probe per picked row.
    SELECT p.id FROM picked p
    WHERE (SELECT 1 FROM opt_outs o WHERE o.phone_number = p.phone_number) IS NOT NULL
), suppressed AS (
    UPDATE messages m
    SET status = 'suppressed', lease_expires_at = NULL, last_error = '` + optedOutError + `'
    WHERE m.id = ANY (ARRAY(SELECT id FROM blocked))
), claimed AS (
    UPDATE messages m
    SET status = 'sending', attempts = m.attempts + 1,
        lease_expires_at = now() + $2::float8 * interval '1 second'
    WHERE m.id = ANY (ARRAY(SELECT id FROM picked EXCEPT SELECT id FROM blocked))
    RETURNING m.id, m.content, m.phone_number, m.attempts, m.priority, m.created_at,
              extract(epoch FROM now() - GREATEST(m.send_at, m.created_at))::float8 AS waited,
              m.phone_checked, m.traceparent, m.round_failed
), spent AS (
    UPDATE dispatch_control SET budget = budget - (SELECT count(*) FROM claimed)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM claimed)
)
SELECT id, content, phone_number, attempts, (SELECT last_tick_at FROM budget), waited, phone_checked,
       COALESCE(traceparent, ''), round_failed
FROM claimed ORDER BY priority DESC, created_at, id`

// Claim reserves up to n due messages under a lease of length lease, within
// the current tick's budget and only while sending is running. A row whose
// lease ran out after maxAttempts calls is failed, not claimed.
func (s *Store) Claim(ctx context.Context, n int, lease time.Duration, maxAttempts int) ([]Claimed, error) {
	rows, err := s.pool.Query(ctx, claimSQL, n, seconds(lease), maxAttempts)
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
		var c Claimed
		var (
			tick   *time.Time
			waited float64
			failed string
		)
		err := r.Scan(&c.ID, &c.Content, &c.PhoneNumber, &c.Attempt, &tick, &waited, &c.PhoneChecked, &c.Traceparent, &failed)
		c.RoundFailed = splitNames(failed)
		if tick != nil {
			c.Tick = *tick
		}
		c.Waited = time.Duration(waited * float64(time.Second))
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return out, nil
}
