// Package testenv gives each test its own PostgreSQL database and asynq
// queue on the real servers, so tests run in parallel, twice in a row and
// with -race without seeing each other. Only tests import it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/store"
)

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedis    = "127.0.0.1:6379"
	howToStart      = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start " +
		"(or set TEST_POSTGRES_URI); Redis: redis-server --daemonize yes --port 6379 --save '' (or set TEST_REDIS_ADDR)"
)

// AdminURI is the database tests connect to in order to create their own.
func AdminURI() string {
	if v := os.Getenv("TEST_POSTGRES_URI"); v != "" {
		return v
	}
	return defaultPostgres
}

// RedisAddr is the Redis server tests use.
func RedisAddr() string {
	if v := os.Getenv("TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return defaultRedis
}

// RedisDB is the Redis database number tests use: TEST_REDIS_DB, or 0. A
// value that is not a number from 0 to 15 panics, since every test would
// fail the same way.
func RedisDB() int {
	v := os.Getenv("TEST_REDIS_DB")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 15 {
		panic(fmt.Sprintf("TEST_REDIS_DB=%q: want a number from 0 to 15", v))
	}
	return n
}

// Name returns a short random name with prefix, safe as an identifier.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// NewDatabase creates an empty database for t and drops it when t ends. It
// returns the database's URI.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURI())
	if err != nil {
		t.Fatalf("PostgreSQL at %s is unreachable: %v\n%s", redact(AdminURI()), err, howToStart)
	}
	defer func() { _ = admin.Close(ctx) }()
	name := Name("mstest")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURI())
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURI())
	if err != nil {
		t.Fatalf("TEST_POSTGRES_URI: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}

// NewPool opens a pool on uri, closed when t ends.
func NewPool(t testing.TB, uri string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), uri)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewRedis returns a client on the test Redis, closed when t ends; it fails
// the test with a hint when Redis does not answer.
func NewRedis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: RedisDB()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("Redis at %s is unreachable: %v\n%s", RedisAddr(), err, howToStart)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MigratedStore creates a database, migrates it and returns its URI, pool
// and store.
func MigratedStore(t testing.TB) (string, *pgxpool.Pool, *store.Store) {
	t.Helper()
	uri := NewDatabase(t)
	pool := NewPool(t, uri)
	if err := store.Migrate(context.Background(), pool, Logger(t)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return uri, pool, store.New(pool)
}

// Queue returns a queue name of t's own and deletes the queue's keys when t
// ends.
func Queue(t testing.TB) string {
	t.Helper()
	q := Name("q")
	t.Cleanup(func() { DeleteQueueKeys(t, q) })
	return q
}

// DeleteQueueKeys removes every key asynq keeps for queue q, including the
// processed and failed counters that asynq's DeleteQueue leaves behind
// with no expiry.
func DeleteQueueKeys(t testing.TB, q string) {
	t.Helper()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: RedisAddr(), DB: RedisDB()})
	defer func() { _ = insp.Close() }()
	if err := insp.DeleteQueue(q, true); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Logf("delete queue %s: %v", q, err)
	}
	c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: RedisDB()})
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, "asynq:{"+q+"}*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("list the keys of queue %s: %v", q, err)
		return
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Logf("delete the keys of queue %s: %v", q, err)
		}
	}
}

// Config returns a valid configuration for t's database and queue, with
// vars (KEY=VALUE) applied over it.
func Config(t testing.TB, postgresURI, queue string, vars ...string) config.Config {
	t.Helper()
	host, port, _ := strings.Cut(RedisAddr(), ":")
	env := []string{
		"POSTGRES_URI=" + postgresURI,
		"REDIS_HOST=" + host,
		"REDIS_PORT=" + port,
		"REDIS_DB=" + strconv.Itoa(RedisDB()),
		"QUEUE_NAME=" + queue,
		"WEBHOOK_URL=http://127.0.0.1:1/unused",
		"LOG_LEVEL=DEBUG",
	}
	cfg, err := config.Load(append(env, vars...))
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// Logger writes to t's log when -v asks for it, and nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return logging.New(io.Discard, "ERROR", "text")
	}
	return logging.New(tWriter{t}, "DEBUG", "text")
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Eventually polls cond every 20 ms until it is true or timeout passes.
// Tests use it to wait for an outcome in the database or at a webhook,
// where no event is delivered to the test.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) //nolint:forbidigo // polling state that sends no event (rows, counters)
	}
}

// RunInitScripts runs init/*.sql on pool's database in name order, as the
// PostgreSQL container does on its first start.
func RunInitScripts(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	dir, err := initDir()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no init scripts in %s: %v", dir, err)
	}
	sort.Strings(files)
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The simple protocol runs a file of several statements.
		if _, err := conn.Conn().PgConn().Exec(context.Background(), string(b)).ReadAll(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// initDir is the repository's init/ folder.
func initDir() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "init"), nil
}

// ModuleRoot is the repository's root: the nearest folder above the working
// directory (a package's, under go test) that holds go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s: run from the repository", dir)
		}
		dir = parent
	}
}

// InsertMessages inserts n rows the way another system would: only id,
// content and phone number. created_at is spread a millisecond apart so
// that age order is well defined.
func InsertMessages(t testing.TB, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%06d", Name("m"), i)
	}
	_, err := pool.Exec(context.Background(), `
INSERT INTO messages (id, content, phone_number, created_at)
SELECT id, 'message ' || ord, '+9055511' || lpad((ord % 100000)::text, 5, '0'),
       now() - interval '1 hour' + ord * interval '1 millisecond'
FROM unnest($1::text[]) WITH ORDINALITY AS t(id, ord)`, ids)
	if err != nil {
		t.Fatalf("insert messages: %v", err)
	}
	return ids
}
