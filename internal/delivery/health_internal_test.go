package delivery

import (
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// No call starts while the service drains, after a 410, or while outcomes
// cannot be recorded; only then is the circuit breaker asked.
func TestMayStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		draining, gone, recordFailing bool
		want                          gateAnswer
	}{
		{false, false, false, callGo},
		{false, false, true, callHeld},
		{true, false, false, callStop},
		{true, false, true, callStop},
		{false, true, false, callStop},
		{false, true, true, callStop},
		{true, true, true, callStop},
	}
	for _, tc := range cases {
		if got := mayStart(tc.draining, tc.gone, tc.recordFailing); got != tc.want {
			t.Errorf("mayStart(draining=%v, gone=%v, recordFailing=%v) = %d, want %d", tc.draining, tc.gone, tc.recordFailing, got, tc.want)
		}
	}
}

// The producer claims only while active, with no claim running, and while
// outcomes can be recorded.
func TestMayClaim(t *testing.T) {
	t.Parallel()
	cases := []struct {
		active, claiming, recordFailing, want bool
	}{
		{true, false, false, true},
		{true, false, true, false},
		{true, true, false, false},
		{false, false, false, false},
		{false, true, true, false},
	}
	for _, tc := range cases {
		if got := mayClaim(tc.active, tc.claiming, tc.recordFailing); got != tc.want {
			t.Errorf("mayClaim(active=%v, claiming=%v, recordFailing=%v) = %v, want %v", tc.active, tc.claiming, tc.recordFailing, got, tc.want)
		}
	}
}

// The failing state starts at the first failed write, counts the retries
// after it, and ends at the first write that works, once.
func TestRecordHealth(t *testing.T) {
	t.Parallel()
	var h recordHealth
	if ended, _, _ := h.work(t0); ended {
		t.Fatal("a working write ended a failing state that never started")
	}
	if !h.fail(t0) || h.fail(t0.Add(1)) || h.fail(t0.Add(2)) {
		t.Fatal("only the first failed write starts the failing state")
	}
	failing, worked := h.state()
	if !failing || worked == nil {
		t.Fatal("not failing after a failed write")
	}
	ended, took, retries := h.work(t0.Add(5))
	if !ended || took != 5 || retries != 2 {
		t.Fatalf("work: ended %v after %s and %d retries; want true, 5ns, 2", ended, took, retries)
	}
	select {
	case <-worked:
	default:
		t.Fatal("the producer's channel was not closed when writes worked again")
	}
	if failing, _ := h.state(); failing {
		t.Fatal("still failing after a write worked")
	}
	if ended, _, _ := h.work(t0.Add(6)); ended {
		t.Fatal("a second working write ended the failing state again")
	}
}

// safeOutcome drops the remote id and replaces the error text; an outcome
// with neither has nothing to drop.
func TestSafeOutcome(t *testing.T) {
	t.Parallel()
	o := store.Outcome{Claimed: store.Claimed{ID: "m"}, Status: messaging.StatusSent, RemoteID: "r\x00"}
	if safe, changed := safeOutcome(o); !changed || safe.RemoteID != "" || safe.Error != "" || safe.Status != messaging.StatusSent {
		t.Fatalf("sent: %+v %v", safe, changed)
	}
	o = store.Outcome{Claimed: store.Claimed{ID: "m"}, Status: messaging.StatusFailed, Error: "webhook answered 400: \xc5."}
	if safe, changed := safeOutcome(o); !changed || safe.Error != answerNotStored || safe.Status != messaging.StatusFailed {
		t.Fatalf("failed: %+v %v", safe, changed)
	}
	o = store.Outcome{Claimed: store.Claimed{ID: "m"}, Status: messaging.StatusSent}
	if _, changed := safeOutcome(o); changed {
		t.Fatal("an outcome with no answer text was changed")
	}
}
