package store

// The message_attempts table: one row per webhook call, written with the
// outcomes (record.go), read here.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// Attempt is one webhook call made for a message.
type Attempt struct {
	Attempt    int
	StartedAt  time.Time
	DurationMS int
	StatusCode *int // nil: no HTTP answer (timeout, connection error)
	Outcome    string
	Error      string
	// Provider is the provider called; empty for calls recorded before
	// providers were named.
	Provider string
}

// Attempts lists the calls made for message id, oldest first;
// ErrNotFound when there is no such message.
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	const q = `
SELECT attempt, started_at, duration_ms, status_code, outcome, COALESCE(error, ''), COALESCE(provider, '')
FROM message_attempts WHERE message_id = $1 ORDER BY attempt`
	rows, err := s.pool.Query(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Attempt, &a.StartedAt, &a.DurationMS, &a.StatusCode, &a.Outcome, &a.Error, &a.Provider)
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
			return nil, messaging.ErrNotFound
		}
	}
	return out, nil
}
