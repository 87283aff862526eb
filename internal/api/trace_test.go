package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// TestTraceFromCreateToAttempt: a create sent with a traceparent, then
// delivered by a scheduler and a worker built in this process, leaves in
// the span recorder one trace with the api's span and the INSERT's pgx span
// (both tagged with the message id) and the attempt's span (tagged with
// the id, attempt 1, the provider and the outcome); the webhook call
// carries a traceparent of that trace.
func TestTraceFromCreateToAttempt(t *testing.T) {
	t.Parallel()
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00-" + traceID + "-00f067aa0ba902b7-01"
	)
	uri := testenv.NewDatabase(t)
	sink, hookURL := e2e.NewReceiver(t, nil)
	cfg := testenv.Config(t, uri, testenv.Queue(t), "WEBHOOK_URL="+hookURL, "METRICS_PORT=0", "CRON_INTERVAL=1")
	rec := tracetest.NewSpanRecorder()
	tr, err := tracing.New(context.Background(), tracing.Deps{Config: cfg, Program: "test", Processors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	// Each program opens its own connections, as a process would.
	open := func() *app.Deps {
		d, err := app.Open(context.Background(), cfg, testenv.Logger(t), 6, tr)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(d.Close)
		return d
	}
	srv := api.New(cfg, open())
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})

	hr := httptest.NewRequest(http.MethodPost, "/api/v1/messages", strings.NewReader(`{"content":"trace me","phone_number":"+905321234567"}`))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("traceparent", parent)
	resp, err := srv.App().Test(hr, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	var created api.MessageCreated
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	sch, err := app.NewScheduler(cfg, open(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	w := app.NewWorker(cfg, open(), app.Tuning{PollInterval: 50 * time.Millisecond})
	for _, run := range []func(context.Context) error{sch.Run, w.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	var got string
	select {
	case d := <-sink.Received():
		if d.IdempotencyKey != created.ID {
			t.Fatalf("the webhook got %s, want %s", d.IdempotencyKey, created.ID)
		}
		got = d.Header.Get("traceparent")
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for the delivery")
	}
	stop() // every span has ended once the programs stopped
	if parts := strings.Split(got, "-"); len(parts) != 4 || parts[1] != traceID {
		t.Fatalf("the webhook call carried traceparent %q, want trace %s", got, traceID)
	}

	var server, attempt, pgx []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != traceID {
			continue
		}
		attrs := attributes(s)
		if attrs[tracing.MessageID] != created.ID {
			continue
		}
		switch {
		case s.SpanKind() == trace.SpanKindServer:
			server = append(server, s)
		case s.Name() == "deliver message":
			attempt = append(attempt, s)
			want := map[string]string{"messaging.delivery.attempt": "1", "messaging.provider": "default", "messaging.delivery.outcome": "sent"}
			for k, v := range want {
				if attrs[k] != v {
					t.Errorf("attempt span: %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
				}
			}
			if got != "" && !strings.Contains(got, s.SpanContext().SpanID().String()) {
				t.Errorf("the webhook's traceparent %s does not name the attempt span %s", got, s.SpanContext().SpanID())
			}
		case strings.Contains(s.InstrumentationScope().Name, "otelpgx"):
			pgx = append(pgx, s)
		}
	}
	if len(server) != 1 || len(attempt) != 1 || len(pgx) == 0 {
		t.Fatalf("trace %s, message %s: %d api spans, %d attempt spans, %d pgx spans; want 1, 1 and some (%d spans recorded)",
			traceID, created.ID, len(server), len(attempt), len(pgx), len(rec.Ended()))
	}
	if p := server[0].Parent(); !p.IsRemote() || p.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the api span's parent is %v, want the caller's span 00f067aa0ba902b7", p)
	}
	if attempt[0].Parent().SpanID() != server[0].SpanContext().SpanID() {
		t.Errorf("the attempt span's parent is %s, want the api span %s", attempt[0].Parent().SpanID(), server[0].SpanContext().SpanID())
	}
	t.Logf("trace %s: api span %q, attempt span, %d pgx spans", traceID, server[0].Name(), len(pgx))
}

func attributes(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}
