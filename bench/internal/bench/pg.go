package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// database is one throwaway database on the server under test. Every run
// gets its own, so runs cannot see each other's rows or statistics, and the
// bench drops it when the run ends.
type database struct {
	name  string
	uri   string
	admin string
}

// randomHex returns n random bytes as hex, for names that must not collide
// with a concurrent run (or a concurrent test suite on the same servers).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createDatabase makes an empty database named prefix_<random> through the
// admin URI's database.
func createDatabase(ctx context.Context, adminURI, prefix string) (*database, error) {
	u, err := url.Parse(adminURI)
	if err != nil {
		return nil, fmt.Errorf("admin URI: %w", err)
	}
	d := &database{name: prefix + "_" + randomHex(5), admin: adminURI}
	c, err := pgx.Connect(ctx, adminURI)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = c.Close(ctx) }()
	if _, err := c.Exec(ctx, "CREATE DATABASE "+d.name); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	u.Path = "/" + d.name
	d.uri = u.String()
	return d, nil
}

// drop removes the database, disconnecting whoever is still on it.
func (d *database) drop(ctx context.Context) error {
	c, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("drop %s: %w", d.name, err)
	}
	defer func() { _ = c.Close(ctx) }()
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", d.name, err)
	}
	return nil
}

// open connects a pool to the database; tracer may be nil.
func (d *database) open(ctx context.Context, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(d.uri)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.Tracer = tracer
	cfg.ConnConfig.RuntimeParams["application_name"] = "bench"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d.name, err)
	}
	return pool, nil
}

// transactions is how many transactions the database has committed or
// rolled back, from pg_stat_database. Every autocommit statement the
// programs send is one transaction, so the difference over a drain counts
// their statements without pg_stat_statements (which needs a server
// restart to load). It only counts backends that have flushed their
// statistics; waitIdle first.
func (d *database) transactions(ctx context.Context) (int64, error) {
	c, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close(ctx) }()
	var n int64
	err = c.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, d.name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read pg_stat_database: %w", err)
	}
	return n, nil
}

// waitIdle waits until no backend is connected to the database. A backend
// flushes its statistics when it exits, so after this the counters are
// complete.
func (d *database) waitIdle(ctx context.Context, timeout time.Duration) error {
	c, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(ctx) }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, d.name).Scan(&n); err != nil {
			return fmt.Errorf("wait for %s to be idle: %w", d.name, err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d backends still connected to %s after %s", n, d.name, timeout)
		case <-tick.C:
		}
	}
}

// maxConnections reads the server's connection limit and how many
// connections are in use, so the bench can warn before the workers' pools
// outgrow it.
func maxConnections(ctx context.Context, adminURI string) (limit, used int, err error) {
	c, err := pgx.Connect(ctx, adminURI)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = c.Close(ctx) }()
	err = c.QueryRow(ctx, `SELECT current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')`).Scan(&limit, &used)
	return limit, used, err
}

// claimClockSQL installs the bench's only instrument inside PostgreSQL: a
// row trigger that writes, into last_error (which the worker clears on
// success and nobody reads during a drain), the claim statement's start
// time when a row becomes 'sending', and appends the moment the outcome was
// written when it becomes 'sent'. The claim time is stored nowhere else (the
// lease is cleared on success), and this needs no change to the schema or
// the delivery code. It costs a PL/pgSQL call per claimed and per recorded
// row; run with -claim-clock=false to see what it costs.
const claimClockSQL = `
CREATE FUNCTION bench_claim_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'sending' THEN
        NEW.last_error := extract(epoch FROM statement_timestamp())::text;
    ELSIF OLD.status = 'sending' THEN
        NEW.last_error := OLD.last_error || ' ' || extract(epoch FROM clock_timestamp())::text;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bench_claim_clock BEFORE UPDATE OF status ON messages
    FOR EACH ROW WHEN (NEW.status IN ('sending', 'sent')) EXECUTE FUNCTION bench_claim_clock();`

// clockRow is what the claim clock recorded for one sent message, in Unix
// seconds: claimed (the claim statement started), ack (sent_at: the worker
// read the webhook's 2xx) and recorded (the outcome's UPDATE wrote the row).
type clockRow struct {
	id                     string
	claimed, ack, recorded float64
}

// readClockSQL reads what the claim clock recorded: id, claimed, ack,
// recorded, for every sent message.
const readClockSQL = `
SELECT id, split_part(last_error, ' ', 1)::float8, extract(epoch FROM sent_at)::float8,
       split_part(last_error, ' ', 2)::float8
FROM messages WHERE status = 'sent' AND last_error LIKE '% %'`

// readClock returns the clock rows of every sent message, read by query
// (readClockSQL, or riverReadClockSQL for the River peer).
func readClock(ctx context.Context, pool *pgxpool.Pool, query string) ([]clockRow, error) {
	rows, err := pool.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read claim clock: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (clockRow, error) {
		var c clockRow
		err := r.Scan(&c.id, &c.claimed, &c.ack, &c.recorded)
		return c, err
	})
}
