// Package e2e runs the real binaries as separate processes against the real
// PostgreSQL and Redis. System is the one harness every system test uses
// (end-to-end, console, faults, scale-out): a database, a queue and a
// webhook receiver of the test's own, the programs started by name, waits
// on the table, the delivery ledger, and a clean stop. The lower helpers
// start, signal and reap single processes and always clean up what they
// started.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Build compiles the named programs of cmd/ (api, worker, scheduler, ...)
// into dir, so tests and the benchmark run the binaries that ship.
func Build(dir string, programs ...string) error {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, p := range programs {
		args = append(args, "./cmd/"+p)
	}
	cmd := exec.CommandContext(context.Background(), "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build programs: %w\n%s", err, out)
	}
	return nil
}

// RunWithBinaries is a TestMain body: it builds the programs into a
// temporary directory, runs the tests with that directory, calls after (may
// be nil) and removes the directory. It returns the exit code.
func RunWithBinaries(m interface{ Run() int }, setDir func(string), after func()) int {
	dir, err := os.MkdirTemp("", "ms-bin")
	if err != nil {
		_, _ = fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := Build(dir, "api", "worker", "scheduler", "sink"); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, err)
		return 1
	}
	setDir(dir)
	code := m.Run()
	if after != nil {
		after()
	}
	return code
}

// SlowTest marks t parallel and skips it under -short (make test-short):
// the tests that use it start the built programs and take seconds each.
func SlowTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the built programs")
	}
	t.Parallel()
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is one running program.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs bin with args and exactly env (no inherited variables, so the
// test controls the whole configuration). The process is killed when t ends if
// it is still running, and its output is logged when t failed.
func Start(t testing.TB, bin, name string, env []string, args ...string) *Proc {
	t.Helper()
	p := launch(t, bin, name, env, args...)
	t.Cleanup(func() { p.reap(t) })
	return p
}

// launch starts the process and leaves ending it to the caller.
func launch(t testing.TB, bin, name string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(context.Background(), bin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// reap kills the process if it still runs, waits for it, and logs its
// output when t failed.
func (p *Proc) reap(t testing.TB) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill() // it ends either way; Wait reports how
		<-p.done
	}
	if t.Failed() {
		t.Logf("--- output of %s ---\n%s", p.Name, Tail(p.out.String(), 60))
	}
}

// Tail is the last lines of s, for failure reports.
func Tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// Output is everything the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL, as a crash would.
func (p *Proc) Kill() error { return p.cmd.Process.Signal(syscall.SIGKILL) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to end and returns its exit code
// (-1 when it was killed by a signal).
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s did not exit within %s", p.Name, timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return 0, nil
}

// WaitForOutput waits until the process has written substr.
func (p *Proc) WaitForOutput(ctx context.Context, substr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.out.String(), substr) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never wrote %q: %w", p.Name, substr, ctx.Err())
		case <-p.done:
			return fmt.Errorf("%s exited before writing %q", p.Name, substr)
		case <-tick.C:
		}
	}
	return nil
}

// BaseEnv is a working configuration for the programs against the test
// services: fast ticks, short timeouts, no metrics listener, JSON logs.
func BaseEnv(postgresURI, redisAddr, queue, webhookURL string) map[string]string {
	host, port, _ := strings.Cut(redisAddr, ":")
	return map[string]string{
		"POSTGRES_URI":        postgresURI,
		"REDIS_HOST":          host,
		"REDIS_PORT":          port,
		"REDIS_DB":            strconv.Itoa(testenv.RedisDB()),
		"QUEUE_NAME":          queue,
		"WEBHOOK_URL":         webhookURL,
		"CRON_INTERVAL":       "1",
		"MESSAGE_FETCH_LIMIT": "2",
		"SERVER_GRACE_PERIOD": "5",
		"WEBHOOK_TIMEOUT":     "2",
		"METRICS_PORT":        "0",
		"LOG_LEVEL":           "DEBUG",
		"LOG_FORMAT":          "json",
	}
}

// Env turns a map into KEY=VALUE pairs, with extra pairs appended last.
func Env(m map[string]string, extra ...string) []string {
	out := make([]string, 0, len(m)+len(extra))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}

// Memory is a process's resident set size and its high-water mark, in
// bytes, from /proc/<pid>/status.
type Memory struct {
	RSS, HWM int64
}

// ReadMemory reads VmRSS and VmHWM. VmHWM is the kernel's own peak, so a
// spike between two polls is not missed.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, err
	}
	defer func() { _ = f.Close() }() // read only
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse %s: %w", k, err)
		}
		*dst = kb << 10
	}
	return m, sc.Err()
}

// StopAll sends SIGTERM to every program still running and fails t for any
// that does not then exit 0 within timeout (one killed on purpose, -1,
// is fine).
func StopAll(t testing.TB, timeout time.Duration, procs ...*Proc) {
	t.Helper()
	for _, p := range procs {
		if !p.Exited() {
			_ = p.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if code, err := p.Wait(timeout); err != nil || (code != 0 && code != -1) {
			t.Errorf("%s: exit %d, %v", p.Name, code, err)
		}
	}
}

// Slow is a webhook sink responder that holds every answer for d, then
// lets the sink answer as usual.
func Slow(d time.Duration) sink.Responder {
	return func(http.ResponseWriter, *http.Request, sink.Delivery, int) bool {
		time.Sleep(d) //nolint:forbidigo // the webhook under test is slow on purpose
		return false
	}
}
