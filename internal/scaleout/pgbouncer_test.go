package scaleout_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// startPgBouncer runs Debian's pgbouncer in transaction pooling mode in
// front of the test PostgreSQL and returns its port. The test's PostgreSQL
// user is its admin, for PAUSE and RESUME.
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
admin_users = %s
`, pgHost, pgPort, port, filepath.Join(dir, "users.txt"), admin.User.Username())
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
	e2e.StartServer(t, "pgbouncer", args...)
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

// viaPgBouncer is uri with its host replaced by pgbouncer's and nothing
// else: no default_query_exec_mode, as an operator would write it.
func viaPgBouncer(t *testing.T, uri string, port int) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", port)
	if u.Query().Has("default_query_exec_mode") {
		t.Fatalf("the test URI sets a query mode: %s", u.RawQuery)
	}
	return u.String()
}

// bouncerAdmin runs one command on pgbouncer's admin console (it speaks
// only the simple protocol, so psql it is).
func bouncerAdmin(t *testing.T, port int, command string) {
	t.Helper()
	admin, err := url.Parse(testenv.AdminURI())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "psql", "-X", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-U", admin.User.Username(), "-d", "pgbouncer", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbouncer %s: %v: %s", command, err, out)
	}
}

// poolerErrors fails t for every program whose log shows that a statement
// met the pooler's limits (a prepared statement on the wrong server
// connection) or that outcomes could not be recorded: either means calls
// whose outcome was lost.
func poolerErrors(t *testing.T, procs ...*e2e.Proc) {
	t.Helper()
	for _, p := range procs {
		out := p.Output()
		for _, bad := range []string{"SQLSTATE 42P05", "SQLSTATE 26000", "prepared statement", "record outcomes failed"} {
			if n := strings.Count(out, bad); n > 0 {
				i := strings.Index(out, bad)
				line := out[strings.LastIndexByte(out[:i], '\n')+1:]
				line, _, _ = strings.Cut(line, "\n")
				t.Errorf("%s logged %q %d times, first: %.400s", p.Name, bad, n, line)
			}
		}
	}
}

// Through PgBouncer in transaction pooling mode, with a POSTGRES_URI that
// names no query mode: the programs migrate a fresh database over
// POSTGRES_MIGRATE_URI, then drain 2,000 messages over POSTGRES_URI; /readyz
// answers through the pooler. Nothing is lost and nothing is accepted twice.
func TestPgBouncerDrain(t *testing.T) {
	e2e.SlowTest(t)
	bouncer := startPgBouncer(t)
	o := runOptions(0, e2e.Slow(2*time.Millisecond), map[string]string{"MESSAGE_FETCH_LIMIT": "500", "MAX_CONCURRENT_JOBS": "8"})
	o.Unmigrated = true
	r := e2e.NewSystem(t, o)
	r.Setenv("POSTGRES_URI", viaPgBouncer(t, r.URI, bouncer))
	r.Setenv("POSTGRES_MIGRATE_URI", r.URI)
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{r.Start("scheduler"), r.Start("worker-1"), r.Start("worker-2"), r.Start("api", fmt.Sprint("HTTP_PORT=", port))}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range procs[1:3] {
		if err := p.WaitForOutput(ctx, "worker started"); err != nil {
			t.Fatal(err)
		}
		// The programs see the pooler and keep named statements off.
		if !strings.Contains(p.Output(), "reached through a pooler") {
			t.Fatalf("the worker did not detect PgBouncer:\n%s", e2e.Tail(p.Output(), 20))
		}
	}
	r.Insert(2000)
	r.WaitSent(60 * time.Second)
	testenv.Eventually(t, 10*time.Second, "/readyz 200 through pgbouncer", func() bool {
		return e2e.GetStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) == http.StatusOK
	})
	r.AssertAlive(procs...)
	e2e.StopAll(t, 30*time.Second, procs...)
	poolerErrors(t, procs...)
	l := r.Ledger(nil)
	if l.Repeats != 0 {
		t.Errorf("%d messages accepted more than once", l.Repeats)
	}
	t.Logf("pgbouncer drain, plain URI: %d messages, %d delivered, %d repeated, %d lost", l.Messages, l.Delivered, l.Repeats, l.Lost)
}

// The kill -9 fault scenario through PgBouncer with a plain POSTGRES_URI:
// one of three workers dies mid-backlog; its leased rows are sent by the
// others once the lease ends. The only repeats allowed are of messages the
// receiver had already seen at the kill and that were still leased then:
// the dead worker's calls whose outcome it never recorded. Each of those
// is accepted at most twice.
func TestPgBouncerKillWorker(t *testing.T) {
	e2e.SlowTest(t)
	start := time.Now()
	bouncer := startPgBouncer(t)
	// WEBHOOK_TIMEOUT is the default, so the lease is the default 30 s and
	// outlasts the pause: a worker that cannot reach its database for
	// longer than its lease is, to the others, a dead worker, and its rows
	// are theirs to send again.
	r := newRun(t, 3000, e2e.Slow(20*time.Millisecond), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "8", "WEBHOOK_TIMEOUT": "10",
	})
	r.Setenv("POSTGRES_URI", viaPgBouncer(t, r.URI, bouncer))
	r.Setenv("POSTGRES_MIGRATE_URI", r.URI)
	sched := r.Start("scheduler")
	w := []*e2e.Proc{r.Start("worker-1"), r.Start("worker-2"), r.Start("worker-3")}
	testenv.Eventually(t, 30*time.Second, "a third of the backlog", func() bool { return r.Count("sent") >= 1000 })
	if err := w[1].Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := w[1].Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	leased := map[string]bool{}
	rows, err := r.Pool.Query(context.Background(), `SELECT id FROM messages WHERE status = 'sending'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		leased[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	seenAtKill := r.Sink.Calls()
	// The lease is 2*WEBHOOK_TIMEOUT+10s = 14s.
	r.WaitSent(90 * time.Second)
	r.AssertAlive(sched, w[0], w[2])
	e2e.StopAll(t, 30*time.Second, sched, w[0], w[2])
	poolerErrors(t, sched, w[0], w[2])
	l := r.Ledger(nil)
	accepted := map[string]int{}
	for _, d := range r.Sink.Accepted() {
		accepted[d.IdempotencyKey]++
	}
	inFlight := 0
	for id, n := range accepted {
		if n < 2 {
			continue
		}
		if n > 2 || !leased[id] || seenAtKill[id] == 0 {
			t.Errorf("%s accepted %d times (leased at the kill %v, seen before it %d): not a repeat of a call in flight at the kill",
				id, n, leased[id], seenAtKill[id])
			continue
		}
		inFlight++
	}
	t.Logf("pgbouncer, plain URI, kill -9 one of 3 workers: %d messages, %d delivered, %d repeated (all calls in flight at the kill: %d), %d lost in %s",
		l.Messages, l.Delivered, l.Repeats, inFlight, l.Lost, time.Since(start).Round(100*time.Millisecond))
}

// A 15 s PAUSE of the pooled database in the middle of a drain, then
// RESUME: every statement waits in the pooler meanwhile (claims, records,
// ticks), and afterwards the drain finishes with nothing lost and nothing
// accepted twice.
func TestPgBouncerPause(t *testing.T) {
	e2e.SlowTest(t)
	bouncer := startPgBouncer(t)
	// WEBHOOK_TIMEOUT is the default, so the lease is the default 30 s and
	// outlasts the pause: a worker that cannot reach its database for
	// longer than its lease is, to the others, a dead worker, and its rows
	// are theirs to send again.
	r := newRun(t, 3000, e2e.Slow(20*time.Millisecond), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "8", "WEBHOOK_TIMEOUT": "10",
	})
	r.Setenv("POSTGRES_URI", viaPgBouncer(t, r.URI, bouncer))
	r.Setenv("POSTGRES_MIGRATE_URI", r.URI)
	u, err := url.Parse(r.URI)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	procs := []*e2e.Proc{r.Start("scheduler"), r.Start("worker-1"), r.Start("worker-2")}
	testenv.Eventually(t, 30*time.Second, "the drain under way", func() bool { return r.Count("sent") >= 300 })
	bouncerAdmin(t, bouncer, "PAUSE "+db)
	paused := r.Sink.Calls()
	time.Sleep(15 * time.Second) //nolint:forbidigo // the length of the pause
	during := r.Sink.Calls()
	bouncerAdmin(t, bouncer, "RESUME "+db)
	r.WaitSent(120 * time.Second)
	r.AssertAlive(procs...)
	e2e.StopAll(t, 30*time.Second, procs...)
	poolerErrors(t, procs...)
	l := r.Ledger(nil)
	if l.Repeats != 0 {
		t.Errorf("%d messages accepted more than once", l.Repeats)
	}
	calls := 0
	for k, n := range during {
		calls += n - paused[k]
	}
	t.Logf("pgbouncer, plain URI, 15 s PAUSE mid-drain: %d messages, %d delivered, %d repeated, %d lost; %d calls made during the pause",
		l.Messages, l.Delivered, l.Repeats, l.Lost, calls)
}
