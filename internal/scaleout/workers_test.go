package scaleout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
)

// metricsAddr is the address a worker logged for its metrics listener.
func metricsAddr(t *testing.T, p *e2e.Proc) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitForOutput(ctx, `"msg":"metrics listening"`); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "metrics listening" {
			return l.Addr
		}
	}
	t.Fatalf("%s logged no metrics address", p.Name)
	return ""
}

func scrape(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics on %s: %d", addr, resp.StatusCode)
	}
	return string(b), nil
}

// Four workers on one host with the default METRICS_PORT all run, each on
// its own metrics port, and share the drain.
func TestFourWorkersWithDefaultSettings(t *testing.T) {
	e2e.SlowTest(t)
	r := newRun(t, 400, nil, map[string]string{"METRICS_PORT": "", "MESSAGE_FETCH_LIMIT": "100"})
	sched := r.Start("scheduler")
	var workers []*e2e.Proc
	for i := 1; i <= 4; i++ {
		workers = append(workers, r.Start(fmt.Sprintf("worker-%d", i)))
	}
	seen := map[string]string{}
	for _, w := range workers {
		addr := metricsAddr(t, w)
		if other, dup := seen[addr]; dup {
			t.Fatalf("%s and %s both report metrics on %s", w.Name, other, addr)
		}
		seen[addr] = w.Name
	}
	r.WaitSent(60 * time.Second)
	for addr, name := range seen {
		body, err := scrape(addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(body, "messaging_claimed_total") {
			t.Fatalf("%s: /metrics on %s has no delivery metrics", name, addr)
		}
		t.Logf("%s serves /metrics on %s", name, addr)
	}
	r.AssertAlive(append(workers, sched)...)
	e2e.StopAll(t, 30*time.Second, append(workers, sched)...)
	if l := r.Ledger(nil); l.Lost != 0 {
		t.Fatalf("lost %d", l.Lost)
	}
}

// A METRICS_PORT set explicitly that cannot be bound stops the worker with
// exit 2 and a line naming the variable.
func TestExplicitMetricsPortInUseExits2(t *testing.T) {
	e2e.SlowTest(t)
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	port := ln.Addr().(*net.TCPAddr).Port
	r := newRun(t, 0, nil, map[string]string{"METRICS_PORT": fmt.Sprint(port)})
	w := r.Start("worker")
	code, err := w.Wait(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 2 || !strings.Contains(w.Output(), "METRICS_PORT") {
		t.Fatalf("exit %d, want 2 with a line naming METRICS_PORT:\n%s", code, e2e.Tail(w.Output(), 5))
	}
}
