// Command api serves the HTTP API that controls sending and reads messages.
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
		Run: func(ctx context.Context, cfg config.Config, d *app.Deps) error {
			return api.New(cfg, d).Serve(ctx)
		},
	}, os.Environ(), os.Stderr))
}
