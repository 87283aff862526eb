package store

// Console sessions: one row per sign-in, checked on every request that
// carries the session cookie (a primary-key read), deleted at sign-out or
// by revoke-all, and refused once expired or made under another API key.

import (
	"context"
	"fmt"
	"time"
)

// CreateSession stores a session: the SHA-256 of its id, the fingerprint
// of the API key that created it and when it ends.
func (s *Store) CreateSession(ctx context.Context, idHash, keyFingerprint []byte, expires time.Time) error {
	const q = `INSERT INTO console_sessions (id_hash, key_fingerprint, expires_at) VALUES ($1, $2, $3)`
	if _, err := s.pool.Exec(ctx, q, idHash, keyFingerprint, expires); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionValid tells whether the session exists, was made under the key
// with this fingerprint and has not expired by the database's clock (the
// one clock every api replica shares).
func (s *Store) SessionValid(ctx context.Context, idHash, keyFingerprint []byte) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM console_sessions
WHERE id_hash = $1 AND key_fingerprint = $2 AND expires_at > now())`
	var ok bool
	if err := s.pool.QueryRow(ctx, q, idHash, keyFingerprint).Scan(&ok); err != nil {
		return false, fmt.Errorf("check session: %w", err)
	}
	return ok, nil
}

// DeleteSession ends one session; ending one that does not exist is no
// error.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteAllSessions ends every session and returns how many were live
// (not yet expired).
func (s *Store) DeleteAllSessions(ctx context.Context) (int64, error) {
	var n int64
	const q = `WITH d AS (DELETE FROM console_sessions RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at > now()) FROM d`
	if err := s.pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("delete all sessions: %w", err)
	}
	return n, nil
}

// PurgeExpiredSessions deletes up to limit expired sessions, oldest first,
// and returns how many it deleted. Sign-in calls it, so the table stays
// small without a job of its own, and no call deletes an unbounded number
// of rows.
func (s *Store) PurgeExpiredSessions(ctx context.Context, limit int) (int64, error) {
	const q = `DELETE FROM console_sessions WHERE id_hash IN (
    SELECT id_hash FROM console_sessions WHERE expires_at <= now()
    ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`
	tag, err := s.pool.Exec(ctx, q, limit)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
