package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/delivery"
)

// MetricsPortRange is how many ports from the default METRICS_PORT a worker
// tries before it lets the system choose one: several workers on one host
// take 9090, 9091, ... in start order.
const MetricsPortRange = 32

// listenMetrics opens the worker's metrics listener. A METRICS_PORT the
// operator set is bound exactly, and failing to bind it is a *config.Error
// (exit 2). The default port moves on to the next free one, up to
// MetricsPortRange ports, then to any free port, so that a second worker on
// the same host runs; the chosen address is logged. Ports are not shared
// with SO_REUSEPORT: each scrape would reach a random worker and mix their
// counters.
func listenMetrics(cfg config.Config, log *slog.Logger) (net.Listener, error) {
	var lc net.ListenConfig
	ctx := context.Background()
	if cfg.MetricsPortSet {
		ln, err := lc.Listen(ctx, "tcp", ":"+strconv.Itoa(cfg.MetricsPort))
		if err != nil {
			return nil, fmt.Errorf("worker: metrics listener: %w", &config.Error{
				Var: "METRICS_PORT", Value: strconv.Itoa(cfg.MetricsPort),
				Accepts: "a port this worker can bind (" + bindReason(err) + "); leave it unset to take the next free port from 9090",
			})
		}
		log.Info("metrics listening", "addr", ln.Addr().String())
		return ln, nil
	}
	for port := cfg.MetricsPort; port < cfg.MetricsPort+MetricsPortRange && port <= 65535; port++ {
		ln, err := lc.Listen(ctx, "tcp", ":"+strconv.Itoa(port))
		if err == nil {
			if port != cfg.MetricsPort {
				log.Info("metrics port taken, using the next free one", "default", cfg.MetricsPort, "port", port)
			}
			log.Info("metrics listening", "addr", ln.Addr().String())
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("worker: metrics listener: %w", err)
		}
	}
	ln, err := lc.Listen(ctx, "tcp", ":0")
	if err != nil {
		return nil, fmt.Errorf("worker: metrics listener: %w", err)
	}
	log.Warn("metrics ports taken, using a port the system chose", "from", cfg.MetricsPort, "to", cfg.MetricsPort+MetricsPortRange-1, "addr", ln.Addr().String())
	return ln, nil
}

func bindReason(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "it is in use"
	case errors.Is(err, syscall.EACCES):
		return "permission denied"
	default:
		return "bind failed"
	}
}

// Readiness is the answer of a worker's /readyz, in the api's shape: the
// overall status and each check's ("ok" or "unavailable"), and while not
// ready a reason an operator can act on.
type Readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Reason string            `json:"reason,omitempty"`
}

// RecordCheck is the check of /readyz that says whether the worker can
// record outcomes.
const RecordCheck = "record_outcomes"

// readyzHandler answers a worker's /readyz: 200 while it can record
// outcomes, 503 while the record statement fails (it starts no call then).
func readyzHandler(health func() delivery.RecordHealth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := health()
		body, code := Readiness{Status: "ok", Checks: map[string]string{RecordCheck: "ok"}}, http.StatusOK
		if h.Failing {
			body = Readiness{
				Status: "unavailable", Checks: map[string]string{RecordCheck: "unavailable"},
				Reason: "recording delivery outcomes has failed since " + h.Since.UTC().Format(time.RFC3339) +
					"; this worker starts no call until it works (see its log)",
			}
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
}
