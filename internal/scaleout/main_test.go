package scaleout_test

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

var binDir string

// TestMain builds the programs once. Every test here starts servers and
// processes and takes seconds to a minute, so -short (make test-short)
// skips them all without building.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(e2e.RunWithBinaries(m, func(dir string) { binDir = dir }, nil))
}

// slowTest marks t parallel and skips it under -short.
func slowTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real servers and the built programs")
	}
	t.Parallel()
}

// run is one scenario's database, webhook and programs.
type run struct {
	t    *testing.T
	uri  string // direct PostgreSQL
	pool *pgxpool.Pool
	sink *sink.Sink
	env  map[string]string
	ids  []string
}

// newRun makes a migrated database with n messages, a webhook sink and the
// programs' environment; vars override e2e.BaseEnv (an empty value removes
// the variable).
func newRun(t *testing.T, n int, respond sink.Responder, vars map[string]string) *run {
	t.Helper()
	uri := testenv.NewDatabase(t)
	pool := testenv.NewPool(t, uri)
	if err := store.Migrate(context.Background(), pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	r := newRunOn(t, uri, pool, respond, vars)
	r.ids = testenv.InsertMessages(t, pool, n)
	return r
}

func newRunOn(t *testing.T, uri string, pool *pgxpool.Pool, respond sink.Responder, vars map[string]string) *run {
	t.Helper()
	s := sink.New(respond, nil)
	hook := httptest.NewServer(s)
	t.Cleanup(hook.Close)
	env := e2e.BaseEnv(uri, testenv.RedisAddr(), testenv.Queue(t), hook.URL)
	env["REDIS_TTL"] = "300"
	env["LOG_LEVEL"] = "INFO"
	for k, v := range vars {
		if v == "" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return &run{t: t, uri: uri, pool: pool, sink: s, env: env}
}

func (r *run) start(name string, extra ...string) *e2e.Proc {
	prog := strings.TrimRight(name, "-0123456789")
	return e2e.Start(r.t, filepath.Join(binDir, prog), name, e2e.Env(r.env, extra...))
}

func (r *run) count(status string) int {
	var n int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = $1`, status).Scan(&n); err != nil {
		r.t.Logf("count %s: %v", status, err)
		return -1
	}
	return n
}

func (r *run) waitSent(timeout time.Duration) {
	r.t.Helper()
	testenv.Eventually(r.t, timeout, "every message sent", func() bool { return r.count("sent") == len(r.ids) })
}

// ledger is what a drain delivered: every row must be sent, and a message
// that reached the webhook twice must have carried its own id as
// Idempotency-Key both times.
type ledger struct{ messages, delivered, repeats, lost int }

func (r *run) checkLedger() ledger {
	t := r.t
	t.Helper()
	rows, err := r.pool.Query(context.Background(), `SELECT id, status, content FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	idByContent := map[string]string{}
	for rows.Next() {
		var id, st, content string
		if err := rows.Scan(&id, &st, &content); err != nil {
			t.Fatal(err)
		}
		status[id], idByContent[content] = st, id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	accepted := map[string]int{}
	for _, d := range r.sink.Accepted() {
		accepted[d.IdempotencyKey]++
		if id := idByContent[d.Content]; id != d.IdempotencyKey {
			t.Errorf("content of %s arrived with Idempotency-Key %q", id, d.IdempotencyKey)
		}
	}
	l := ledger{messages: len(status)}
	for id, st := range status {
		if st == "sent" && accepted[id] > 0 {
			l.delivered++
			l.repeats += accepted[id] - 1
			continue
		}
		l.lost++
		if l.lost <= 5 {
			t.Errorf("lost: %s is %s after %d accepted deliveries", id, st, accepted[id])
		}
	}
	if l.lost > 0 {
		t.Errorf("%d of %d messages lost", l.lost, l.messages)
	}
	return l
}

// assertAlive fails t for every program that exited on its own.
func assertAlive(t *testing.T, procs ...*e2e.Proc) {
	t.Helper()
	for _, p := range procs {
		if p.Exited() {
			t.Errorf("%s exited on its own", p.Name)
		}
	}
}

// server is a process the test started (redis-server, a sentinel,
// pgbouncer); it is killed when the test ends.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startServer(t *testing.T, name string, args ...string) *server {
	t.Helper()
	s := &server{name: name, done: make(chan struct{})}
	s.cmd = exec.Command(args[0], args[1:]...)
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = s.cmd.Wait(); _ = f.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			if b, err := os.ReadFile(f.Name()); err == nil {
				t.Logf("--- output of %s ---\n%s", name, e2e.Tail(string(b), 30))
			}
		}
	})
	return s
}

// kill stops the server with SIGKILL, as a crash would, and reaps it.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// redisCLI runs redis-cli with args and returns its trimmed output.
func redisCLI(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli %v: %w: %s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// startRedis runs a private redis-server on port with extra arguments and
// waits until it answers; ping are the redis-cli arguments that reach it.
func startRedis(t *testing.T, name string, port int, ping []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	s := startServer(t, name, args...)
	if ping == nil {
		ping = []string{"-h", "127.0.0.1", "-p", fmt.Sprint(port)}
	}
	testenv.Eventually(t, 10*time.Second, name+" to answer", func() bool {
		out, err := redisCLI(append(ping, "ping")...)
		return err == nil && out == "PONG"
	})
	return s
}

// ticks samples dispatch_control.last_tick_at every 50 ms until stop is
// called, and returns the distinct tick times seen.
func (r *run) watchTicks() (stop func() []time.Time) {
	done := make(chan struct{})
	out := make(chan []time.Time, 1)
	go func() {
		var seen []time.Time
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				out <- seen
				return
			case <-tk.C:
			}
			var at *time.Time
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := r.pool.QueryRow(ctx, `SELECT last_tick_at FROM dispatch_control WHERE id = 1`).Scan(&at)
			cancel()
			if err == nil && at != nil && (len(seen) == 0 || !seen[len(seen)-1].Equal(*at)) {
				seen = append(seen, *at)
			}
		}
	}()
	return func() []time.Time { close(done); return <-out }
}

// tickGap is how long after t0 the first tick came, and the longest
// interval between two ticks from a little before t0 on.
func tickGap(ticks []time.Time, t0 time.Time) (resumed, longest time.Duration) {
	resumed = -1
	prev := time.Time{}
	for _, at := range ticks {
		if at.After(t0) && resumed < 0 {
			resumed = at.Sub(t0)
		}
		if !prev.IsZero() && at.After(t0.Add(-2*time.Second)) {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	return resumed, longest
}
