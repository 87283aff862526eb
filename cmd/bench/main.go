// Command bench is the end-to-end benchmark of issue 6 (`make bench`): it
// drains a backlog through the real scheduler and worker processes into a
// local webhook sink, measures the wire limit in the same run, and prints a
// Markdown table. See internal/bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/messaging-server/messaging-server/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
