package store

// The outbox of status callbacks: message_events. The rows are written by
// the trigger of migration 00015 in the statement that changes a message;
// this file lists them, claims due ones for a sender under a lease, records
// what became of a call (fenced by the claim's attempt number) and puts an
// event back in line by hand.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// The statuses of an event.
const (
	EventPending   = "pending"
	EventDelivered = "delivered"
	EventFailed    = "failed"
)

// EventTypes are the types an event can have, in the order a message may
// go through them; the trigger writes 'message.' + the new status.
var EventTypes = []string{
	"message.sent", "message.failed", "message.expired", "message.canceled",
	"message.delivered", "message.undelivered",
}

// Event is one row of message_events, without its snapshot.
type Event struct {
	ID          string
	Seq         int64
	MessageID   string
	Type        string
	CreatedAt   time.Time
	Status      string
	Attempts    int
	DeliveredAt *time.Time
	LastError   string
}

const eventColumns = `id::text, seq, message_id, type, created_at, status, attempts, delivered_at, COALESCE(last_error, '')`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.Seq, &e.MessageID, &e.Type, &e.CreatedAt, &e.Status, &e.Attempts, &e.DeliveredAt, &e.LastError)
	return e, err
}

// ListEvents returns the events of message id, oldest first;
// messaging.ErrNotFound when there is no such message.
func (s *Store) ListEvents(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM message_events WHERE message_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if len(evs) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1)`, id).Scan(&exists); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if !exists {
			return nil, messaging.ErrNotFound
		}
	}
	return evs, nil
}

// ClaimedEvent is an event a sender claimed: the message as it was right
// after the change, the URL the message chose (empty: the configured
// one) and the claim's attempt number within the current round of the
// retry schedule.
type ClaimedEvent struct {
	Event
	Message Message
	URL     string
	// Round is the number of this call within the current round of the
	// retry schedule: 1 for the first call, or the first after a manual
	// redelivery.
	Round int
}

// claimEventsSQL takes up to $1 due events under a lease of $2 seconds.
// An event is due when it is pending, its next_attempt_at has come, no
// live lease holds it, it has somewhere to go ($3: a default URL is
// configured, else only events with their own URL), and no earlier event
// of its message is still pending: a message's events go out one after the
// other, in order, while different messages do not wait for each other.
// An earlier event that is 'failed' no longer holds the later ones back.
// FOR UPDATE SKIP LOCKED lets senders in many processes claim side by
// side; the claim counts the attempt, which fences its outcome.
const claimEventsSQL = `
WITH due AS (
    SELECT e.id FROM message_events e
    WHERE e.status = 'pending' AND e.next_attempt_at <= now()
      AND (e.lease_expires_at IS NULL OR e.lease_expires_at < now())
      AND (e.callback_url IS NOT NULL OR $3::bool)
      AND NOT EXISTS (SELECT 1 FROM message_events p
                      WHERE p.message_id = e.message_id AND p.seq < e.seq AND p.status = 'pending')
    ORDER BY e.next_attempt_at, e.seq
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE message_events e
SET attempts = e.attempts + 1, lease_expires_at = now() + $2::float8 * interval '1 second'
FROM due
WHERE e.id = due.id
RETURNING e.id::text, e.seq, e.message_id, e.type, e.created_at, e.status, e.attempts, e.delivered_at,
          COALESCE(e.last_error, ''), e.snapshot, COALESCE(e.callback_url, ''), e.attempts - e.round_start`

// ClaimEvents claims up to limit due events for lease; withDefault tells
// whether events without a URL of their own have one to go to.
func (s *Store) ClaimEvents(ctx context.Context, limit int, lease time.Duration, withDefault bool) ([]ClaimedEvent, error) {
	rows, err := s.pool.Query(ctx, claimEventsSQL, limit, seconds(lease), withDefault)
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClaimedEvent, error) {
		var c ClaimedEvent
		var snap []byte
		err := r.Scan(&c.ID, &c.Seq, &c.MessageID, &c.Type, &c.CreatedAt, &c.Status, &c.Attempts, &c.DeliveredAt,
			&c.LastError, &snap, &c.URL, &c.Round)
		if err != nil {
			return c, err
		}
		c.Message, err = DecodeSnapshot(snap)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	return out, nil
}

// snapshotRow is the part of to_jsonb(messages row) a message answer
// shows; the keys are the column names.
type snapshotRow struct {
	ID              string     `json:"id"`
	Content         string     `json:"content"`
	PhoneNumber     string     `json:"phone_number"`
	Status          string     `json:"status"`
	Attempts        int        `json:"attempts"`
	NextAttemptAt   time.Time  `json:"next_attempt_at"`
	LastError       *string    `json:"last_error"`
	RemoteMessageID *string    `json:"remote_message_id"`
	SentAt          *time.Time `json:"sent_at"`
	CreatedAt       time.Time  `json:"created_at"`
	SendAt          *time.Time `json:"send_at"`
	ExpiresAt       *time.Time `json:"expires_at"`
	Priority        int        `json:"priority"`
	DeliveryStatus  *string    `json:"delivery_status"`
	DeliveredAt     *time.Time `json:"delivered_at"`
	DeliveryError   *string    `json:"delivery_error"`
	StatusCallback  *string    `json:"status_callback"`
	Provider        *string    `json:"provider"`
}

// DecodeSnapshot reads an event's snapshot (to_jsonb of the messages row
// right after the change) into a Message, as scanMessage reads the row.
func DecodeSnapshot(b []byte) (Message, error) {
	var r snapshotRow
	if err := json.Unmarshal(b, &r); err != nil {
		return Message{}, fmt.Errorf("decode event snapshot: %w", err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return Message{
		ID: r.ID, Content: r.Content, PhoneNumber: r.PhoneNumber, Status: r.Status, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt, LastError: str(r.LastError), RemoteMessageID: str(r.RemoteMessageID),
		SentAt: r.SentAt, CreatedAt: r.CreatedAt, SendAt: r.SendAt, ExpiresAt: r.ExpiresAt, Priority: r.Priority,
		DeliveryStatus: str(r.DeliveryStatus), DeliveredAt: r.DeliveredAt, DeliveryError: str(r.DeliveryError),
		StatusCallback: str(r.StatusCallback), Provider: str(r.Provider),
	}, nil
}

// EventOutcome is what became of one claimed call: the event is
// delivered, due again at NextAt, or failed for good.
type EventOutcome struct {
	ID      string
	Attempt int    // the claim's attempts, the fence
	Status  string // EventDelivered, EventPending or EventFailed
	NextAt  time.Time
	Error   string // why the call was not accepted
}

// recordEventsSQL writes a batch of outcomes, each only when its event is
// still held by the claim that made it: pending with the claim's attempt
// number. A sender whose lease ran out and whose event was claimed again
// changes nothing. It returns the ids it changed.
const recordEventsSQL = `
UPDATE message_events e
SET status           = r.status,
    delivered_at     = CASE WHEN r.status = 'delivered' THEN now() ELSE e.delivered_at END,
    next_attempt_at  = CASE WHEN r.status = 'pending' THEN r.next_at ELSE e.next_attempt_at END,
    last_error       = NULLIF(r.error, ''),
    lease_expires_at = NULL
FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[]) AS r(id, attempt, status, next_at, error)
WHERE e.id = r.id AND e.attempts = r.attempt AND e.status = 'pending'
RETURNING e.id::text`

// RecordEvents records a batch of outcomes in one statement and returns
// the ids whose claim still held.
func (s *Store) RecordEvents(ctx context.Context, outs []EventOutcome) (map[string]bool, error) {
	if len(outs) == 0 {
		return map[string]bool{}, nil
	}
	ids := make([]string, len(outs))
	attempts := make([]int32, len(outs))
	statuses := make([]string, len(outs))
	nextAt := make([]time.Time, len(outs))
	errs := make([]string, len(outs))
	for i, o := range outs {
		ids[i], attempts[i], statuses[i], nextAt[i], errs[i] = o.ID, int32(o.Attempt), o.Status, o.NextAt, o.Error
	}
	rows, err := s.pool.Query(ctx, recordEventsSQL, ids, attempts, statuses, nextAt, errs)
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	held := make(map[string]bool, len(done))
	for _, id := range done {
		held[id] = true
	}
	return held, nil
}

// RecordEvent records one outcome and tells whether its claim still held.
func (s *Store) RecordEvent(ctx context.Context, o EventOutcome) (bool, error) {
	held, err := s.RecordEvents(ctx, []EventOutcome{o})
	return held[o.ID], err
}

// RedeliverEvent puts event id back in line, due now, with a fresh round
// of the retry schedule, whatever its status (a failed one included), and
// returns it; messaging.ErrEventNotFound for an unknown id.
func (s *Store) RedeliverEvent(ctx context.Context, id string) (Event, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Event{}, messaging.ErrEventNotFound // no row can have it
	}
	q := `
UPDATE message_events
SET status = 'pending', next_attempt_at = now(), lease_expires_at = NULL, round_start = attempts
WHERE id = $1::uuid
RETURNING ` + eventColumns
	e, err := scanEvent(s.pool.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, messaging.ErrEventNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("redeliver event: %w", err)
	}
	return e, nil
}

// PendingEvents counts the events not yet accepted nor given up.
func (s *Store) PendingEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM message_events WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending events: %w", err)
	}
	return n, nil
}
