package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Server is a server process a test runs beside the programs (a private
// redis-server, a sentinel, pgbouncer). It is killed when the test ends and
// its output is logged when the test failed.
type Server struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer runs args (the command first) as the server name.
func StartServer(t testing.TB, name string, args ...string) *Server {
	t.Helper()
	s := &Server{Name: name, done: make(chan struct{})}
	s.cmd = exec.CommandContext(context.Background(), args[0], args[1:]...)
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = s.cmd.Wait() // a server ends by Kill; its exit status says nothing
		_ = f.Close()    // written only by the process, which has ended
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(f.Name()); err == nil {
				t.Logf("--- output of %s ---\n%s", name, Tail(string(b), 30))
			}
		}
	})
	return s
}

// Kill stops the server with SIGKILL, as a crash would, and reaps it.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill() // it ends either way; done reports when
	<-s.done
}

// RedisCLI runs redis-cli with args and returns its trimmed output.
func RedisCLI(args ...string) (string, error) {
	out, err := exec.CommandContext(context.Background(), "redis-cli", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli %v: %w: %s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartRedis runs a private redis-server on port, keeping nothing on disk,
// with extra arguments, and waits until it answers PING; ping are the
// redis-cli arguments that reach it (nil: 127.0.0.1 and port).
func StartRedis(t testing.TB, name string, port int, ping []string, extra ...string) *Server {
	t.Helper()
	args := append([]string{"redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	s := StartServer(t, name, args...)
	if ping == nil {
		ping = []string{"-h", "127.0.0.1", "-p", fmt.Sprint(port)}
	}
	testenv.Eventually(t, 10*time.Second, name+" to answer", func() bool {
		out, err := RedisCLI(append(ping, "ping")...)
		return err == nil && out == "PONG"
	})
	return s
}
