package scaleout_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
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

// newRun makes a migrated database with n messages, a webhook receiver and
// the programs' environment: INFO logs and a 300 s REDIS_TTL, under vars
// (an empty value removes the variable).
func newRun(t *testing.T, n int, respond sink.Responder, vars map[string]string) *e2e.System {
	t.Helper()
	return e2e.NewSystem(t, runOptions(n, respond, vars))
}

// runOptions are newRun's options, for a test that changes them first.
func runOptions(n int, respond sink.Responder, vars map[string]string) e2e.Options {
	env := map[string]string{"REDIS_TTL": "300", "LOG_LEVEL": "INFO"}
	for k, v := range vars {
		env[k] = v
	}
	return e2e.Options{Bin: binDir, Messages: n, Respond: respond, Vars: env}
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

// watchTicks samples dispatch_control.last_tick_at every 50 ms until stop
// is called, and returns the distinct tick times seen and the first query
// error, if any.
func watchTicks(r *e2e.System) (stop func() ([]time.Time, error)) {
	type result struct {
		seen []time.Time
		err  error
	}
	done := make(chan struct{})
	out := make(chan result, 1)
	go func() {
		var res result
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				out <- res
				return
			case <-tk.C:
			}
			var at *time.Time
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := r.Pool.QueryRow(ctx, `SELECT last_tick_at FROM dispatch_control WHERE id = 1`).Scan(&at)
			cancel()
			if err != nil {
				if res.err == nil {
					res.err = fmt.Errorf("read last_tick_at: %w", err)
				}
				continue
			}
			if at != nil && (len(res.seen) == 0 || !res.seen[len(res.seen)-1].Equal(*at)) {
				res.seen = append(res.seen, *at)
			}
		}
	}()
	return func() ([]time.Time, error) { close(done); res := <-out; return res.seen, res.err }
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
