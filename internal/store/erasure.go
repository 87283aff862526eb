package store

// Erasure on request: every message to one phone number loses its content
// and number, and the pending ones are canceled first so that none of them
// is sent afterwards.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErasedNumber replaces the phone number of an erased message.
const ErasedNumber = "erased"

// cancelForErasureSQL cancels the pending messages to $1 (scheduled,
// due or waiting for a retry). A row a worker claimed meanwhile is sending
// and no longer matches.
const cancelForErasureSQL = `
UPDATE messages SET status = 'canceled', lease_expires_at = NULL
WHERE phone_number = $1 AND status = 'pending'
RETURNING id`

// eraseSQL replaces the content with ” and the number with 'erased' in
// every finished message to $1, and scrubs the error texts that may quote
// the provider's answer (the message's last_error and delivery_error and
// its attempts' error), and does the same to the snapshots of its status
// callback events, so that an event sent later carries the erased message:
// each occurrence of the number, of the number without its '+', and of the
// content becomes 'erased'. A message in
// flight (sending) is left to its call; a later erasure finds it.
const eraseSQL = `
WITH victims AS (
    SELECT id, content FROM messages
    WHERE phone_number = $1 AND status NOT IN ('pending', 'sending')
    FOR UPDATE
), scrubbed AS (
    UPDATE message_attempts a
    SET error = replace(replace(replace(a.error, $1, 'erased'), ltrim($1, '+'), 'erased'), v.content, 'erased')
    FROM victims v
    WHERE a.message_id = v.id AND a.error IS NOT NULL
), events AS (
    UPDATE message_events e
    SET snapshot = e.snapshot || jsonb_build_object(
        'content', '', 'phone_number', '` + ErasedNumber + `',
        'last_error', replace(replace(replace(e.snapshot->>'last_error', $1, 'erased'), ltrim($1, '+'), 'erased'), v.content, 'erased'),
        'delivery_error', replace(replace(replace(e.snapshot->>'delivery_error', $1, 'erased'), ltrim($1, '+'), 'erased'), v.content, 'erased'))
    FROM victims v
    WHERE e.message_id = v.id
)
UPDATE messages m
SET content = '', phone_number = '` + ErasedNumber + `',
    last_error = replace(replace(replace(m.last_error, $1, 'erased'), ltrim($1, '+'), 'erased'), v.content, 'erased'),
    delivery_error = replace(replace(replace(m.delivery_error, $1, 'erased'), ltrim($1, '+'), 'erased'), v.content, 'erased')
FROM victims v
WHERE m.id = v.id
RETURNING m.id`

// Erasure is what one erasure changed.
type Erasure struct {
	// Canceled are the pending messages it canceled.
	Canceled int
	// Erased are the messages whose content and number it erased, the
	// ones it just canceled included.
	Erased int
}

// Erase cancels the pending messages to phone and erases the content and
// number of every finished one, in one transaction. beforeCommit runs
// inside it with the erased ids (the caller deletes their cached records
// there); when it fails nothing changes. A second call finds nothing.
func (s *Store) Erase(ctx context.Context, phone string, beforeCommit func(context.Context, []string) error) (Erasure, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	rows, err := tx.Query(ctx, cancelForErasureSQL, phone)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase: cancel: %w", err)
	}
	canceled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Erasure{}, fmt.Errorf("erase: cancel: %w", err)
	}
	rows, err = tx.Query(ctx, eraseSQL, phone)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase: %w", err)
	}
	erased, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Erasure{}, fmt.Errorf("erase: %w", err)
	}
	if len(erased) > 0 && beforeCommit != nil {
		if err := beforeCommit(ctx, erased); err != nil {
			return Erasure{}, fmt.Errorf("erase: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Erasure{}, fmt.Errorf("erase: commit: %w", err)
	}
	return Erasure{Canceled: len(canceled), Erased: len(erased)}, nil
}
