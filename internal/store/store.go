// Package store is the only place that speaks SQL. It owns the messages
// table and the dispatch control row, and every state change of a message
// happens in one statement here, so that concurrent workers stay correct
// without holding transactions across network calls. The statuses, attempt
// kinds and errors it speaks in are internal/messaging's.
package store

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store wraps a pgx pool with the queries the system needs.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool; the caller owns and closes the pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func seconds(d time.Duration) float64 { return d.Seconds() }

// IsDataError tells whether err is PostgreSQL refusing the data of a
// statement (SQLSTATE class 22, data exception, or 23, integrity
// constraint), not the statement failing for a reason of its own: a
// smaller batch without the offending value would succeed.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}
