package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/delivery"
)

func takenPort(t *testing.T) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// The default metrics port moves on when it is taken, so that a second
// worker on the host runs; an explicit one is a config error (exit 2).
func TestListenMetrics(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := takenPort(t)

	ln, err := listenMetrics(config.Config{MetricsPort: port}, log)
	if err != nil {
		t.Fatalf("default port taken: %v", err)
	}
	got := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	if got == port {
		t.Fatalf("listened on the taken port %d", port)
	}

	_, err = listenMetrics(config.Config{MetricsPort: port, MetricsPortSet: true}, log)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "METRICS_PORT" {
		t.Fatalf("explicit port taken: got %v, want a *config.Error naming METRICS_PORT", err)
	}
	if exitCode(err) != ExitConfig {
		t.Fatalf("exit code %d, want %d", exitCode(err), ExitConfig)
	}
}

// A worker's /readyz is 200 while it can record outcomes and 503, with the
// failing check and a reason, while it cannot.
func TestReadyzReportsRecordFailures(t *testing.T) {
	t.Parallel()
	since := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		health delivery.RecordHealth
		code   int
		body   Readiness
	}{
		{"records work", delivery.RecordHealth{}, http.StatusOK, Readiness{Status: "ok", Checks: map[string]string{RecordCheck: "ok"}}},
		{"records fail", delivery.RecordHealth{Failing: true, Since: since}, http.StatusServiceUnavailable, Readiness{
			Status: "unavailable", Checks: map[string]string{RecordCheck: "unavailable"},
			Reason: "recording delivery outcomes has failed since 2024-05-01T12:00:00Z; this worker starts no call until it works (see its log)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			readyzHandler(func() delivery.RecordHealth { return tc.health }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.code || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q; want %d, application/json", rec.Code, rec.Header().Get("Content-Type"), tc.code)
			}
			var got Readiness
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.body) {
				t.Fatalf("body %+v, want %+v", got, tc.body)
			}
		})
	}
}
