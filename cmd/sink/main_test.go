package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer lets the server's goroutines log while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunAcceptsLogsAndStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, &stderr, ready) }()

	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("run exited early with %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("sink did not start")
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/",
		strings.NewReader(`{"to":"+905551111111","content":"hello from the test"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "sink-test-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", resp.StatusCode, body)
	}
	var got struct {
		Message   string `json:"message"`
		MessageID string `json:"messageId"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Message != "Accepted" || got.MessageID == "" {
		t.Fatalf("body = %s (err %v), want Accepted with a messageId", body, err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code = %d, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sink did not stop after cancel")
	}
	for _, want := range []string{"sink listening", "webhook received", "+90********11", "content_chars=19", "sink-test-1", "sink stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
	// No personal data: neither the content nor the full number.
	for _, never := range []string{"hello from the test", "+905551111111"} {
		if strings.Contains(stderr.String(), never) {
			t.Errorf("log holds %q:\n%s", never, stderr.String())
		}
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown flag", []string{"-port", "9000"}, 2},
		{"unusable address", []string{"-addr", "127.0.0.1:-1"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr syncBuffer
			if got := run(t.Context(), tt.args, &stderr, nil); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.want, stderr.String())
			}
		})
	}
}
