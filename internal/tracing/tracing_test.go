package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

func TestSampler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		arg  float64
		want string
	}{
		{"always_on", 1, sdktrace.AlwaysSample().Description()},
		{"always_off", 1, sdktrace.NeverSample().Description()},
		{"traceidratio", 0.25, sdktrace.TraceIDRatioBased(0.25).Description()},
		{"parentbased_always_on", 1, sdktrace.ParentBased(sdktrace.AlwaysSample()).Description()},
		{"parentbased_always_off", 1, sdktrace.ParentBased(sdktrace.NeverSample()).Description()},
		{"parentbased_traceidratio", 0.5, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5)).Description()},
		{"", 1, sdktrace.ParentBased(sdktrace.AlwaysSample()).Description()},
	}
	for _, tt := range tests {
		if got := tracing.Sampler(tt.name, tt.arg).Description(); got != tt.want {
			t.Errorf("Sampler(%q, %v) = %s, want %s", tt.name, tt.arg, got, tt.want)
		}
	}
	for _, name := range config.Samplers {
		if name != "parentbased_always_on" && tracing.Sampler(name, 0.5).Description() == sdktrace.ParentBased(sdktrace.AlwaysSample()).Description() {
			t.Errorf("Sampler(%q) fell back to the default", name)
		}
	}
}

const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestNoExporterStillPropagates: without an exporter, a span started under
// a remote parent keeps its trace id and a fresh root gets one, so the
// context travels; nothing is instrumented.
func TestNoExporterStillPropagates(t *testing.T) {
	t.Parallel()
	tr := tracing.Off()
	if tr.Instrument {
		t.Fatal("no exporter and no processor, yet Instrument is on")
	}
	ctx, span := tr.Tracer("t").Start(tr.WithTraceparent(context.Background(), parent), "child")
	span.End()
	got := tr.Traceparent(ctx)
	if len(got) != len(parent) || got[3:35] != parent[3:35] || got[36:52] == parent[36:52] || got[53:] != "01" {
		t.Fatalf("child of %s is %s, want the same trace, a new span, sampled", parent, got)
	}
	ctx, span = tr.Tracer("t").Start(tr.WithTraceparent(context.Background(), "garbage"), "root")
	span.End()
	if root := tr.Traceparent(ctx); len(root) != len(parent) || root[3:35] == parent[3:35] {
		t.Fatalf("a root span's traceparent is %q, want a fresh valid one", root)
	}
}

// TestProcessorsAndMessageID: a processor receives the spans, with the
// resource's service name and the message id copied from baggage.
func TestProcessorsAndMessageID(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	cfg := config.Config{TracesSampler: "parentbased_always_on", TracesSamplerArg: 1, ResourceAttributes: "deployment.environment=test"}
	tr, err := tracing.New(context.Background(), tracing.Deps{Config: cfg, Program: "api", Processors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if !tr.Instrument {
		t.Fatal("a processor is set, yet Instrument is off")
	}
	_, span := tr.Tracer("t").Start(tracing.WithMessageID(context.Background(), "m-1"), "op", trace.WithSpanKind(trace.SpanKindInternal))
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("recorded %d spans, want 1", len(ended))
	}
	s := ended[0]
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs[tracing.MessageID] != "m-1" {
		t.Errorf("span attributes %v, want %s=m-1", attrs, tracing.MessageID)
	}
	res := map[string]string{}
	for _, kv := range s.Resource().Attributes() {
		res[string(kv.Key)] = kv.Value.String()
	}
	if res["service.name"] != "messaging-api" || res["deployment.environment"] != "test" {
		t.Errorf("resource %v, want service.name messaging-api and deployment.environment test", res)
	}
}

// TestExporterOn: an endpoint turns the exporter and the instrumentation
// on, for both protocols, without connecting at start.
func TestExporterOn(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"grpc", "http/protobuf"} {
		cfg := config.Config{TracesSampler: "always_on", TracesSamplerArg: 1, OTLPEndpoint: "http://127.0.0.1:1", OTLPProtocol: proto}
		tr, err := tracing.New(context.Background(), tracing.Deps{Config: cfg, Program: "worker"})
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if !tr.Instrument {
			t.Errorf("%s: an exporter is configured, yet Instrument is off", proto)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // nothing listens: do not wait to flush
		if err := tr.Shutdown(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("%s: shutdown: %v", proto, err)
		}
	}
}

// BenchmarkAttemptSpanNoExporter is what an attempt's span costs when no
// exporter is configured: extract the stored traceparent, start a span
// with the attempt's attributes, end it.
func BenchmarkAttemptSpanNoExporter(b *testing.B) {
	tr := tracing.Off()
	tracer := tr.Tracer("bench")
	for b.Loop() {
		ctx := tr.WithTraceparent(context.Background(), parent)
		_, span := tracer.Start(ctx, "deliver message", trace.WithAttributes(
			attribute.String(tracing.MessageID, "01a23c0d-fae2-7d8f-87bd-3e5bcc45e313"),
			attribute.Int("messaging.delivery.attempt", 1), attribute.String("messaging.provider", "default")))
		span.SetAttributes(attribute.String("messaging.delivery.outcome", "sent"))
		span.End()
	}
}
