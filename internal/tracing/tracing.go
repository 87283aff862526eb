// Package tracing builds the OpenTelemetry tracer provider every program
// uses, from the OTEL_* settings config read: a W3C Trace Context
// propagator, the sampler OTEL_TRACES_SAMPLER names, the resource from
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, and an OTLP exporter
// (grpc or http/protobuf) when OTEL_EXPORTER_OTLP_ENDPOINT is set.
//
// Without an endpoint the provider has no exporter: spans are still
// started, so every message gets a trace id and the webhook call carries
// the create's trace, but they are dropped when they end, and PostgreSQL
// and Redis are not instrumented at all (Instrument is false).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/contrib/processors/baggagecopy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/config"
)

// MessageID is the attribute that names a message on every span about it.
const MessageID = "messaging.message.id"

// Deps are what New builds the provider from.
type Deps struct {
	Config config.Config
	// Program names the process ("api", "worker", "scheduler"); the
	// service name is messaging-<Program> unless OTEL_SERVICE_NAME is set.
	Program string
	// Processors receive every span as well as the exporter; with any,
	// PostgreSQL and Redis are instrumented as when exporting. An
	// in-process collector (the SDK's span recorder) goes here.
	Processors []sdktrace.SpanProcessor
}

// Tracing is one program's tracer provider and propagator.
type Tracing struct {
	// Provider makes every span of the program.
	Provider trace.TracerProvider
	// Propagator reads and writes the W3C traceparent header.
	Propagator propagation.TextMapPropagator
	// Instrument says spans go somewhere (an exporter or a processor), so
	// PostgreSQL statements and Redis commands are worth a span each.
	Instrument bool
	sdk        *sdktrace.TracerProvider
}

// New builds the provider. It connects to nothing: the exporter dials
// lazily and drops spans it cannot send.
func New(ctx context.Context, d Deps) (*Tracing, error) {
	c := d.Config
	attrs, err := config.ParseResourceAttributes(c.ResourceAttributes)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	kvs := make([]attribute.KeyValue, 0, len(attrs)+1)
	for _, a := range attrs {
		if a.Key != "service.name" {
			kvs = append(kvs, attribute.String(a.Key, a.Value))
		}
	}
	// OTEL_SERVICE_NAME wins over a service.name in the attributes, as
	// the specification says.
	name := c.ServiceNameOr(serviceName(attrs, "messaging-"+d.Program))
	kvs = append(kvs, attribute.String("service.name", name))
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(kvs...)),
		sdktrace.WithSampler(Sampler(c.TracesSampler, c.TracesSamplerArg)),
		// Copies the message id a caller put in the context's baggage onto
		// every span started under it (the create's INSERT, say), so each
		// is tagged with it. The baggage itself is never sent: the
		// propagator writes traceparent only.
		sdktrace.WithSpanProcessor(baggagecopy.NewSpanProcessor(func(m baggage.Member) bool { return m.Key() == MessageID })),
	}
	instrument := len(d.Processors) > 0
	for _, p := range d.Processors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	if c.OTLPEndpoint != "" {
		exp, err := exporter(ctx, c.OTLPProtocol, c.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		instrument = true
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{Provider: tp, Propagator: propagation.TraceContext{}, Instrument: instrument, sdk: tp}, nil
}

// Off is a provider with no exporter and the default sampler, for
// connections built without a Tracing: spans carry trace ids and go
// nowhere.
func Off() *Tracing {
	t, err := New(context.Background(), Deps{Config: config.Config{TracesSampler: "parentbased_always_on", TracesSamplerArg: 1}})
	if err != nil {
		panic(err) // no endpoint and no attributes: nothing can fail
	}
	return t
}

// Shutdown flushes the spans not yet exported, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Tracer is the named tracer of Provider.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// Traceparent is ctx's span context as a W3C traceparent value, empty when
// ctx carries no valid one.
func (t *Tracing) Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	t.Propagator.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent is ctx with the remote span context tp names as parent;
// ctx unchanged when tp is empty or not a valid traceparent.
func (t *Tracing) WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return t.Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// WithMessageID is ctx with the message id in its baggage, which the
// provider copies onto every span started under ctx.
func WithMessageID(ctx context.Context, id string) context.Context {
	m, err := baggage.NewMemberRaw(MessageID, id)
	if err != nil {
		return ctx
	}
	b, err := baggage.FromContext(ctx).SetMember(m)
	if err != nil {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, b)
}

func serviceName(attrs []config.Attribute, fallback string) string {
	for _, a := range attrs {
		if a.Key == "service.name" && a.Value != "" {
			return a.Value
		}
	}
	return fallback
}

// exporter is the OTLP span exporter for protocol ("grpc" or
// "http/protobuf", as config validated) to endpoint. Over HTTP, traces go
// to the endpoint's /v1/traces, as the specification appends to
// OTEL_EXPORTER_OTLP_ENDPOINT.
func exporter(ctx context.Context, protocol, endpoint string) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	default:
		err = errors.New("unknown protocol " + protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return exp, nil
}

// Sampler is the sampler OTEL_TRACES_SAMPLER names, with arg as the
// ratio of the traceidratio ones; anything else is the specification's
// default, parentbased_always_on.
func Sampler(name string, arg float64) sdktrace.Sampler {
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(arg)
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(arg))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}
