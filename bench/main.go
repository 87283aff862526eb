// Command bench is the end-to-end benchmark behind `make bench`: it drains a
// backlog through the real scheduler and worker processes into a local
// webhook sink, measures the wire limit in the same run, and prints Markdown
// tables. It is a module of its own, so that nothing it needs enters the
// programs' go.mod; the work is in internal/bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/messaging-server/messaging-server/bench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
