// Package logging builds the slog logger every program uses and adapts it to
// asynq, so that the queue library's lines share one format and level with
// ours.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/lmittmann/tint"
)

// New returns a logger writing to w at level ("DEBUG", "INFO", "WARN",
// "ERROR") in format "text" (tint, coloured only when w is a terminal) or
// "json" (for log shippers).
func New(w io.Writer, level, format string) *slog.Logger {
	lvl := ParseLevel(level)
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{
		Level:      lvl,
		TimeFormat: time.RFC3339Nano,
		NoColor:    !isTerminal(w),
	}))
}

// ParseLevel maps a validated LOG_LEVEL to slog; unknown text means INFO.
func ParseLevel(level string) slog.Level {
	switch strings.ToUpper(level) {
	case "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// AsynqLevel maps a validated LOG_LEVEL to asynq's own level type.
func AsynqLevel(level string) asynq.LogLevel {
	switch ParseLevel(level) {
	case slog.LevelDebug:
		return asynq.DebugLevel
	case slog.LevelWarn:
		return asynq.WarnLevel
	case slog.LevelError:
		return asynq.ErrorLevel
	default:
		return asynq.InfoLevel
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Asynq adapts a slog.Logger to asynq's Logger interface.
type Asynq struct{ L *slog.Logger }

var _ asynq.Logger = Asynq{}

// Debug implements asynq.Logger.
func (a Asynq) Debug(args ...any) { a.L.Debug(fmt.Sprint(args...), "lib", "asynq") }

// Info implements asynq.Logger.
func (a Asynq) Info(args ...any) { a.L.Info(fmt.Sprint(args...), "lib", "asynq") }

// Warn implements asynq.Logger.
func (a Asynq) Warn(args ...any) { a.L.Warn(fmt.Sprint(args...), "lib", "asynq") }

// Error implements asynq.Logger.
func (a Asynq) Error(args ...any) { a.L.Error(fmt.Sprint(args...), "lib", "asynq") }

// Fatal implements asynq.Logger. asynq calls it only for unrecoverable start-up
// faults; exiting is what its contract asks for.
func (a Asynq) Fatal(args ...any) {
	a.L.Error(fmt.Sprint(args...), "lib", "asynq", "fatal", true)
	os.Exit(1)
}
