// Command scheduler enqueues a dispatch task every CRON_INTERVAL while
// sending runs. Replicas are safe: the per-tick budget is enforced where
// messages are claimed.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(app.Main(ctx, app.Program{
		Name: "scheduler",
		Run: func(ctx context.Context, cfg config.Config, d *app.Deps) error {
			s, err := app.NewScheduler(cfg, d, time.Second)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}, os.Environ(), os.Stderr))
}
