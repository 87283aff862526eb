package store

// What becomes of a claim: its outcome recorded, with the call appended to
// message_attempts, or the claim handed back when no call started. Both are
// fenced by the claim's attempt number.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// Outcome is the result of one delivery attempt, to be recorded.
type Outcome struct {
	Claimed
	// Status is what the message becomes: messaging.StatusSent,
	// StatusPending (a retry, due at NextAt) or StatusFailed.
	Status   string
	RemoteID string    // sent only
	SentAt   time.Time // sent only
	NextAt   time.Time // pending only
	Error    string    // pending and failed: why

	// The webhook call this outcome comes from, written to
	// message_attempts in the same statement. A zero StartedAt means no
	// call was made (the row was invalid): no attempt is written.
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int    // the HTTP status; 0 when there was no answer
	Kind       string // one of messaging.Kinds
	// Provider is the provider called; empty when no call was made.
	Provider string
	// NextRound are the providers that failed retryably in the round
	// the message is in after this outcome (written to round_failed).
	NextRound []string
}

// fenceSQL is the lease fence of a batch statement that joins messages m
// to an unnest r of (id, attempt): the row is still in flight under the
// claim that made attempt r.attempt. It is one CASE over both sides on
// purpose. Written as "m.status = 'sending' AND m.attempts = r.attempt",
// the status test is a filter on messages alone, which the planner reads
// through the small partial index messages_lease_idx; with the batch
// estimated at 10 rows (a parameter array) it then puts that scan outside
// a nested loop and the whole batch inside it, comparing every row in
// flight with every outcome: a cost that grows with the product of the two,
// which a large batch during a deep drain turns into the bottleneck. As one
// clause that needs r, the only path is the batch outside and a primary key
// probe per row, linear in the batch whatever the statistics say
// (TestBatchPlansAreLinear).
const fenceSQL = `CASE WHEN m.attempts = r.attempt THEN m.status = 'sending' END`

// recordSQL writes a batch of outcomes in one statement. The status and
// attempt in the WHERE clause fence each row: a worker whose lease expired
// and whose row was claimed again (or handed back) changes nothing. For
// each row it changed and whose outcome came from a call, it also appends
// the call to message_attempts, numbered after the message's last recorded
// call (a manual retry resets messages.attempts, never this history).
// The fence is written as fenceSQL, one clause over both the message and
// its outcome; see there for why.
const recordSQL = `
WITH updated AS (
UPDATE messages m
SET status            = r.status,
    is_sent           = m.is_sent OR r.status = 'sent',
    sent_at           = CASE WHEN r.status = 'sent' THEN r.sent_at ELSE m.sent_at END,
    remote_message_id = CASE WHEN r.status = 'sent' THEN NULLIF(r.remote_id, '') ELSE m.remote_message_id END,
    next_attempt_at   = CASE WHEN r.status = 'pending' THEN r.next_at ELSE m.next_attempt_at END,
    last_error        = CASE WHEN r.status = 'sent' THEN NULL ELSE r.error END,
    lease_expires_at  = NULL,
    provider          = CASE WHEN r.status = 'sent' THEN NULLIF(r.provider, '') ELSE m.provider END,
    round_failed      = r.round_failed
FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::text[],
            $12::text[], $13::text[])
     AS r(id, attempt, status, sent_at, remote_id, next_at, error, provider, round_failed)
WHERE m.id = r.id AND ` + fenceSQL + `
RETURNING m.id, m.attempts
), attempts AS (
INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, status_code, outcome, error, provider)
SELECT r.id,
       COALESCE((SELECT max(a.attempt) FROM message_attempts a WHERE a.message_id = r.id), 0) + 1,
       r.started_at, r.duration_ms, NULLIF(r.status_code, 0), r.kind, NULLIF(r.error, ''), NULLIF(r.provider, '')
FROM unnest($1::text[], $2::int[], $7::text[], $8::timestamptz[], $9::int[], $10::int[], $11::text[], $12::text[])
     AS r(id, attempt, error, started_at, duration_ms, status_code, kind, provider)
JOIN updated u ON u.id = r.id AND u.attempts = r.attempt
WHERE r.started_at IS NOT NULL
)
SELECT id FROM updated`

// RecordOutcomes records a batch of outcomes in one round trip and returns
// the ids it changed; an outcome whose claim was lost is left out.
func (s *Store) RecordOutcomes(ctx context.Context, outs []Outcome) (map[string]bool, error) {
	if len(outs) == 0 {
		return map[string]bool{}, nil
	}
	var (
		ids      = make([]string, len(outs))
		attempts = make([]int32, len(outs))
		statuses = make([]string, len(outs))
		sentAt   = make([]time.Time, len(outs))
		remote   = make([]string, len(outs))
		nextAt   = make([]time.Time, len(outs))
		errs     = make([]string, len(outs))
		started  = make([]*time.Time, len(outs))
		took     = make([]int32, len(outs))
		codes    = make([]int32, len(outs))
		kinds    = make([]string, len(outs))
		provs    = make([]string, len(outs))
		rounds   = make([]string, len(outs))
	)
	for i, o := range outs {
		ids[i], attempts[i], statuses[i] = o.ID, int32(o.Attempt), o.Status
		sentAt[i], remote[i], nextAt[i], errs[i] = o.SentAt, o.RemoteID, o.NextAt, o.Error
		if !o.StartedAt.IsZero() {
			at := o.StartedAt
			started[i] = &at
		}
		took[i], codes[i], kinds[i] = durationMillis(o.Duration), int32(o.StatusCode), attemptKind(o)
		provs[i], rounds[i] = o.Provider, strings.Join(o.NextRound, ",")
	}
	rows, err := s.pool.Query(ctx, recordSQL, ids, attempts, statuses, sentAt, remote, nextAt, errs,
		started, took, codes, kinds, provs, rounds)
	if err != nil {
		return nil, fmt.Errorf("record outcomes: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record outcomes: %w", err)
	}
	out := make(map[string]bool, len(done))
	for _, id := range done {
		out[id] = true
	}
	return out, nil
}

// durationMillis rounds a call's duration to whole milliseconds, within
// the INTEGER column.
func durationMillis(d time.Duration) int32 {
	ms := d.Round(time.Millisecond).Milliseconds()
	return int32(min(max(ms, 0), 1<<31-1))
}

// attemptKind is the attempt's outcome: the call's Kind, or, when the caller
// left it empty, what the new status implies.
func attemptKind(o Outcome) string {
	if o.Kind != "" {
		return o.Kind
	}
	return messaging.KindOf(o.Status)
}

// releaseSQL hands back claimed rows whose call never started, fenced
// like recordSQL, and gives their budget back to the tick that spent it,
// when that tick is still the current one: a row handed back (a stopping
// worker, an open breaker, a queue that waited too long) is due again at
// once, and the tick may still send it, from this worker or another. A
// row claimed in an earlier tick refunds nothing, so no tick sends more
// than its budget.
const releaseSQL = `
WITH released AS (
    UPDATE messages m
    SET status = 'pending', attempts = m.attempts - 1, lease_expires_at = NULL,
        next_attempt_at = COALESCE(r.due, m.next_attempt_at)
    FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[]) AS r(id, attempt, tick, due)
    WHERE m.id = r.id AND ` + fenceSQL + `
    RETURNING r.tick
), refund AS (
    UPDATE dispatch_control d
    SET budget = d.budget + (SELECT count(*) FROM released x WHERE x.tick = d.last_tick_at)
    WHERE d.id = 1 AND EXISTS (SELECT 1 FROM released x WHERE x.tick = d.last_tick_at)
)
SELECT count(*) FROM released`

// Release hands back claimed messages whose delivery never started, so
// they are due again at once rather than after the lease, the attempt they
// did not make is not counted, and the current tick's budget they spent is
// given back.
func (s *Store) Release(ctx context.Context, cs []Claimed) (int64, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	ids := make([]string, len(cs))
	attempts := make([]int32, len(cs))
	ticks := make([]*time.Time, len(cs))
	dues := make([]*time.Time, len(cs))
	for i, c := range cs {
		ids[i], attempts[i] = c.ID, int32(c.Attempt)
		if !c.Tick.IsZero() {
			t := c.Tick
			ticks[i] = &t
		}
		if !c.RetryAt.IsZero() {
			d := c.RetryAt
			dues[i] = &d
		}
	}
	var n int64
	if err := s.pool.QueryRow(ctx, releaseSQL, ids, attempts, ticks, dues).Scan(&n); err != nil {
		return 0, fmt.Errorf("release claims: %w", err)
	}
	return n, nil
}
