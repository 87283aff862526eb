package store

// Opt-outs: numbers that must get no message. A message to one ends
// 'suppressed' without a call, at its create (createSQL) or at its claim
// (claimSQL) when the opt-out came later.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// Where an opt-out came from.
const (
	OptOutInbound = "inbound" // the recipient answered a STOP keyword
	OptOutAPI     = "api"     // added by hand through the API
)

// optedOutError is the last_error of a suppressed message (SQL text: no
// quote in it).
const optedOutError = "not sent: the recipient opted out"

// OptOut is one row of opt_outs.
type OptOut struct {
	PhoneNumber string
	Source      string
	CreatedAt   time.Time
}

// OptOutCursor is the position after the last row of a page: created_at,
// then phone_number, both descending.
type OptOutCursor struct {
	CreatedAt   time.Time
	PhoneNumber string
}

const optOutColumns = `phone_number, source, created_at`

func scanOptOut(r pgx.Row) (OptOut, error) {
	var o OptOut
	err := r.Scan(&o.PhoneNumber, &o.Source, &o.CreatedAt)
	return o, err
}

// AddOptOut opts phone (E.164) out, from source, as of at (nil: now). It
// is idempotent: a number already opted out keeps its row, which comes
// back with added false.
func (s *Store) AddOptOut(ctx context.Context, phone, source string, at *time.Time) (OptOut, bool, error) {
	q := `
WITH ins AS (
    INSERT INTO opt_outs (phone_number, source, created_at)
    VALUES ($1, $2, COALESCE($3::timestamptz, now()))
    ON CONFLICT (phone_number) DO NOTHING
    RETURNING ` + optOutColumns + `, true AS added
)
SELECT * FROM ins
UNION ALL
SELECT ` + optOutColumns + `, false FROM opt_outs WHERE phone_number = $1 AND NOT EXISTS (SELECT 1 FROM ins)`
	var o OptOut
	var added bool
	err := s.pool.QueryRow(ctx, q, phone, source, at).Scan(&o.PhoneNumber, &o.Source, &o.CreatedAt, &added)
	if errors.Is(err, pgx.ErrNoRows) {
		// Deleted between the insert's conflict and the read: rare
		// enough to ask the caller to try again.
		return OptOut{}, false, fmt.Errorf("add opt-out: removed concurrently")
	}
	if err != nil {
		return OptOut{}, false, fmt.Errorf("add opt-out: %w", err)
	}
	return o, added, nil
}

// RemoveOptOut opts phone back in; messaging.ErrOptOutNotFound when it was not
// opted out.
func (s *Store) RemoveOptOut(ctx context.Context, phone string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM opt_outs WHERE phone_number = $1`, phone)
	if err != nil {
		return fmt.Errorf("remove opt-out: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return messaging.ErrOptOutNotFound
	}
	return nil
}

// GetOptOut reads the opt-out of phone; messaging.ErrOptOutNotFound when none.
func (s *Store) GetOptOut(ctx context.Context, phone string) (OptOut, error) {
	o, err := scanOptOut(s.pool.QueryRow(ctx, `SELECT `+optOutColumns+` FROM opt_outs WHERE phone_number = $1`, phone))
	if errors.Is(err, pgx.ErrNoRows) {
		return OptOut{}, messaging.ErrOptOutNotFound
	}
	if err != nil {
		return OptOut{}, fmt.Errorf("get opt-out: %w", err)
	}
	return o, nil
}

// ListOptOuts returns up to limit opt-outs after the cursor (from the
// newest when after is nil), newest first, and whether more follow. It is
// a keyset scan of opt_outs_created_idx.
func (s *Store) ListOptOuts(ctx context.Context, after *OptOutCursor, limit int) ([]OptOut, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("list opt-outs: limit %d is not positive", limit)
	}
	var (
		rows pgx.Rows
		err  error
	)
	if after == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+optOutColumns+` FROM opt_outs
ORDER BY created_at DESC, phone_number DESC LIMIT $1`, limit+1)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+optOutColumns+` FROM opt_outs
WHERE (created_at, phone_number) < ($2::timestamptz, $3::text)
ORDER BY created_at DESC, phone_number DESC LIMIT $1`, limit+1, after.CreatedAt, after.PhoneNumber)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list opt-outs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OptOut, error) { return scanOptOut(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list opt-outs: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
