package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/messaging-server/messaging-server/internal/config"
)

func takenPort(t *testing.T) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// The default metrics port moves on when it is taken, so that a second
// worker on the host runs; an explicit one is a config error (exit 2).
func TestListenMetrics(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := takenPort(t)

	ln, err := listenMetrics(config.Config{MetricsPort: port}, log)
	if err != nil {
		t.Fatalf("default port taken: %v", err)
	}
	got := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	if got == port {
		t.Fatalf("listened on the taken port %d", port)
	}

	_, err = listenMetrics(config.Config{MetricsPort: port, MetricsPortSet: true}, log)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "METRICS_PORT" {
		t.Fatalf("explicit port taken: got %v, want a *config.Error naming METRICS_PORT", err)
	}
	if exitCode(err) != ExitConfig {
		t.Fatalf("exit code %d, want %d", exitCode(err), ExitConfig)
	}
}
