package store

// The messages table: reading one message, idempotent creates (one or a
// batch), cancel and the manual retry.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

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
	// StatusCallback is the URL that receives this message's status
	// callbacks instead of STATUS_CALLBACK_URL; empty for that one.
	StatusCallback string
	// Provider is the provider that accepted the message; empty until
	// it is sent.
	Provider string
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
	// Traceparent is the W3C trace context of the request that created
	// the message; its delivery attempts join that trace. Empty stores
	// NULL.
	Traceparent string
	// StatusCallback overrides STATUS_CALLBACK_URL for this message's
	// events; empty stores NULL.
	StatusCallback string
}

const messageColumns = `id, content, phone_number, status, attempts, next_attempt_at,
    COALESCE(last_error, ''), COALESCE(remote_message_id, ''), sent_at, created_at,
    send_at, expires_at, priority, COALESCE(delivery_status, ''), delivered_at, COALESCE(delivery_error, ''),
    COALESCE(status_callback, ''), COALESCE(provider, '')`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	var prio int16
	err := row.Scan(&m.ID, &m.Content, &m.PhoneNumber, &m.Status, &m.Attempts, &m.NextAttemptAt,
		&m.LastError, &m.RemoteMessageID, &m.SentAt, &m.CreatedAt,
		&m.SendAt, &m.ExpiresAt, &prio, &m.DeliveryStatus, &m.DeliveredAt, &m.DeliveryError, &m.StatusCallback, &m.Provider)
	m.Priority = int(prio)
	return m, err
}

// Get reads one message by id.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	q := `SELECT ` + messageColumns + ` FROM messages WHERE id = $1`
	m, err := scanMessage(s.pool.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, messaging.ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}

// Created is one message of a create, and whether this call stored it
// (false: the same id with the same body was there already).
type Created struct {
	Message
	New bool
}

// createSQL inserts a batch in one statement; rows whose id exists are left
// alone and are not returned. expires_at is computed here, from the same
// now() that sets created_at, so a replay can be compared exactly. A row
// whose number is in opt_outs is stored 'suppressed', final, with the
// reason in last_error.
const createSQL = `
INSERT INTO messages (id, content, phone_number, send_at, expires_at, priority, status, last_error, phone_checked, traceparent,
                      status_callback)
SELECT r.id, r.content, r.phone, r.send_at,
       CASE WHEN r.validity > 0 THEN COALESCE(r.send_at, now()) + r.validity * interval '1 second' END,
       r.priority,
       CASE WHEN r.opted_out THEN 'suppressed' ELSE 'pending' END,
       CASE WHEN r.opted_out THEN '` + optedOutError + `' END,
       true,
       NULLIF(r.traceparent, ''),
       NULLIF(r.callback, '')
FROM (
    -- A scalar subquery per row (a primary key probe), not a join the
    -- planner might hash over a scan of all of opt_outs.
    SELECT u.*, (SELECT true FROM opt_outs o WHERE o.phone_number = u.phone) IS NOT NULL AS opted_out
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::smallint[], $7::text[], $8::text[])
         WITH ORDINALITY AS u(id, content, phone, send_at, validity, priority, traceparent, callback, ord)
) r
ORDER BY r.ord
ON CONFLICT (id) DO NOTHING
RETURNING ` + messageColumns

// Create stores ns in one transaction, all or nothing, and returns them in
// the order given. An id that exists already with the same content, phone
// number, send_at, validity and priority is a replay: the existing message
// comes back with New false. The same id with anything else different is a
// *messaging.DuplicateIDError and nothing is stored. Ids must be distinct within ns.
func (s *Store) Create(ctx context.Context, ns []NewMessage) ([]Created, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	var (
		ids      = make([]string, len(ns))
		contents = make([]string, len(ns))
		phones   = make([]string, len(ns))
		sendAt   = make([]*time.Time, len(ns))
		validity = make([]int64, len(ns))
		prio     = make([]int16, len(ns))
		traces   = make([]string, len(ns))
		calls    = make([]string, len(ns))
	)
	for i, n := range ns {
		ids[i], contents[i], phones[i], sendAt[i] = n.ID, n.Content, n.PhoneNumber, n.SendAt
		validity[i], prio[i] = int64(n.Validity/time.Second), int16(n.Priority)
		traces[i], calls[i] = n.Traceparent, n.StatusCallback
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, createSQL, ids, contents, phones, sendAt, validity, prio, traces, calls)
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	made, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	byID := make(map[string]Created, len(ns))
	for _, m := range made {
		byID[m.ID] = Created{Message: m, New: true}
	}
	if len(made) < len(ns) {
		var existing []string
		for _, id := range ids {
			if _, ok := byID[id]; !ok {
				existing = append(existing, id)
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ANY($1)`, existing)
		if err != nil {
			return nil, fmt.Errorf("create messages: %w", err)
		}
		old, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
		if err != nil {
			return nil, fmt.Errorf("create messages: %w", err)
		}
		for _, m := range old {
			byID[m.ID] = Created{Message: m}
		}
	}
	out := make([]Created, len(ns))
	for i, n := range ns {
		c, ok := byID[n.ID]
		if !ok {
			// Inserted and deleted by another system between the two
			// statements: rare enough to ask the client to try again.
			return nil, fmt.Errorf("create messages: id %q neither inserted nor found", n.ID)
		}
		if !c.New && !SameMessage(c.Message, n) {
			return nil, &messaging.DuplicateIDError{Index: i, ID: n.ID}
		}
		out[i] = c
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	return out, nil
}

// SameMessage reports whether stored message m is what n would have
// created: the same content, phone number, send_at, priority, status
// callback, and an expires_at equal to send_at (or created_at) plus n's
// validity.
func SameMessage(m Message, n NewMessage) bool {
	if m.Content != n.Content || m.PhoneNumber != n.PhoneNumber || m.Priority != n.Priority ||
		m.StatusCallback != n.StatusCallback {
		return false
	}
	if (m.SendAt == nil) != (n.SendAt == nil) || m.SendAt != nil && !m.SendAt.Equal(*n.SendAt) {
		return false
	}
	v := n.Validity.Truncate(time.Second)
	if v <= 0 {
		return m.ExpiresAt == nil
	}
	base := m.CreatedAt
	if m.SendAt != nil {
		base = *m.SendAt
	}
	return m.ExpiresAt != nil && m.ExpiresAt.Equal(base.Add(v))
}

// Cancel cancels a pending message (scheduled, due or waiting for a retry)
// and returns it; a message already canceled comes back as it is.
// ErrNotCancelable for any other status, ErrNotFound for an unknown id.
//
// The update takes the row lock the claim takes: a claim that locked the
// row first makes it 'sending' and the cancel finds no pending row; a cancel
// that locked it first makes it 'canceled' and the claim skips it. So a
// message is never both canceled and sent.
func (s *Store) Cancel(ctx context.Context, id string) (Message, error) {
	q := `
UPDATE messages SET status = 'canceled', lease_expires_at = NULL
WHERE id = $1 AND status = 'pending'
RETURNING ` + messageColumns
	m, err := scanMessage(s.pool.QueryRow(ctx, q, id))
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Message{}, fmt.Errorf("cancel message: %w", err)
	}
	m, err = s.Get(ctx, id)
	if err != nil {
		return Message{}, err
	}
	if m.Status == messaging.StatusCanceled {
		return m, nil
	}
	return Message{}, messaging.ErrNotCancelable
}

// RetryFailed puts a failed message back to pending, due now, with its
// attempts reset, and returns it. ErrNotFound when there is no such message,
// ErrNotFailed when it is in any other state (a pending, sending or sent
// message must not be sent again by hand). last_error is kept, so the
// message still tells why it failed until the next attempt.
func (s *Store) RetryFailed(ctx context.Context, id string) (Message, error) {
	q := `
UPDATE messages
SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_expires_at = NULL, round_failed = ''
WHERE id = $1 AND status = 'failed'
RETURNING ` + messageColumns
	m, err := scanMessage(s.pool.QueryRow(ctx, q, id))
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Message{}, fmt.Errorf("retry message: %w", err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1)`, id).Scan(&exists); err != nil {
		return Message{}, fmt.Errorf("retry message: %w", err)
	}
	if !exists {
		return Message{}, messaging.ErrNotFound
	}
	return Message{}, messaging.ErrNotFailed
}
