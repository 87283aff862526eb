package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
)

// buildPrograms compiles cmd/worker and cmd/scheduler of the repository
// into dir, so the drain runs the binaries that ship, each in a process of
// its own. The build runs in the repository root, with the product's own
// go.mod, not the bench's.
func buildPrograms(ctx context.Context, dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/worker", "./cmd/scheduler")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build cmd/worker and cmd/scheduler: %w\n%s", err, out)
	}
	return nil
}

// codeRevision says which code the programs were built from: the commit,
// and the tracked files under cmd/ and internal/ that differ from it. A
// result is only comparable with another of the same code.
func codeRevision(ctx context.Context) string {
	root, err := repoRoot()
	if err != nil {
		return "unknown"
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%h (%s)").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	rev := strings.TrimSpace(string(out))
	changed, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "cmd", "internal", "go.mod", "go.sum").Output()
	if err == nil {
		var files []string
		for _, l := range strings.Split(string(changed), "\n") {
			if len(l) > 3 { // "XY path"
				files = append(files, l[3:])
			}
		}
		if len(files) > 0 {
			rev += " with uncommitted changes to " + strings.Join(files, ", ")
		}
	}
	return rev
}

// tailBuffer keeps the last bytes a process wrote, for error reports, and
// counts its ERROR lines, which a clean drain has none of.
type tailBuffer struct {
	mu      sync.Mutex
	b       []byte
	partial []byte   // the unfinished last line
	errors  []string // the first ERROR lines, kept whole
	nErrors int
}

// isErrorLine tells whether a log line is at ERROR level, in any of the
// programs' log formats (tint text, JSON, slog text).
func isErrorLine(line []byte) bool {
	return bytes.Contains(line, []byte(" ERR ")) || bytes.Contains(line, []byte(`"level":"ERROR"`)) ||
		bytes.Contains(line, []byte("level=ERROR"))
}

const tailMax = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		if line := t.partial[:i]; isErrorLine(line) {
			t.nErrors++
			if len(t.errors) < 20 {
				t.errors = append(t.errors, string(line))
			}
		}
		t.partial = t.partial[i+1:]
	}
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append([]byte(nil), t.b[len(t.b)-tailMax/2:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// errorLines returns how many ERROR lines were written and the first few.
func (t *tailBuffer) errorLines() (int, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nErrors, append([]string(nil), t.errors...)
}

// proc is one program the bench started; stop always reaps it.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
}

// startProc runs bin with args and exactly env (plus PATH and HOME), so the
// bench controls the whole configuration. When ctx ends (the bench was
// interrupted) the process gets SIGTERM, and SIGKILL 30 s later.
func startProc(ctx context.Context, name, bin string, args, env []string) (*proc, error) {
	p := &proc{name: name, out: &tailBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 30 * time.Second
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace for a clean exit, then kills. It
// returns an error when the process had to be killed or exited non-zero.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.name, grace)
	}
}

func (p *proc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, p.err, e2e.Tail(p.out.String(), 20))
	}
	return nil
}
