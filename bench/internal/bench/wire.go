package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

// WireResult is the wire limit: what the sink and the HTTP client manage on
// this machine with nothing else in the way. The drain can only approach it,
// so drain / wire is the figure that survives a noisy machine.
type WireResult struct {
	Concurrency int
	Messages    int
	Elapsed     time.Duration
	// Latency of one POST, seconds.
	Latency    Quantiles
	Duplicates int
}

// Rate is POSTs per second.
func (w WireResult) Rate() float64 { return rate(w.Messages, w.Elapsed) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// runWire POSTs messages [0, n) of gen to a fresh sink with conc calls in
// flight, through the worker's own webhook client built with the options
// the worker uses (one client, MaxConns = conc, default timeout and auth
// header, no signing key), so only the database and Redis are missing.
// delay is the slow receiver's hold on every answer (0: answer at once).
func runWire(ctx context.Context, gen Generator, n, conc int, delay time.Duration) (WireResult, error) {
	rcv, err := startReceiver(ctx, n, delay)
	if err != nil {
		return WireResult{}, err
	}
	defer rcv.close()
	client := webhook.New(webhook.Options{
		URL:        rcv.url,
		Timeout:    10 * time.Second, // WEBHOOK_TIMEOUT's default
		AuthHeader: "x-ins-auth-key", // WEBHOOK_AUTH_HEADER's default
		MaxConns:   conc,
	})
	defer client.Close()

	lat := make([]float64, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				_, err := client.Send(ctx, gen.Message(i))
				lat[i] = time.Since(t0).Seconds()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return WireResult{}, fmt.Errorf("wire limit: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return WireResult{}, err
	}
	_, _, dups, _, _ := rcv.receipts()
	if u := rcv.unique(); u != n {
		return WireResult{}, fmt.Errorf("wire limit: sink saw %d distinct messages, want %d", u, n)
	}
	return WireResult{Concurrency: conc, Messages: n, Elapsed: elapsed, Latency: Summarize(lat), Duplicates: dups}, nil
}
