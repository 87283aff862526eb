package scaleout_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// startPgBouncer runs Debian's pgbouncer in transaction pooling mode in
// front of the test PostgreSQL and returns its port.
func startPgBouncer(t *testing.T) int {
	t.Helper()
	admin, err := url.Parse(testenv.AdminURI())
	if err != nil {
		t.Fatal(err)
	}
	pgHost, pgPort, err := net.SplitHostPort(admin.Host)
	if err != nil {
		t.Fatal(err)
	}
	// pgbouncer refuses to run as root; as root it is told to switch to
	// nobody, who must be able to read its files.
	dir, err := os.MkdirTemp("", "pgbouncer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Read by the unprivileged pgbouncer.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := e2e.FreePort(t)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
`, pgHost, pgPort, port, filepath.Join(dir, "users.txt"))
	user := admin.User.Username()
	for name, body := range map[string]string{"pgbouncer.ini": ini, "users.txt": fmt.Sprintf("%q \"\"\n", user)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"pgbouncer", filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = []string{"pgbouncer", "-u", "nobody", filepath.Join(dir, "pgbouncer.ini")}
	}
	startServer(t, "pgbouncer", args...)
	testenv.Eventually(t, 10*time.Second, "pgbouncer to listen", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return port
}

// viaPgBouncer is uri with its host replaced by pgbouncer's and pgx's
// default_query_exec_mode set to mode (none when empty).
func viaPgBouncer(t *testing.T, uri string, port int, mode string) string {
	t.Helper()
	return withMode(t, uri, fmt.Sprintf("127.0.0.1:%d", port), mode)
}

func withMode(t *testing.T, uri, host, mode string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		u.Host = host
	}
	q := u.Query()
	if mode != "" {
		q.Set("default_query_exec_mode", mode)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Through PgBouncer in transaction pooling mode: the programs migrate a
// fresh database over POSTGRES_MIGRATE_URI, then drain 2,000 messages over
// POSTGRES_URI; /readyz answers through the pooler.
func TestPgBouncerDrain(t *testing.T) {
	slowTest(t)
	bouncer := startPgBouncer(t)
	uri := testenv.NewDatabase(t)
	pool := testenv.NewPool(t, uri)
	r := newRunOn(t, uri, pool, e2e.Slow(2*time.Millisecond), map[string]string{
		"POSTGRES_URI":         viaPgBouncer(t, uri, bouncer, "cache_describe"),
		"POSTGRES_MIGRATE_URI": uri,
		"MESSAGE_FETCH_LIMIT":  "500", "MAX_CONCURRENT_JOBS": "8",
	})
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{r.start("scheduler"), r.start("worker-1"), r.start("worker-2"), r.start("api", fmt.Sprint("HTTP_PORT=", port))}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range procs[1:3] {
		if err := p.WaitForOutput(ctx, "worker started"); err != nil {
			t.Fatal(err)
		}
	}
	r.ids = testenv.InsertMessages(t, pool, 2000)
	r.waitSent(60 * time.Second)
	testenv.Eventually(t, 10*time.Second, "/readyz 200 through pgbouncer", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	assertAlive(t, procs...)
	e2e.StopAll(t, 30*time.Second, procs...)
	l := r.checkLedger()
	t.Logf("pgbouncer drain: %d messages, %d delivered, %d repeated, %d lost", l.messages, l.delivered, l.repeats, l.lost)
}

// The kill -9 fault scenario through PgBouncer: one of three workers dies
// mid-backlog; its leased rows are sent by the others once the lease ends.
func TestPgBouncerKillWorker(t *testing.T) {
	slowTest(t)
	start := time.Now()
	bouncer := startPgBouncer(t)
	r := newRun(t, 3000, e2e.Slow(20*time.Millisecond), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "8",
	})
	r.env["POSTGRES_URI"] = viaPgBouncer(t, r.uri, bouncer, "cache_describe")
	r.env["POSTGRES_MIGRATE_URI"] = r.uri
	sched := r.start("scheduler")
	w := []*e2e.Proc{r.start("worker-1"), r.start("worker-2"), r.start("worker-3")}
	testenv.Eventually(t, 30*time.Second, "a third of the backlog", func() bool { return r.count("sent") >= 1000 })
	if err := w[1].Kill(); err != nil {
		t.Fatal(err)
	}
	// The lease is 2*WEBHOOK_TIMEOUT+10s = 14s.
	r.waitSent(90 * time.Second)
	assertAlive(t, sched, w[0], w[2])
	e2e.StopAll(t, 30*time.Second, sched, w[0], w[2])
	l := r.checkLedger()
	t.Logf("pgbouncer, kill -9 one of 3 workers: %d messages, %d delivered, %d repeated, %d lost in %s",
		l.messages, l.delivered, l.repeats, l.lost, time.Since(start).Round(100*time.Millisecond))
}

// The drain rate through PgBouncer against a direct connection, and the
// cost of pgx's cache_describe mode on the direct one: 3,000 messages
// through one worker per drain, the three set-ups interleaved over two
// rounds so that a change in the machine's load hits each alike. It runs
// before the parallel tests of this package start (it is not parallel).
func TestPgBouncerDrainRate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures drain rates")
	}
	bouncer := startPgBouncer(t)
	const n, rounds = 3000, 2
	cases := []struct {
		name, mode string
		pooled     bool
	}{
		{"direct, cache_statement (pgx default)", "", false},
		{"direct, cache_describe", "cache_describe", false},
		{"pgbouncer, cache_describe", "cache_describe", true},
	}
	total := make([]float64, len(cases))
	for round := range rounds {
		for i, c := range cases {
			r := newRun(t, n, nil, map[string]string{
				"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "32", "LOG_LEVEL": "WARN",
			})
			r.env["POSTGRES_MIGRATE_URI"] = r.uri
			if c.pooled {
				r.env["POSTGRES_URI"] = viaPgBouncer(t, r.uri, bouncer, c.mode)
			} else {
				r.env["POSTGRES_URI"] = withMode(t, r.uri, "", c.mode)
			}
			procs := []*e2e.Proc{r.start("scheduler"), r.start("worker")}
			r.waitSent(60 * time.Second)
			e2e.StopAll(t, 30*time.Second, procs...)
			var span time.Duration
			if err := r.pool.QueryRow(context.Background(),
				`SELECT max(sent_at) - min(sent_at) FROM messages`).Scan(&span); err != nil {
				t.Fatal(err)
			}
			if l := r.checkLedger(); l.lost != 0 {
				t.Fatalf("%s: lost %d", c.name, l.lost)
			}
			rate := float64(n) / span.Seconds()
			total[i] += rate
			t.Logf("round %d, %s: %d messages in %s = %.0f msg/s", round+1, c.name, n, span.Round(time.Millisecond), rate)
		}
	}
	for i, c := range cases {
		t.Logf("drain rate %s: mean %.0f msg/s over %d rounds (one worker, MAX_CONCURRENT_JOBS 32)", c.name, total[i]/rounds, rounds)
	}
}
