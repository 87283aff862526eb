package store

// Keyset pages over the messages table: the sent list and the list of
// every message. Every statement is parameterized.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SentCursor is the position after the last row of a page, in the list's
// order: sent_at descending with rows of unknown sent_at last, then id
// descending. A nil SentAt means the position is among the rows of unknown
// sent_at.
type SentCursor struct {
	SentAt *time.Time
	ID     string
}

const sentColumns = messageColumns

// The three shapes of the sent-list query. Each one is a keyset scan of
// messages_sent_idx (sent_at DESC, id DESC) WHERE status = 'sent': the row
// comparison is an index condition, so a page costs the same however deep it
// is. That index keeps NULL sent_at first, while the list shows those rows
// last (they were sent before sent_at was recorded), so the dated and the
// undated rows are read by two index scans and appended.
const (
	sentFirstPage = `
(SELECT ` + sentColumns + ` FROM messages
 WHERE status = 'sent' AND sent_at IS NOT NULL
 ORDER BY sent_at DESC, id DESC LIMIT $1)
UNION ALL
(SELECT ` + sentColumns + ` FROM messages
 WHERE status = 'sent' AND sent_at IS NULL
 ORDER BY id DESC LIMIT $1)
ORDER BY sent_at DESC NULLS LAST, id DESC LIMIT $1`

	sentAfterDated = `
(SELECT ` + sentColumns + ` FROM messages
 WHERE status = 'sent' AND sent_at IS NOT NULL AND (sent_at, id) < ($2::timestamptz, $3::text)
 ORDER BY sent_at DESC, id DESC LIMIT $1)
UNION ALL
(SELECT ` + sentColumns + ` FROM messages
 WHERE status = 'sent' AND sent_at IS NULL
 ORDER BY id DESC LIMIT $1)
ORDER BY sent_at DESC NULLS LAST, id DESC LIMIT $1`

	sentAfterUndated = `
SELECT ` + sentColumns + ` FROM messages
WHERE status = 'sent' AND sent_at IS NULL AND id < $2::text
ORDER BY id DESC LIMIT $1`
)

// ListSent returns up to limit sent messages after the cursor (from the
// newest when after is nil), and whether more follow. Rows marked sent while
// a client pages through the list sort before its cursor (they are newer),
// so a walk never repeats or skips a row that was sent when it started.
func (s *Store) ListSent(ctx context.Context, after *SentCursor, limit int) ([]Message, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("list sent: limit %d is not positive", limit)
	}
	var (
		rows pgx.Rows
		err  error
	)
	// One row more than asked tells whether another page exists.
	n := limit + 1
	switch {
	case after == nil:
		rows, err = s.pool.Query(ctx, sentFirstPage, n)
	case after.SentAt != nil:
		rows, err = s.pool.Query(ctx, sentAfterDated, n, *after.SentAt, after.ID)
	default:
		rows, err = s.pool.Query(ctx, sentAfterUndated, n, after.ID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list sent: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list sent: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
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
