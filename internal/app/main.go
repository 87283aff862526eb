package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// Exit codes of the programs.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitConfig = 2
)

// Program is what a cmd/ main runs once its dependencies are open.
type Program struct {
	Name string
	// PoolSize is how many PostgreSQL connections the program may hold.
	PoolSize func(config.Config) int
	Run      func(ctx context.Context, cfg config.Config, d *Deps) error
}

// Main is the whole life of a program: read the config (one line and exit 2
// when it is bad), open the connections, run until ctx ends, close. It
// returns the exit code.
func Main(ctx context.Context, p Program, environ []string, stderr io.Writer) int {
	cfg, err := config.Load(environ)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return ExitConfig
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat).With("app", cfg.AppName, "program", p.Name)
	size := 4
	if p.PoolSize != nil {
		size = p.PoolSize(cfg)
	}
	tr, err := tracing.New(ctx, tracing.Deps{Config: cfg, Program: p.Name})
	if err != nil {
		log.Error("start failed", "err", err)
		return ExitConfig
	}
	defer func() {
		// Spans not yet exported get a few seconds to leave.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	d, err := Open(ctx, cfg, log, size, tr)
	if err != nil {
		log.Error("start failed", "err", err)
		return exitCode(err)
	}
	defer d.Close()
	if err := p.Run(ctx, cfg, d); err != nil {
		log.Error("stopped with error", "err", err)
		return exitCode(err)
	}
	return ExitOK
}

// exitCode is ExitConfig for an error that names a setting the operator
// must change (a bad URI, an explicit port that cannot be bound), else
// ExitFailed.
func exitCode(err error) int {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ExitConfig
	}
	return ExitFailed
}
