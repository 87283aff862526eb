// Command worker claims due messages and delivers them to the webhook. Run
// as many as the load needs; they share the work through PostgreSQL.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(app.Main(ctx, app.Program{
		Name:     "worker",
		PoolSize: func(config.Config) int { return app.WorkerPoolSize },
		Run: func(ctx context.Context, cfg config.Config, d *app.Deps) error {
			return app.NewWorker(cfg, d, app.Tuning{}).Run(ctx)
		},
	}, os.Environ(), os.Stderr))
}
