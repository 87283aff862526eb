// Command sink is a stand-in webhook receiver for running the system on one
// machine: it answers like the production webhook (202 with a messageId) and
// logs every message it receives, so a developer can watch deliveries arrive
// without an account on a public request bin. A content containing
// "fail-once" gets 500 on its first call and "reject" gets 400
// (sink.Trigger), so a retry and a failure can be watched too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/sink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// run serves the sink until ctx ends and returns the exit code. ready, when
// not nil, receives the listening address once requests can be served; it
// lets a test use port 0 without racing the listener.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on (host:port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := logging.New(stderr, "INFO", "text").With("program", "sink")
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "sink:", err)
		return 1
	}
	if err := serve(ctx, ln, log, ready); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// serve runs the HTTP server on ln until ctx ends, then lets requests in
// flight finish (bounded, so a stuck client cannot hold the exit).
func serve(ctx context.Context, ln net.Listener, log *slog.Logger, ready chan<- string) error {
	srv := &http.Server{Handler: sink.New(sink.Triggers(log), log), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("sink listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("sink stopped")
	return nil
}
