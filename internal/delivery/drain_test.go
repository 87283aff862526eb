package delivery_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

var (
	drainN     = flag.Int("drain", 0, "TestDrainSpeed: messages to drain (0 skips the measurement)")
	drainConc  = flag.Int("drain-concurrency", 32, "TestDrainSpeed: calls in flight")
	drainDelay = flag.Duration("drain-delay", 0, "TestDrainSpeed: how long the receiver holds each answer")
	drainQueue = flag.Int("drain-queue", 0, "TestDrainSpeed: QueueSize (0: the default)")
	drainSQL   = flag.String("drain-sql", "", "TestDrainSpeed: SQL run after migrating, to measure a variant of the schema")
)

// TestDrainSpeed is an ad-hoc measurement, not a check: it drains -drain
// messages through one service to a local sink and logs messages per second
// and PostgreSQL transactions per message. Run it alone, without -race:
//
//	go test -count=1 -run TestDrainSpeed ./internal/delivery/ -args -drain 20000
func TestDrainSpeed(t *testing.T) {
	if *drainN == 0 {
		t.Skip("set -drain N to measure")
	}
	var respond sink.Responder
	if d := *drainDelay; d > 0 {
		respond = func(_ http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
			time.Sleep(d) //nolint:forbidigo // the slow receiver under measurement
			return false
		}
	}
	e := newEnv(t, respond)
	if *drainSQL != "" {
		if _, err := e.pool.Exec(context.Background(), *drainSQL); err != nil {
			t.Fatalf("-drain-sql: %v", err)
		}
	}
	ids := testenv.InsertMessages(t, e.pool, *drainN)
	defer e.rdb.Del(context.Background(), keys(ids)...)
	if _, err := e.pool.Exec(context.Background(), `VACUUM ANALYZE messages`); err != nil {
		t.Fatal(err)
	}
	hook := webhook.New(webhook.Options{URL: e.url, Timeout: 5 * time.Second, MaxConns: *drainConc})
	t.Cleanup(hook.Close)
	quiet := slog.New(slog.DiscardHandler)
	svc := newEngine(t, delivery.Params{
		Config: delivery.Config{Budget: *drainN, Interval: time.Hour, Concurrency: *drainConc, QueueSize: *drainQueue, MaxAttempts: 3, Lease: time.Minute},
		Store:  e.store, Sender: hook, Cache: cache.New(e.rdb, time.Hour), Log: quiet,
	})
	svc.start()
	xacts := func() int64 {
		// Statistics reach pg_stat_database within about a second.
		time.Sleep(1500 * time.Millisecond) //nolint:forbidigo // waiting for the statistics collector
		var n int64
		if err := e.pool.QueryRow(context.Background(),
			`SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	wal := func() int64 {
		var n int64
		if err := e.pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	x0, w0, c0 := xacts(), wal(), postgresCPU(t)
	start := time.Now()
	n := svc.dispatch()
	took := time.Since(start)
	if n != *drainN {
		t.Fatalf("dispatched %d of %d", n, *drainN)
	}
	x1, w1, c1 := xacts(), wal(), postgresCPU(t)
	st := svc.Stats()
	t.Logf("drained %d messages, %d in flight, receiver delay %s: %s, %.0f msg/s; per message: %.3f PostgreSQL transactions, %.0f WAL bytes, %.0f µs of PostgreSQL CPU (%d claims, %d records)",
		n, *drainConc, *drainDelay, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(x1-x0-2)/float64(n),
		float64(w1-w0)/float64(n), float64((c1-c0).Microseconds())/float64(n), st.Claims, st.Records)
}

// postgresCPU is the CPU time (user and system) of every process named
// postgres on this machine, from /proc: the server the drain runs against.
func postgresCPU(t *testing.T) time.Duration {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var ticks int64
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		// pid (comm) state ppid ... utime is field 14, stime 15.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 {
			continue
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		s, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			ticks += u + s
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
