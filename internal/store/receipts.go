package store

// Delivery receipts: a provider's report on a sent message, matched by its
// remote id.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

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

// ReceiptTarget decides which message a receipt applies to and when it
// happened, from the sent messages carrying its remote id (matches, at
// most two are needed) and the database's now: exactly one must match, and
// its time (r.At, or now without one) may be at most messaging.ReceiptClockSkew
// after now and at most that before the message's sent_at (a
// message sent before sent_at was recorded has no lower bound).
func ReceiptTarget(r Receipt, now time.Time, matches []Message) (Message, time.Time, error) {
	switch {
	case len(matches) == 0:
		return Message{}, time.Time{}, messaging.ErrRemoteNotFound
	case len(matches) > 1:
		return Message{}, time.Time{}, messaging.ErrAmbiguousRemoteID
	}
	m, at := matches[0], now
	if r.At != nil {
		at = *r.At
	}
	switch {
	case at.After(now.Add(messaging.ReceiptClockSkew)):
		return Message{}, time.Time{}, messaging.ErrReceiptFuture
	case m.SentAt != nil && at.Before(m.SentAt.Add(-messaging.ReceiptClockSkew)):
		return Message{}, time.Time{}, messaging.ErrReceiptBeforeSent
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
