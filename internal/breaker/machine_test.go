package breaker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/breaker"
)

var cfg = breaker.Settings{Window: 30 * time.Second, MinCalls: 20, FailureRate: 0.5, Cooldown: 30 * time.Second, ProbeTimeout: 20 * time.Second}

// step is one event of a scenario, at an offset of the fake clock.
type step struct {
	at      time.Duration
	report  *breaker.Tally // a batch reported
	claim   bool           // a process tries to claim the probe
	claimed bool           // ... and whether it wins
	want    breaker.Mode
	verdict string // "allow", "wait", "probe" (checked after the event)
	trips   int64
	// outage, when set, is the outage start the transition must carry,
	// as an offset of the fake clock; unset, it must carry none.
	outage *time.Duration
}

func at(d time.Duration) *time.Duration { return &d }

func tally(calls, failures int) *breaker.Tally {
	return &breaker.Tally{Calls: calls, Failures: failures, LastError: "HTTP 500"}
}

func probe(p breaker.Probe) *breaker.Tally { return &breaker.Tally{Probe: p, LastError: "HTTP 503"} }

func TestStateMachine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps []step
	}{
		{"too few calls never trip", []step{
			{at: 0, report: tally(19, 19), want: breaker.Closed, verdict: "allow"},
		}},
		{"min calls at the rate trips", []step{
			{at: 0, report: tally(10, 5), want: breaker.Closed, verdict: "allow"},
			{at: time.Second, report: tally(10, 5), want: breaker.Open, verdict: "wait", trips: 1},
		}},
		{"below the rate never trips", []step{
			{at: 0, report: tally(100, 49), want: breaker.Closed, verdict: "allow"},
		}},
		{"4xx counts as a call, not a failure", []step{
			// 100 calls, 30 of them 400s (not failures) and 10 5xx.
			{at: 0, report: tally(100, 10), want: breaker.Closed, verdict: "allow"},
		}},
		{"calls older than the window do not count", []step{
			{at: 0, report: tally(15, 15), want: breaker.Closed},
			{at: 61 * time.Second, report: tally(15, 15), want: breaker.Closed, verdict: "allow"},
		}},
		{"the previous bucket counts by its share in the window", []step{
			{at: 0, report: tally(20, 0), want: breaker.Closed},
			{at: 29 * time.Second, report: tally(10, 10), want: breaker.Closed},
			// at 45 s: half of the first bucket (30 calls, 10 failures)
			// is still inside: 15 calls, 5 failures, plus 10 of 10 now.
			{at: 45 * time.Second, report: tally(10, 10), want: breaker.Open, trips: 1},
		}},
		{"open: no call, no probe before the cooldown", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 29 * time.Second, claim: true, claimed: false, want: breaker.Open, verdict: "wait"},
			{at: 29 * time.Second, report: tally(5, 5), want: breaker.Open, trips: 1}, // late results of calls in flight
		}},
		{"after the cooldown exactly one probe", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 30 * time.Second, want: breaker.Open, verdict: "probe"},
			{at: 30 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen, verdict: "wait"},
			{at: 31 * time.Second, claim: true, claimed: false, want: breaker.HalfOpen, verdict: "wait"},
			{at: 32 * time.Second, report: tally(3, 3), want: breaker.HalfOpen}, // not the probe: ignored
		}},
		{"a probe success closes with a fresh window", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 30 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 31 * time.Second, report: probe(breaker.ProbeSucceeded), want: breaker.Closed, verdict: "allow", outage: at(-30 * time.Second)},
			{at: 32 * time.Second, report: tally(19, 19), want: breaker.Closed, verdict: "allow"},
		}},
		{"the outage dates from the trip minus the window, through failed probes", []step{
			{at: 10 * time.Second, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 40 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 41 * time.Second, report: probe(breaker.ProbeFailed), want: breaker.Open},
			{at: 71 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 90 * time.Second, claim: true, claimed: false, want: breaker.HalfOpen},
			{at: 91 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen}, // the probe never reported
			{at: 92 * time.Second, report: probe(breaker.ProbeSucceeded), want: breaker.Closed, outage: at(10*time.Second - cfg.Window)},
			{at: 93 * time.Second, report: tally(1, 0), want: breaker.Closed},
		}},
		{"a probe failure opens for another cooldown", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 30 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 31 * time.Second, report: probe(breaker.ProbeFailed), want: breaker.Open, verdict: "wait", trips: 1},
			{at: 60 * time.Second, claim: true, claimed: false, want: breaker.Open},
			{at: 61 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
		}},
		{"a probe that never reports is claimed again after its timeout", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 30 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 49 * time.Second, claim: true, claimed: false, want: breaker.HalfOpen, verdict: "wait"},
			{at: 50 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen, verdict: "wait"},
		}},
		{"a probe result while open is ignored", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 5 * time.Second, report: probe(breaker.ProbeSucceeded), want: breaker.Open},
		}},
		{"trips count each closed to open", []step{
			{at: 0, report: tally(20, 20), want: breaker.Open, trips: 1},
			{at: 30 * time.Second, claim: true, claimed: true, want: breaker.HalfOpen},
			{at: 31 * time.Second, report: probe(breaker.ProbeSucceeded), want: breaker.Closed, outage: at(-30 * time.Second)},
			{at: 40 * time.Second, report: tally(40, 20), want: breaker.Open, trips: 2},
		}},
	}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := breaker.Initial(t0)
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				if st.report != nil {
					var tr breaker.Transition
					prev := s.Mode
					s, tr = s.Report(now, *st.report, cfg)
					if tr.Changed() != (prev != s.Mode) || (tr.Changed() && (tr.From != prev || tr.To != s.Mode || tr.Reason == "")) {
						t.Fatalf("step %d: transition %+v from %s to %s", i, tr, prev, s.Mode)
					}
					switch {
					case st.outage == nil && !tr.OutageStart.IsZero():
						t.Fatalf("step %d: transition %+v dates an outage", i, tr)
					case st.outage != nil && !tr.OutageStart.Equal(t0.Add(*st.outage)):
						t.Fatalf("step %d: outage start %s, want %s", i, tr.OutageStart, t0.Add(*st.outage))
					}
				}
				if st.claim {
					var ok bool
					s, ok = s.ClaimProbe(now, cfg)
					if ok != st.claimed {
						t.Fatalf("step %d: claimed %t, want %t (state %+v)", i, ok, st.claimed, s)
					}
				}
				if s.Mode != st.want {
					t.Fatalf("step %d: mode %s, want %s (state %+v)", i, s.Mode, st.want, s)
				}
				if st.trips != 0 && s.Trips != st.trips {
					t.Fatalf("step %d: trips %d, want %d", i, s.Trips, st.trips)
				}
				if st.verdict != "" {
					v := s.Verdict(now, cfg)
					got := "wait"
					if v.Allow {
						got = "allow"
					} else if v.Probe {
						got = "probe"
					} else if !v.Until.After(now) {
						t.Fatalf("step %d: wait until %s, not after now", i, v.Until)
					}
					if got != st.verdict {
						t.Fatalf("step %d: verdict %s, want %s (%+v)", i, got, st.verdict, v)
					}
				}
			}
		})
	}
}

func TestTripReasonAndRate(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, tr := breaker.Initial(t0).Report(t0, breaker.Tally{Calls: 24, Failures: 18, LastError: "HTTP 503"}, cfg)
	if s.Mode != breaker.Open || !strings.Contains(tr.Reason, "18 of 24 calls") || !strings.Contains(tr.Reason, "HTTP 503") {
		t.Fatalf("reason %q, state %+v", tr.Reason, s)
	}
	if s.FailureRate != 0.75 {
		t.Fatalf("failure rate %v", s.FailureRate)
	}
	if !s.Since.Equal(t0) {
		t.Fatalf("since %s", s.Since)
	}
}

func TestTallyAdd(t *testing.T) {
	t.Parallel()
	a := breaker.Tally{Calls: 2, Failures: 1, LastError: "a"}.Add(breaker.Tally{Calls: 3, Probe: breaker.ProbeFailed})
	if a.Calls != 5 || a.Failures != 1 || a.Probe != breaker.ProbeFailed || a.LastError != "a" || a.Empty() {
		t.Fatalf("%+v", a)
	}
	if !(breaker.Tally{}).Empty() {
		t.Fatal("zero tally not empty")
	}
}
