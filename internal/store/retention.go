package store

// The retention purge: messages in a final status are deleted, with their
// attempts and events, once they have been final for longer than the retention
// period. Pending, sending and scheduled rows are never candidates: every
// statement here names only rows whose status is neither pending nor
// sending, and it re-checks that on the row it locks.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// retentionLockKey is the transaction-scoped advisory lock one purge batch
// holds, so that only one process deletes at a time. A transaction lock
// (pg_try_advisory_xact_lock) ends with the transaction that took it, so
// it works through PgBouncer in transaction pooling mode, where a session
// lock could stay on a server connection another client gets next.
const retentionLockKey int64 = 0x6d73675f72657465 // "msg_rete"

// purgeSQL deletes up to $2 messages that became final more than $1
// seconds ago, oldest first, and their attempts and status callback events
// (whose snapshots hold the number and text), in one statement. When a
// row became final is finished_at (stamped by a trigger on every change to
// a final status); rows finalised before that column existed fall back to
// sent_at, else created_at. The candidates come from messages_finished_idx,
// whose predicate is the status test written here. FOR UPDATE re-checks
// the status on the locked row, so a failed message retried to pending in
// the meantime is left alone; SKIP LOCKED leaves rows another statement
// holds for the next batch.
const purgeSQL = `
WITH victims AS (
    SELECT id FROM messages
    WHERE status NOT IN ('pending', 'sending')
      AND COALESCE(finished_at, sent_at, created_at) < now() - $1::float8 * interval '1 second'
    ORDER BY COALESCE(finished_at, sent_at, created_at)
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM messages m
    WHERE m.id = ANY (ARRAY(SELECT id FROM victims)) AND m.status NOT IN ('pending', 'sending')
    RETURNING m.id
), attempts AS (
    DELETE FROM message_attempts a WHERE a.message_id = ANY (ARRAY(SELECT id FROM gone))
), events AS (
    DELETE FROM message_events e WHERE e.message_id = ANY (ARRAY(SELECT id FROM gone))
)
SELECT id FROM gone`

// ErrPurgeBusy means another process holds the purge lock.
var ErrPurgeBusy = errors.New("another process is purging")

// PurgeBatch deletes one batch of at most limit messages that have been
// final for longer than olderThan, with their attempts, under the purge
// lock, and returns their ids. beforeCommit runs inside the transaction
// with those ids (the caller deletes their cached records there); when it
// fails nothing is deleted. ErrPurgeBusy when another process is purging.
func (s *Store) PurgeBatch(ctx context.Context, olderThan time.Duration, limit int,
	beforeCommit func(context.Context, []string) error,
) ([]string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("purge: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, retentionLockKey).Scan(&got); err != nil {
		return nil, fmt.Errorf("purge: lock: %w", err)
	}
	if !got {
		return nil, ErrPurgeBusy
	}
	rows, err := tx.Query(ctx, purgeSQL, seconds(olderThan), limit)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	if len(ids) > 0 && beforeCommit != nil {
		if err := beforeCommit(ctx, ids); err != nil {
			return nil, fmt.Errorf("purge: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("purge: commit: %w", err)
	}
	return ids, nil
}

// RetentionState is the last purge run, whichever process made it.
type RetentionState struct {
	// LastRunAt is when the last purge run ended; nil before the first.
	LastRunAt *time.Time
	// LastPurged is how many messages that run deleted.
	LastPurged int64
	// PurgedTotal is how many messages every run ever deleted.
	PurgedTotal int64
}

// RecordPurge stores the end of a purge run that deleted n messages.
func (s *Store) RecordPurge(ctx context.Context, n int64) error {
	const q = `UPDATE retention_state SET last_run_at = now(), last_purged = $1, purged_total = purged_total + $1 WHERE id = 1`
	if _, err := s.pool.Exec(ctx, q, n); err != nil {
		return fmt.Errorf("record purge: %w", err)
	}
	return nil
}

// Retention reads the last purge run.
func (s *Store) Retention(ctx context.Context) (RetentionState, error) {
	var r RetentionState
	err := s.pool.QueryRow(ctx, `SELECT last_run_at, last_purged, purged_total FROM retention_state WHERE id = 1`).
		Scan(&r.LastRunAt, &r.LastPurged, &r.PurgedTotal)
	if err != nil {
		return RetentionState{}, fmt.Errorf("read retention state: %w", err)
	}
	return r, nil
}
