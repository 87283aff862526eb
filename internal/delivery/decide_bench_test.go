package delivery_test

import (
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// BenchmarkDecide times the delivery rules for each kind of answer a call
// gets. Decide runs once per call in every worker, between the call and
// the record, so it must stay far below a call's cost.
func BenchmarkDecide(b *testing.B) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	policy := delivery.Policy{
		MaxAttempts: 5,
		RetryDelay:  delivery.ExponentialBackoff(time.Second, time.Minute),
	}
	claimed := store.Claimed{ID: "m-1", Content: "hi", PhoneNumber: "+905551111111", Attempt: 2}
	call := func(resp webhook.Response, err error) delivery.Call {
		return delivery.Call{Claimed: claimed, StartedAt: now.Add(-40 * time.Millisecond),
			Duration: 40 * time.Millisecond, Resp: resp, Err: err}
	}
	cases := []struct {
		name, metric string
		call         delivery.Call
	}{
		{"sent", "sent", call(webhook.Response{Status: 202, MessageID: "r-1"}, nil)},
		{"retry 503", "retried", call(webhook.Response{}, &webhook.Error{Status: 503, Retryable: true, Reason: "unavailable"})},
		{"retry connection error", "retried", call(webhook.Response{}, errors.New("connection refused"))},
		{"failed 400", "failed", call(webhook.Response{}, &webhook.Error{Status: 400, Reason: "bad number"})},
		{"gone 410", "retried", call(webhook.Response{}, &webhook.Error{Status: 410, Reason: "gone"})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The case must decide as named, or the timing is of another rule.
			if d := delivery.Decide(c.call, now, policy); d.Metric != c.metric {
				b.Fatalf("Decide(%s) metric = %q, want %q", c.name, d.Metric, c.metric)
			}
			b.ReportAllocs()
			for b.Loop() {
				delivery.Decide(c.call, now, policy)
			}
		})
	}
}
