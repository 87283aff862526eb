package store

// Queries the HTTP API needs beyond delivery: the sent list, the manual
// retry and the per-status counts. Every statement is parameterized.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SentMessage is one row of the sent list. Its SentAt is nil only for
// rows a seed-era deployment marked sent (is_sent) before sent_at existed.
type SentMessage = Message

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
func (s *Store) ListSent(ctx context.Context, after *SentCursor, limit int) ([]SentMessage, bool, error) {
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
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SentMessage, error) { return scanMessage(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list sent: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// RetryFailed puts a failed message back to pending, due now, with its
// attempts reset, and returns it. ErrNotFound when there is no such message,
// ErrNotFailed when it is in any other state (a pending, sending or sent
// message must not be sent again by hand). last_error is kept, so the
// message still tells why it failed until the next attempt.
func (s *Store) RetryFailed(ctx context.Context, id string) (Message, error) {
	q := `
UPDATE messages
SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_expires_at = NULL
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
		return Message{}, ErrNotFound
	}
	return Message{}, ErrNotFailed
}

// CountByStatus counts messages in each status, with every status present
// (zero when none), for the metrics scrape. It reads the whole table, so it
// is meant for a scrape every few seconds at most, not per request.
func (s *Store) CountByStatus(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(Statuses))
	for _, st := range Statuses {
		out[st] = 0
	}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM messages GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count messages: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	return out, nil
}
