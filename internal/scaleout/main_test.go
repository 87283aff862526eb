package scaleout_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
)

var binDir string

// TestMain builds the programs once. Every test here starts servers and
// processes and takes seconds to a minute, so -short (make test-short)
// skips them all without building.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(e2e.RunWithBinaries(m, func(dir string) { binDir = dir }, nil))
}

// newRun makes a migrated database with n messages, a webhook receiver and
// the programs' environment: INFO logs and a 300 s REDIS_TTL, under vars
// (an empty value removes the variable).
func newRun(t *testing.T, n int, respond sink.Responder, vars map[string]string) *e2e.System {
	t.Helper()
	return e2e.NewSystem(t, runOptions(n, respond, vars))
}

// runOptions are newRun's options, for a test that changes them first.
func runOptions(n int, respond sink.Responder, vars map[string]string) e2e.Options {
	env := map[string]string{"REDIS_TTL": "300", "LOG_LEVEL": "INFO"}
	for k, v := range vars {
		env[k] = v
	}
	return e2e.Options{Bin: binDir, Messages: n, Respond: respond, Vars: env}
}

// watchTicks samples dispatch_control.last_tick_at every 50 ms until stop
// is called, and returns the distinct tick times seen and the first query
// error, if any.
func watchTicks(r *e2e.System) (stop func() ([]time.Time, error)) {
	type result struct {
		seen []time.Time
		err  error
	}
	done := make(chan struct{})
	out := make(chan result, 1)
	go func() {
		var res result
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				out <- res
				return
			case <-tk.C:
			}
			var at *time.Time
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := r.Pool.QueryRow(ctx, `SELECT last_tick_at FROM dispatch_control WHERE id = 1`).Scan(&at)
			cancel()
			if err != nil {
				if res.err == nil {
					res.err = fmt.Errorf("read last_tick_at: %w", err)
				}
				continue
			}
			if at != nil && (len(res.seen) == 0 || !res.seen[len(res.seen)-1].Equal(*at)) {
				res.seen = append(res.seen, *at)
			}
		}
	}()
	return func() ([]time.Time, error) { close(done); res := <-out; return res.seen, res.err }
}

// tickGap is how long after t0 the first tick came, and the longest
// interval between two ticks from a little before t0 on.
func tickGap(ticks []time.Time, t0 time.Time) (resumed, longest time.Duration) {
	resumed = -1
	prev := time.Time{}
	for _, at := range ticks {
		if at.After(t0) && resumed < 0 {
			resumed = at.Sub(t0)
		}
		if !prev.IsZero() && at.After(t0.Add(-2*time.Second)) {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	return resumed, longest
}
