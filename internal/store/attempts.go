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

// ProviderCalls is how many calls each provider got in the last minute,
// and how many of them did not end sent.
type ProviderCalls struct {
	Calls, Failures int
}

// ProviderCallsLastMinute counts the calls of the last minute by
// provider, read through message_attempts_started_idx; calls recorded
// before providers were named count for the provider default.
func (s *Store) ProviderCallsLastMinute(ctx context.Context) (map[string]ProviderCalls, error) {
	const q = `
SELECT COALESCE(provider, 'default'), count(*), count(*) FILTER (WHERE outcome <> 'sent')
FROM message_attempts WHERE started_at > now() - interval '1 minute'
GROUP BY 1`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("count provider calls: %w", err)
	}
	out := map[string]ProviderCalls{}
	var (
		name     string
		calls, f int
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &calls, &f}, func() error {
		out[name] = ProviderCalls{Calls: calls, Failures: f}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count provider calls: %w", err)
	}
	return out, nil
}
