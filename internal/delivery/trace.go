package delivery

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// Attributes of an attempt's span, beside tracing.MessageID.
const (
	attrAttempt  = "messaging.delivery.attempt"
	attrProvider = "messaging.provider"
	attrOutcome  = "messaging.delivery.outcome"
	attrReason   = "messaging.delivery.reason"
)

// startAttempt starts the span of one delivery attempt, in the trace the
// message's create stored (a row without one starts a fresh trace), under
// the context calls run in; the webhook call carries it.
func (s *Service) startAttempt(j job, provider string) (context.Context, trace.Span) {
	ctx := s.traces.WithTraceparent(s.callCtx, j.c.Traceparent)
	return s.tracer.Start(ctx, "deliver message",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String(tracing.MessageID, j.c.ID),
			attribute.Int(attrAttempt, j.c.Attempt),
			attribute.String(attrProvider, provider),
		))
}

// endAttempt ends an attempt's span with what the rules decided.
func endAttempt(span trace.Span, d Decision) {
	span.SetAttributes(attribute.String(attrOutcome, d.Metric), attribute.String(attrReason, d.Reason))
	if d.Outcome.Status != messaging.StatusSent {
		span.SetStatus(codes.Error, d.Metric)
	}
	span.End()
}
