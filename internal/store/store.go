// Package store is the only place that speaks SQL. It owns the messages
// table and the dispatch control row, and every state change of a message
// happens in one statement here, so that concurrent workers stay correct
// without holding transactions across network calls.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Message statuses, as stored in messages.status.
const (
	StatusPending = "pending"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
	// StatusExpired: expires_at passed before a call started; no call was
	// made and last_error says so.
	StatusExpired = "expired"
	// StatusCanceled: canceled by the API while pending; never sent.
	StatusCanceled = "canceled"
	// StatusSuppressed: its number opted out (opt_outs) before a call
	// started; no call was made and no budget spent.
	StatusSuppressed = "suppressed"
)

// Statuses lists every status a message can have, in lifecycle order.
var Statuses = []string{StatusPending, StatusSending, StatusSent, StatusFailed, StatusExpired, StatusCanceled, StatusSuppressed}

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("message not found")
	ErrDuplicate = errors.New("message id already exists")
	ErrNotFailed = errors.New("message is not failed")
)

// Store wraps a pgx pool with the queries the system needs.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool; the caller owns and closes the pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Message is one row of the messages table.
type Message struct {
	ID              string
	Content         string
	PhoneNumber     string
	Status          string
	Attempts        int
	NextAttemptAt   time.Time
	LastError       string
	RemoteMessageID string
	SentAt          *time.Time
	CreatedAt       time.Time
	// SendAt is the earliest time the message may go out (nil: at once).
	SendAt *time.Time
	// ExpiresAt is the latest time a call may start (nil: never expires).
	ExpiresAt *time.Time
	// Priority 0 to 9: among due messages the higher goes first.
	Priority int
	// DeliveryStatus is the latest receipt's "delivered" or
	// "undelivered"; empty without a receipt.
	DeliveryStatus string
	DeliveredAt    *time.Time
	DeliveryError  string
}

// Claimed is a message reserved for one delivery attempt. Attempt is the
// attempt number this claim made; it fences the outcome, so a worker whose
// lease expired and whose row was claimed again cannot overwrite the newer
// attempt's result.
type Claimed struct {
	ID          string
	Content     string
	PhoneNumber string
	Attempt     int
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// leaseExpiredError is the last_error of a row whose lease ran out on its
// last allowed attempt (SQL text: no quote in it).
const leaseExpiredError = "lease expired on the last attempt: the worker stopped during delivery"

// IsDataError tells whether err is PostgreSQL refusing the data of a
// statement (SQLSTATE class 22, data exception, or 23, integrity
// constraint), not the statement failing for a reason of its own: a
// smaller batch without the offending value would succeed.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
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
// per picked row. The
// update finds its rows by primary key (= ANY of an array): a join against
// picked let the planner hash-join over a scan of the whole table once the
// backlog was large, while every claim held the budget row.
const claimSQL = `
WITH budget AS (
    SELECT budget FROM dispatch_control WHERE id = 1 AND running FOR UPDATE
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
    RETURNING m.id, m.content, m.phone_number, m.attempts, m.priority, m.created_at
), spent AS (
    UPDATE dispatch_control SET budget = budget - (SELECT count(*) FROM claimed)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM claimed)
)
SELECT id, content, phone_number, attempts FROM claimed ORDER BY priority DESC, created_at, id`

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
		err := r.Scan(&c.ID, &c.Content, &c.PhoneNumber, &c.Attempt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return out, nil
}

// Outcome is the result of one delivery attempt, to be recorded.
type Outcome struct {
	Claimed
	// Status is what the message becomes: StatusSent, StatusPending (a
	// retry, due at NextAt) or StatusFailed.
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
	Kind       string // "sent", "retry", "failed" or "gone"
}

// fenceSQL is the lease fence of a batch statement that joins messages m
// to an unnest r of (id, attempt): the row is still in flight under the
// claim that made attempt r.attempt. It is one CASE over both sides on
// purpose. Written as "m.status = 'sending' AND m.attempts = r.attempt",
// the status test is a filter on messages alone, which the planner reads
// through the small partial index messages_lease_idx; with the batch
// estimated at 10 rows (a parameter array) it then puts that scan outside
// a nested loop and the whole batch inside it, comparing every row in
// flight with every outcome. A record of 1,000 outcomes took 0.8 s that
// way and drains fell to 1,400 msg/s. As one clause that needs r, the only
// path is the batch outside and a primary key probe per row, linear in
// the batch whatever the statistics say (TestRecordPlanIsLinear).
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
    lease_expires_at  = NULL
FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::text[])
     AS r(id, attempt, status, sent_at, remote_id, next_at, error)
WHERE m.id = r.id AND ` + fenceSQL + `
RETURNING m.id, m.attempts
), attempts AS (
INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, status_code, outcome, error)
SELECT r.id,
       COALESCE((SELECT max(a.attempt) FROM message_attempts a WHERE a.message_id = r.id), 0) + 1,
       r.started_at, r.duration_ms, NULLIF(r.status_code, 0), r.kind, NULLIF(r.error, '')
FROM unnest($1::text[], $2::int[], $7::text[], $8::timestamptz[], $9::int[], $10::int[], $11::text[])
     AS r(id, attempt, error, started_at, duration_ms, status_code, kind)
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
	)
	for i, o := range outs {
		ids[i], attempts[i], statuses[i] = o.ID, int32(o.Attempt), o.Status
		sentAt[i], remote[i], nextAt[i], errs[i] = o.SentAt, o.RemoteID, o.NextAt, o.Error
		if !o.StartedAt.IsZero() {
			at := o.StartedAt
			started[i] = &at
		}
		took[i], codes[i], kinds[i] = durationMillis(o.Duration), int32(o.StatusCode), attemptKind(o)
	}
	rows, err := s.pool.Query(ctx, recordSQL, ids, attempts, statuses, sentAt, remote, nextAt, errs,
		started, took, codes, kinds)
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
	switch o.Status {
	case StatusSent:
		return "sent"
	case StatusPending:
		return "retry"
	}
	return "failed"
}

// releaseSQL hands back claimed rows whose call never started, fenced
// like recordSQL.
const releaseSQL = `
UPDATE messages m
SET status = 'pending', attempts = m.attempts - 1, lease_expires_at = NULL
FROM unnest($1::text[], $2::int[]) AS r(id, attempt)
WHERE m.id = r.id AND ` + fenceSQL

// Release hands back claimed messages whose delivery never started (the
// worker is shutting down), so they are due again at once rather than after
// the lease, and the attempt they did not make is not counted.
func (s *Store) Release(ctx context.Context, cs []Claimed) (int64, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	ids := make([]string, len(cs))
	attempts := make([]int32, len(cs))
	for i, c := range cs {
		ids[i], attempts[i] = c.ID, int32(c.Attempt)
	}
	tag, err := s.pool.Exec(ctx, releaseSQL, ids, attempts)
	if err != nil {
		return 0, fmt.Errorf("release claims: %w", err)
	}
	return tag.RowsAffected(), nil
}

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

// NewMessage is what a producer supplies; everything else has a default.
type NewMessage struct {
	ID          string
	Content     string
	PhoneNumber string
	// SendAt delays the first call; nil sends at once.
	SendAt *time.Time
	// Validity, when positive, sets expires_at to SendAt (or else the
	// creation time) plus Validity, rounded down to whole seconds.
	Validity time.Duration
	Priority int
}

const messageColumns = `id, content, phone_number, status, attempts, next_attempt_at,
    COALESCE(last_error, ''), COALESCE(remote_message_id, ''), sent_at, created_at,
    send_at, expires_at, priority, COALESCE(delivery_status, ''), delivered_at, COALESCE(delivery_error, '')`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	var prio int16
	err := row.Scan(&m.ID, &m.Content, &m.PhoneNumber, &m.Status, &m.Attempts, &m.NextAttemptAt,
		&m.LastError, &m.RemoteMessageID, &m.SentAt, &m.CreatedAt,
		&m.SendAt, &m.ExpiresAt, &prio, &m.DeliveryStatus, &m.DeliveredAt, &m.DeliveryError)
	m.Priority = int(prio)
	return m, err
}

// Insert stores a new pending message; ErrDuplicate when its id exists.
func (s *Store) Insert(ctx context.Context, n NewMessage) (Message, error) {
	q := `INSERT INTO messages (id, content, phone_number, send_at, expires_at, priority)
VALUES ($1, $2, $3, $4::timestamptz,
        CASE WHEN $5::bigint > 0 THEN COALESCE($4::timestamptz, now()) + $5::bigint * interval '1 second' END, $6)
RETURNING ` + messageColumns
	m, err := scanMessage(s.pool.QueryRow(ctx, q, n.ID, n.Content, n.PhoneNumber, n.SendAt,
		int64(n.Validity/time.Second), int16(n.Priority)))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return Message{}, ErrDuplicate
		}
		return Message{}, fmt.Errorf("insert message: %w", err)
	}
	return m, nil
}

// Get reads one message by id.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	q := `SELECT ` + messageColumns + ` FROM messages WHERE id = $1`
	m, err := scanMessage(s.pool.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}
