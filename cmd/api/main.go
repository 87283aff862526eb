// Command api serves the HTTP API that controls sending and reads messages:
// the switch, message intake and reads, Swagger UI at /swagger/index.html,
// the asynqmon dashboard at /monitoring and Prometheus metrics at /metrics.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(app.Main(ctx, app.Program{
		Name: "api",
		// Requests run concurrently; each holds a connection for one
		// statement.
		PoolSize: func(config.Config) int { return 10 },
		Run: func(ctx context.Context, cfg config.Config, d *app.Deps) error {
			srv := api.New(cfg, d)
			defer func() {
				if err := srv.Close(); err != nil {
					d.Log.Warn("close api", "err", err)
				}
			}()
			return srv.Serve(ctx)
		},
	}, os.Environ(), os.Stderr))
}
