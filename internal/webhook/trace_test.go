package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

// TestSendCarriesTraceparent: the call carries the W3C traceparent of
// Send's context when a propagator is set, and none without one.
func TestSendCarriesTraceparent(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	prop := propagation.TraceContext{}
	ctx := prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("the test's traceparent did not parse")
	}
	traced := newClient(t, srv.URL, func(o *webhook.Options) { o.Propagator = prop })
	if _, err := traced.Send(ctx, webhook.Request{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if h := received(t, got); h != tp {
		t.Errorf("traceparent %q, want %q", h, tp)
	}
	if _, err := newClient(t, srv.URL).Send(ctx, webhook.Request{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if h := received(t, got); h != "" {
		t.Errorf("without a propagator the call carried traceparent %q", h)
	}
}

// received is the header the handler saw; Send returns only after the
// handler answered, so it is there already.
func received(t *testing.T, got chan string) string {
	t.Helper()
	select {
	case h := <-got:
		return h
	default:
		t.Fatal("the receiver saw no call")
		return ""
	}
}
