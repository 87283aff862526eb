package delivery_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// Decide is the whole of the delivery rules: one row per rule.
func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	started := now.Add(-40 * time.Millisecond)
	policy := delivery.Policy{
		MaxAttempts: 3,
		// Deterministic: attempt hours, or the hint when there is one.
		RetryDelay: func(attempt int, retryAfter time.Duration) time.Duration {
			if retryAfter > 0 {
				return retryAfter
			}
			return time.Duration(attempt) * time.Hour
		},
	}
	claimed := func(attempt int) store.Claimed {
		return store.Claimed{ID: "m-1", Content: "hi", PhoneNumber: "+905551111111", Attempt: attempt}
	}
	httpErr := func(status int, retryable bool, reason string) error {
		return &webhook.Error{Status: status, Retryable: retryable, Reason: reason}
	}
	cases := []struct {
		name           string
		call           delivery.Call
		want           store.Outcome
		gone           bool
		retryable      bool // counts against the circuit breaker
		metric, reason string
	}{
		{
			name: "2xx is sent with the remote id",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Duration: 40 * time.Millisecond,
				Resp: webhook.Response{Status: 202, MessageID: "r-1"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusSent, RemoteID: "r-1",
				SentAt: now.Truncate(time.Microsecond), StartedAt: started, Duration: 40 * time.Millisecond,
				StatusCode: 202, Kind: messaging.KindSent},
			metric: "sent", reason: "ok",
		},
		{
			name: "5xx retries after the policy's delay",
			call: delivery.Call{Claimed: claimed(2), StartedAt: started, Duration: time.Millisecond,
				Err: httpErr(503, true, "unavailable")},
			want: store.Outcome{Claimed: claimed(2), Status: messaging.StatusPending, NextAt: now.Add(2 * time.Hour),
				Error: "webhook answered 503: unavailable", StartedAt: started, Duration: time.Millisecond,
				StatusCode: 503, Kind: messaging.KindRetry},
			retryable: true, metric: "retried", reason: "http_5xx",
		},
		{
			name: "429 honours Retry-After",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started,
				Err: &webhook.Error{Status: 429, Retryable: true, RetryAfter: 3 * time.Second, Reason: "slow down"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusPending, NextAt: now.Add(3 * time.Second),
				Error: "webhook answered 429: slow down", StartedAt: started, StatusCode: 429, Kind: messaging.KindRetry},
			retryable: true, metric: "retried", reason: "http_429",
		},
		{
			name: "timeout retries with no status",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Duration: 10 * time.Second,
				Err: &webhook.Error{Retryable: true, Reason: "timeout"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusPending, NextAt: now.Add(time.Hour),
				Error: "webhook call failed: timeout", StartedAt: started, Duration: 10 * time.Second, Kind: messaging.KindRetry},
			retryable: true, metric: "retried", reason: "timeout",
		},
		{
			name: "an error that is not a webhook.Error retries",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Err: errors.New("boom")},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusPending, NextAt: now.Add(time.Hour),
				Error: "webhook call failed: boom", StartedAt: started, Kind: messaging.KindRetry},
			retryable: true, metric: "retried", reason: "connection",
		},
		{
			name: "a call cut at shutdown is due at once",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Aborted: true,
				Err: &webhook.Error{Retryable: true, Reason: "canceled"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusPending, NextAt: now,
				Error: "webhook call failed: canceled", StartedAt: started, Kind: messaging.KindRetry},
			retryable: true, metric: "retried", reason: "canceled",
		},
		{
			name: "the last attempt's retryable failure fails for good",
			call: delivery.Call{Claimed: claimed(3), StartedAt: started, Err: httpErr(500, true, "oops")},
			want: store.Outcome{Claimed: claimed(3), Status: messaging.StatusFailed,
				Error: "gave up after 3 attempts: webhook answered 500: oops", StartedAt: started, StatusCode: 500, Kind: messaging.KindFailed},
			retryable: true, metric: "failed", reason: "http_5xx",
		},
		{
			name: "410 keeps the message due at once and says gone",
			call: delivery.Call{Claimed: claimed(3), StartedAt: started, Err: httpErr(http.StatusGone, false, "gone")},
			want: store.Outcome{Claimed: claimed(3), Status: messaging.StatusPending, NextAt: now,
				Error: "webhook answered 410: gone", StartedAt: started, StatusCode: 410, Kind: messaging.KindGone},
			gone: true, metric: "retried", reason: "http_410",
		},
		{
			name: "other 4xx fails at once",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Err: httpErr(400, false, "bad phone")},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusFailed,
				Error: "webhook answered 400: bad phone", StartedAt: started, StatusCode: 400, Kind: messaging.KindFailed},
			metric: "failed", reason: "http_4xx",
		},
		{
			name: "3xx fails at once",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started, Err: httpErr(307, false, "redirect")},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusFailed,
				Error: "webhook answered 307: redirect", StartedAt: started, StatusCode: 307, Kind: messaging.KindFailed},
			metric: "failed", reason: "http_3xx",
		},
		{
			name: "an invalid row fails without a call",
			call: delivery.Call{Claimed: claimed(1), StartedAt: started,
				Invalid: &message.InvalidError{Field: "content", Message: "content must not be blank"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusFailed,
				Error: "not sent: invalid message: content: content must not be blank", StartedAt: started, Kind: messaging.KindFailed},
			metric: "failed", reason: "invalid",
		},
		{
			name: "a row for a country not allowed fails without a call",
			call: delivery.Call{Claimed: claimed(1), Invalid: &message.CountryError{Region: "TR"}},
			want: store.Outcome{Claimed: claimed(1), Status: messaging.StatusFailed,
				Error: "country_not_allowed", Kind: messaging.KindFailed},
			metric: "failed", reason: "country_not_allowed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := delivery.Decide(tc.call, now, policy)
			if diff := cmp.Diff(tc.want, d.Outcome); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if d.Gone != tc.gone || d.Metric != tc.metric || d.Reason != tc.reason {
				t.Errorf("gone %v metric %s/%s, want %v %s/%s", d.Gone, d.Metric, d.Reason, tc.gone, tc.metric, tc.reason)
			}
			if d.Retryable != tc.retryable {
				t.Errorf("retryable %v, want %v", d.Retryable, tc.retryable)
			}
		})
	}
}
