// Package app wires the programs together: it opens PostgreSQL and Redis,
// applies migrations and builds the worker and the scheduler from a Config.
// The cmd/ mains and the end-to-end tests use the same wiring, so what the
// tests prove is what ships. It must not import fiber, swag or asynqmon:
// cmd/worker and cmd/scheduler link it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-retry"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/redisconn"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// Deps are the connections every program shares.
type Deps struct {
	Pool *pgxpool.Pool
	// Redis is a single-server, failover (Sentinel) or cluster client,
	// as the configuration chooses (internal/redisconn).
	Redis redis.UniversalClient
	Store *store.Store
	Log   *slog.Logger
	// Tracing makes the spans of the program; nil is tracing.Off (spans
	// carry trace ids and go nowhere).
	Tracing *tracing.Tracing
}

// Traces is d's Tracing, or tracing.Off when it has none.
func (d *Deps) Traces() *tracing.Tracing {
	if d.Tracing == nil {
		d.Tracing = tracing.Off()
	}
	return d.Tracing
}

// Open connects to PostgreSQL and Redis, waiting for them with a bounded
// exponential backoff (containers start in any order), and migrates the
// schema. poolSize is the most PostgreSQL connections this process uses.
// When tr sends spans somewhere (tr.Instrument), every PostgreSQL statement
// (otelpgx) and every cache command on Redis (redisotel) is a span too; nil
// tr is tracing.Off.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, poolSize int, tr *tracing.Tracing) (*Deps, error) {
	if tr == nil {
		tr = tracing.Off()
	}
	pcfg, err := pgxpool.ParseConfig(cfg.PostgresURI)
	if err != nil {
		// pgx's message may quote the URI, password and all.
		return nil, &config.Error{Var: "POSTGRES_URI", Value: "(hidden)", Accepts: "a valid PostgreSQL connection URI"}
	}
	pcfg.MaxConns = int32(max(poolSize, 2))
	pcfg.ConnConfig.RuntimeParams["application_name"] = cfg.AppName
	if !setsQueryExecMode(cfg.PostgresURI) {
		pcfg.ConnConfig.DefaultQueryExecMode = poolerSafeMode
	}
	if tr.Instrument {
		pcfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tr.Provider),
			otelpgx.WithMeterProvider(noop.NewMeterProvider()))
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	rdb := redisconn.NewClient(cfg, max(poolSize, 10))
	d := &Deps{Pool: pool, Redis: rdb, Store: store.New(pool), Log: log, Tracing: tr}
	if tr.Instrument {
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tr.Provider),
			// Command arguments hold message records: never in a span.
			redisotel.WithDBStatement(false),
			redisotel.WithCommandFilter(func(c redis.Cmder) bool { return !CacheCommand(c.Name()) }),
			redisotel.WithCommandsFilter(func(cs []redis.Cmder) bool {
				return !slices.ContainsFunc(cs, func(c redis.Cmder) bool { return CacheCommand(c.Name()) })
			}),
		); err != nil {
			d.Close()
			return nil, fmt.Errorf("trace redis: %w", err)
		}
	}

	if err := waitFor(ctx, log, "postgres", pool.Ping); err != nil {
		d.Close()
		return nil, err
	}
	if err := waitFor(ctx, log, "redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() }); err != nil {
		d.Close()
		return nil, err
	}
	if !setsQueryExecMode(cfg.PostgresURI) {
		if err := d.preferPreparedWhenDirect(ctx, pcfg); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := migrate(ctx, cfg, d.Pool, log); err != nil {
		d.Close()
		return nil, err
	}
	// Every provider has its breaker row before any program reads it.
	if err := d.Store.EnsureBreakers(ctx, cfg.ProviderNames()); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// CacheCommand tells the Redis commands that get a span: the cache's
// reads, writes and deletes of message records. The rest on the shared
// client is asynq's polling and the wake channel, several commands a
// second per process that belong to no message's trace.
func CacheCommand(name string) bool {
	switch strings.ToLower(name) {
	case "get", "set", "del":
		return true
	}
	return false
}

// preferPreparedWhenDirect swaps the pool for one that prepares named
// statements (pgx's cache_statement) when nothing sits between this process
// and PostgreSQL. Named statements save the server a parse and plan per
// statement, which the claim and record statements pay on every call in
// the pooler-safe mode; but behind a transaction pooler they break. The
// check asks the server which address its own session sees as the client
// and compares it with this end of the socket, on two connections at once:
// through PgBouncer (or any proxy) the server sees the pooler's socket, and
// two such coincidences are as good as impossible. When in doubt (a unix
// socket, an answer it cannot read) it keeps the pooler-safe mode.
func (d *Deps) preferPreparedWhenDirect(ctx context.Context, pcfg *pgxpool.Config) error {
	direct, err := isDirect(ctx, d.Pool)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	if !direct {
		d.Log.Info("postgres: reached through a pooler or proxy; statements run unnamed (cache_describe)")
		return nil
	}
	dcfg := pcfg.Copy()
	dcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	pool, err := pgxpool.NewWithConfig(ctx, dcfg)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	d.Pool.Close()
	d.Pool, d.Store = pool, store.New(pool)
	d.Log.Info("postgres: direct connection; statements are prepared (cache_statement)")
	return nil
}

// isDirect tells whether two connections of pool, held at once, each reach
// PostgreSQL directly (see preferPreparedWhenDirect).
func isDirect(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	const whoAmI = `SELECT host(client_addr), client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()`
	for range 2 {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return false, fmt.Errorf("probe for a pooler: %w", err)
		}
		defer conn.Release() // held until both are checked, so the two are distinct sessions
		var (
			host *string
			port *int32
		)
		if err := conn.QueryRow(ctx, whoAmI).Scan(&host, &port); err != nil {
			return false, fmt.Errorf("probe for a pooler: %w", err)
		}
		if !sameEndpoint(conn.Conn().PgConn().Conn().LocalAddr(), host, port) {
			return false, nil
		}
	}
	return true, nil
}

// sameEndpoint reports whether the server's view of its client (the host
// and port pg_stat_activity shows, NULL for a unix socket) is local, this
// end of a TCP connection.
func sameEndpoint(local net.Addr, host *string, port *int32) bool {
	tcp, ok := local.(*net.TCPAddr)
	if !ok || host == nil || port == nil {
		return false
	}
	seen, err := netip.ParseAddr(*host)
	if err != nil {
		return false
	}
	mine, ok := netip.AddrFromSlice(tcp.IP)
	return ok && mine.Unmap() == seen.Unmap() && int32(tcp.Port) == *port
}

// poolerSafeMode is how statements run unless the URI says otherwise. pgx's
// own default (cache_statement) prepares named statements on the server
// connection; behind PgBouncer in transaction pooling mode the next
// transaction may land on another server connection, where the name is
// unknown or already taken (SQLSTATE 26000, 42P05), and every failed
// record is a message sent again. cache_describe keeps only the statements'
// parameter and result types on the client and runs each statement
// unnamed in one round trip, so it works through a transaction pooler and
// still sends arrays and timestamps in binary, as the record statement
// needs.
const poolerSafeMode = pgx.QueryExecModeCacheDescribe

// setsQueryExecMode reports whether the URI chooses pgx's
// default_query_exec_mode itself: an operator's explicit choice wins.
func setsQueryExecMode(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	return u.Query().Has("default_query_exec_mode")
}

// migrate applies the migrations on pool, or on a direct connection of its
// own when POSTGRES_MIGRATE_URI is set: goose's session advisory lock needs
// one server session from lock to unlock, which PgBouncer in transaction
// pooling mode does not give.
func migrate(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) error {
	if cfg.PostgresMigrateURI == "" {
		return store.Migrate(ctx, pool, log)
	}
	mcfg, err := pgxpool.ParseConfig(cfg.PostgresMigrateURI)
	if err != nil {
		return &config.Error{Var: "POSTGRES_MIGRATE_URI", Value: "(hidden)", Accepts: "a valid PostgreSQL connection URI"}
	}
	mcfg.MaxConns = 2
	mcfg.ConnConfig.RuntimeParams["application_name"] = cfg.AppName + " (migrate)"
	if !setsQueryExecMode(cfg.PostgresMigrateURI) {
		mcfg.ConnConfig.DefaultQueryExecMode = poolerSafeMode
	}
	mpool, err := pgxpool.NewWithConfig(ctx, mcfg)
	if err != nil {
		return fmt.Errorf("open postgres for migrations: %w", err)
	}
	defer mpool.Close()
	if err := waitFor(ctx, log, "postgres (migrations)", mpool.Ping); err != nil {
		return err
	}
	return store.Migrate(ctx, mpool, log)
}

// waitFor retries ping for about a minute: 0.25 s doubling to 5 s between
// tries.
func waitFor(ctx context.Context, log *slog.Logger, name string, ping func(context.Context) error) error {
	b := retry.WithCappedDuration(5*time.Second, retry.NewExponential(250*time.Millisecond))
	b = retry.WithMaxDuration(time.Minute, b)
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := ping(pctx); err != nil {
			if permanent(err) {
				return err // waiting cannot fix it
			}
			log.Warn("waiting for "+name, "err", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("connect %s: %w", name, err)
	}
	return nil
}

// permanent tells a server that answers "no" from one that is not up yet:
// a database that does not exist or credentials it refuses will not change
// by waiting, so the program says so and exits instead of waiting a minute.
func permanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "3D000", // invalid_catalog_name: the database does not exist
		"28P01", // invalid_password
		"28000": // invalid_authorization_specification: no such role, or pg_hba.conf says no
		return true
	}
	return false
}

// Close releases the connections.
func (d *Deps) Close() {
	d.Pool.Close()
	if err := d.Redis.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		d.Log.Warn("close redis", "err", err)
	}
}
