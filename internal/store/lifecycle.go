package store

// The message lifecycle of issue 10: idempotent creates (one or a batch),
// cancel, the list of every message, the attempts of one message and
// delivery receipts.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// More errors callers branch on.
var (
	ErrNotCancelable = errors.New("message can no longer be canceled")
	// ErrRemoteNotFound: no sent message carries the receipt's remote id.
	ErrRemoteNotFound = errors.New("no sent message has this remote id")
)

// DuplicateIDError says that item Index of a create reused an existing
// message's id with a different body.
type DuplicateIDError struct {
	Index int
	ID    string
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("item %d: message id %q already exists with a different body", e.Index, e.ID)
}

// Is makes a DuplicateIDError match ErrDuplicate.
func (e *DuplicateIDError) Is(target error) bool { return target == ErrDuplicate }

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
INSERT INTO messages (id, content, phone_number, send_at, expires_at, priority, status, last_error)
SELECT r.id, r.content, r.phone, r.send_at,
       CASE WHEN r.validity > 0 THEN COALESCE(r.send_at, now()) + r.validity * interval '1 second' END,
       r.priority,
       CASE WHEN r.opted_out THEN 'suppressed' ELSE 'pending' END,
       CASE WHEN r.opted_out THEN '` + optedOutError + `' END
FROM (
    -- A scalar subquery per row (a primary key probe), not a join the
    -- planner might hash over a scan of all of opt_outs.
    SELECT u.*, (SELECT true FROM opt_outs o WHERE o.phone_number = u.phone) IS NOT NULL AS opted_out
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::smallint[])
         WITH ORDINALITY AS u(id, content, phone, send_at, validity, priority, ord)
) r
ORDER BY r.ord
ON CONFLICT (id) DO NOTHING
RETURNING ` + messageColumns

// Create stores ns in one transaction, all or nothing, and returns them in
// the order given. An id that exists already with the same content, phone
// number, send_at, validity and priority is a replay: the existing message
// comes back with New false. The same id with anything else different is a
// *DuplicateIDError and nothing is stored. Ids must be distinct within ns.
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
	)
	for i, n := range ns {
		ids[i], contents[i], phones[i], sendAt[i] = n.ID, n.Content, n.PhoneNumber, n.SendAt
		validity[i], prio[i] = int64(n.Validity/time.Second), int16(n.Priority)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, createSQL, ids, contents, phones, sendAt, validity, prio)
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
			return nil, &DuplicateIDError{Index: i, ID: n.ID}
		}
		out[i] = c
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	return out, nil
}

// SameMessage reports whether stored message m is what n would have
// created: the same content, phone number, send_at, priority, and an
// expires_at equal to send_at (or created_at) plus n's validity.
func SameMessage(m Message, n NewMessage) bool {
	if m.Content != n.Content || m.PhoneNumber != n.PhoneNumber || m.Priority != n.Priority {
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
	if m.Status == StatusCanceled {
		return m, nil
	}
	return Message{}, ErrNotCancelable
}

// Attempt is one webhook call made for a message.
type Attempt struct {
	Attempt    int
	StartedAt  time.Time
	DurationMS int
	StatusCode *int // nil: no HTTP answer (timeout, connection error)
	Outcome    string
	Error      string
}

// Attempts lists the calls made for message id, oldest first;
// ErrNotFound when there is no such message.
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	const q = `
SELECT attempt, started_at, duration_ms, status_code, outcome, COALESCE(error, '')
FROM message_attempts WHERE message_id = $1 ORDER BY attempt`
	rows, err := s.pool.Query(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Attempt, &a.StartedAt, &a.DurationMS, &a.StatusCode, &a.Outcome, &a.Error)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	if len(out) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1)`, id).Scan(&exists); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		if !exists {
			return nil, ErrNotFound
		}
	}
	return out, nil
}

// Receipt is a delivery report from the provider. It names its message by
// RemoteID alone, which must match exactly one sent message; a provider
// field, once there are several providers, would narrow the match.
type Receipt struct {
	RemoteID string
	Status   string // "delivered" or "undelivered"
	Error    string // the provider's error code; may be empty
	// At is when the provider says it happened; nil means now.
	At *time.Time
}

// Errors of ApplyReceipt, beside ErrRemoteNotFound.
var (
	// ErrAmbiguousRemoteID: several sent messages carry the receipt's
	// remote id, so it cannot say which one it is about.
	ErrAmbiguousRemoteID = errors.New("several sent messages have this remote id")
	// ErrReceiptFuture: the receipt is dated more than ReceiptClockSkew
	// after the database's now.
	ErrReceiptFuture = errors.New("receipt timestamp is in the future")
	// ErrReceiptBeforeSent: the receipt is dated more than
	// ReceiptClockSkew before the message's sent_at.
	ErrReceiptBeforeSent = errors.New("receipt timestamp is before the message was sent")
)

// ReceiptClockSkew is how far a receipt's timestamp may lie after the
// database's now, or before the message's sent_at: the provider's clock is
// not ours.
const ReceiptClockSkew = 5 * time.Minute

// ReceiptTarget decides which message a receipt applies to and when it
// happened, from the sent messages carrying its remote id (matches, at
// most two are needed) and the database's now: exactly one must match, and
// its time (r.At, or now without one) may be at most ReceiptClockSkew
// after now and at most ReceiptClockSkew before the message's sent_at (a
// message sent before sent_at was recorded has no lower bound).
func ReceiptTarget(r Receipt, now time.Time, matches []Message) (Message, time.Time, error) {
	switch {
	case len(matches) == 0:
		return Message{}, time.Time{}, ErrRemoteNotFound
	case len(matches) > 1:
		return Message{}, time.Time{}, ErrAmbiguousRemoteID
	}
	m, at := matches[0], now
	if r.At != nil {
		at = *r.At
	}
	switch {
	case at.After(now.Add(ReceiptClockSkew)):
		return Message{}, time.Time{}, ErrReceiptFuture
	case m.SentAt != nil && at.Before(m.SentAt.Add(-ReceiptClockSkew)):
		return Message{}, time.Time{}, ErrReceiptBeforeSent
	}
	return m, at, nil
}

// ApplyReceipt stores r on the one sent message with its remote id and
// returns the message. A receipt not newer than the one stored changes
// nothing (the first of equal timestamps wins, the newest timestamp wins
// otherwise), so repeats and reordering are harmless; it still answers
// with the message as stored. ReceiptTarget's errors change nothing
// either. The rows are locked from the read to the update, so two receipts
// for one message apply one after the other.
func (s *Store) ApplyReceipt(ctx context.Context, r Receipt) (Message, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM messages
WHERE remote_message_id = $1 AND status = 'sent' ORDER BY id LIMIT 2 FOR UPDATE`, r.RemoteID)
	if err != nil {
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	}
	matches, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	}
	m, at, err := ReceiptTarget(r, now, matches)
	if err != nil {
		return Message{}, err
	}
	q := `
UPDATE messages
SET delivery_status = $2, delivered_at = $4, delivery_error = NULLIF($3, '')
WHERE id = $1 AND (delivered_at IS NULL OR delivered_at < $4)
RETURNING ` + messageColumns
	updated, err := scanMessage(tx.QueryRow(ctx, q, m.ID, r.Status, r.Error, at))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// A receipt as new or newer is stored: m is the message as it is.
	case err != nil:
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	default:
		m = updated
	}
	if err := tx.Commit(ctx); err != nil {
		return Message{}, fmt.Errorf("apply receipt: %w", err)
	}
	return m, nil
}

// ListCursor is the position after the last row of a page of the list of
// every message: created_at and id, both descending.
type ListCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListFilter narrows the list of every message; empty fields match all.
type ListFilter struct {
	Status   string
	Priority *int
}

// ListMessages returns up to limit messages newest first (created_at, then
// id, descending) after the cursor, and whether more follow. It is a keyset
// scan of messages_created_idx, so a deep page costs what the first does.
func (s *Store) ListMessages(ctx context.Context, f ListFilter, after *ListCursor, limit int) ([]Message, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("list messages: limit %d is not positive", limit)
	}
	var prio *int16
	if f.Priority != nil {
		p := int16(*f.Priority)
		prio = &p
	}
	var at *time.Time
	var id *string
	if after != nil {
		at, id = &after.CreatedAt, &after.ID
	}
	// Only the conditions in use are written, so that the keyset
	// comparison is always an index condition, even in a generic plan.
	q := `SELECT ` + messageColumns + ` FROM messages WHERE true`
	args := []any{limit + 1}
	if f.Status != "" {
		args = append(args, f.Status)
		q += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if prio != nil {
		args = append(args, *prio)
		q += fmt.Sprintf(` AND priority = $%d`, len(args))
	}
	if at != nil {
		args = append(args, *at, *id)
		q += fmt.Sprintf(` AND (created_at, id) < ($%d::timestamptz, $%d::text)`, len(args)-1, len(args))
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list messages: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
