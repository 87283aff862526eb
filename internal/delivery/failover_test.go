package delivery_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/delivery"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// TestDecideFailover: the rules of a chain of providers, one row per rule.
func TestDecideFailover(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	policy := delivery.Policy{
		MaxAttempts: 6,
		// Deterministic: step hours.
		RetryDelay: func(step int, _ time.Duration) time.Duration { return time.Duration(step) * time.Hour },
	}
	claimed := func(attempt int) store.Claimed {
		return store.Claimed{ID: "m-1", Content: "hi", PhoneNumber: "+905551111111", Attempt: attempt}
	}
	fail := &webhook.Error{Status: http.StatusInternalServerError, Retryable: true, Reason: "x"}
	bad := &webhook.Error{Status: http.StatusBadRequest, Reason: "bad number"}
	gone := &webhook.Error{Status: http.StatusGone, Reason: "gone"}
	cases := []struct {
		name      string
		call      delivery.Call
		status    string
		nextAt    time.Time
		nextRound []string
		provider  string
	}{
		{"sent names its provider and ends the round",
			delivery.Call{Claimed: claimed(2), StartedAt: now, Provider: "backup", Round: []string{"primary"}, Chain: 2},
			messaging.StatusSent, time.Time{}, nil, "backup"},
		{"a retryable failure with a usable next provider fails over at once",
			delivery.Call{Claimed: claimed(1), StartedAt: now, Err: fail, Provider: "primary", Chain: 2, Failover: true},
			messaging.StatusPending, now, []string{"primary"}, "primary"},
		{"the last provider of the round fails: the schedule's step, a new round",
			delivery.Call{Claimed: claimed(2), StartedAt: now, Err: fail, Provider: "backup", Round: []string{"primary"}, Chain: 2},
			messaging.StatusPending, now.Add(time.Hour), nil, "backup"},
		{"the second round's end takes the schedule's second step",
			delivery.Call{Claimed: claimed(4), StartedAt: now, Err: fail, Provider: "backup", Round: []string{"primary"}, Chain: 2},
			messaging.StatusPending, now.Add(2 * time.Hour), nil, "backup"},
		{"no other usable provider: the schedule's step at once",
			delivery.Call{Claimed: claimed(1), StartedAt: now, Err: fail, Provider: "primary", Chain: 2},
			messaging.StatusPending, now.Add(time.Hour), nil, "primary"},
		{"one provider: the attempt is the step, as always",
			delivery.Call{Claimed: claimed(3), StartedAt: now, Err: fail, Provider: "default", Chain: 1},
			messaging.StatusPending, now.Add(3 * time.Hour), nil, "default"},
		{"a non-retryable 4xx fails at once, whatever the chain",
			delivery.Call{Claimed: claimed(1), StartedAt: now, Err: bad, Provider: "primary", Chain: 2, Failover: true},
			messaging.StatusFailed, time.Time{}, nil, "primary"},
		{"MAX_ATTEMPTS still bounds the calls",
			delivery.Call{Claimed: claimed(6), StartedAt: now, Err: fail, Provider: "primary", Chain: 2, Failover: true},
			messaging.StatusFailed, time.Time{}, nil, "primary"},
		{"a 410 with several providers moves on to the next one",
			delivery.Call{Claimed: claimed(1), StartedAt: now, Err: gone, Provider: "primary", Chain: 2},
			messaging.StatusPending, now, []string{"primary"}, "primary"},
		{"a call cut at shutdown keeps the round, due at once",
			delivery.Call{Claimed: claimed(1), StartedAt: now, Err: fail, Aborted: true, Provider: "backup", Round: []string{"primary"}, Chain: 2},
			messaging.StatusPending, now, []string{"primary"}, "backup"},
	}
	for _, tc := range cases {
		d := delivery.Decide(tc.call, now, policy)
		o := d.Outcome
		if o.Status != tc.status || !o.NextAt.Equal(tc.nextAt) || !slices.Equal(o.NextRound, tc.nextRound) || o.Provider != tc.provider {
			t.Errorf("%s: got status %s next %s round %v provider %q; want %s %s %v %q",
				tc.name, o.Status, o.NextAt, o.NextRound, o.Provider, tc.status, tc.nextAt, tc.nextRound, tc.provider)
		}
	}
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		chain, round, want []string
	}{
		{[]string{"a", "b"}, nil, []string{"a", "b"}},
		{[]string{"a", "b"}, []string{"a"}, []string{"b", "a"}},
		{[]string{"a", "b", "c"}, []string{"b"}, []string{"a", "c", "b"}},
		{[]string{"a", "b"}, []string{"a", "b"}, []string{"a", "b"}},
		{[]string{"b"}, []string{"a"}, []string{"b"}},
	}
	for _, tc := range cases {
		if got := delivery.Candidates(tc.chain, tc.round); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%v, %v) = %v, want %v", tc.chain, tc.round, got, tc.want)
		}
	}
}
