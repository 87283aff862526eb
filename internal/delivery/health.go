package delivery

import (
	"sync"
	"time"
)

// A worker never starts a call whose outcome it cannot record. While the
// statement that records outcomes fails, the completer keeps the outcomes
// and writes them again with a bounded backoff (completer.go), the producer
// claims nothing and hands no queued row to an executor, and an executor
// that already holds a row hands it back to the producer. The first write
// that works ends it: the producer hands back what it queued meanwhile (its
// lease may have run short) and claims afresh.

// mayStart decides whether a call may start, before the circuit breaker is
// asked: none once the service drains or a 410 was read, none while
// outcomes cannot be recorded, else the breaker decides.
func mayStart(draining, gone, recordFailing bool) gateAnswer {
	switch {
	case draining || gone:
		return callStop
	case recordFailing:
		return callHeld
	}
	return callGo
}

// mayClaim decides whether the producer may start a claim: it is active
// (a tick's budget may be left), no claim runs, and outcomes can be
// recorded.
func mayClaim(active, claiming, recordFailing bool) bool {
	return active && !claiming && !recordFailing
}

// recordHealth is whether this process can record outcomes. The completer
// changes it; the producer and the executors read it before each claim
// and each call; /readyz reports it.
type recordHealth struct {
	mu      sync.Mutex
	failing bool
	since   time.Time
	retries int
	// worked is closed when a write works again after failing; a new
	// one is made when writes start failing.
	worked chan struct{}
}

// state tells whether records fail and, while they do, the channel closed
// when they work again.
func (h *recordHealth) state() (failing bool, worked <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failing, h.worked
}

// fail notes a failed write; first says it started the failing state.
func (h *recordHealth) fail(now time.Time) (first bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing {
		h.retries++
		return false
	}
	h.failing, h.since, h.retries, h.worked = true, now, 0, make(chan struct{})
	return true
}

// work notes a write that worked; ended says it ended a failing state,
// which lasted failedFor over retries further failed writes.
func (h *recordHealth) work(now time.Time) (ended bool, failedFor time.Duration, retries int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failing {
		return false, 0, 0
	}
	h.failing = false
	close(h.worked)
	return true, now.Sub(h.since), h.retries
}

// RecordHealth is whether this worker can record outcomes, for /readyz.
type RecordHealth struct {
	// Failing is set while the record statement fails: no call starts.
	Failing bool
	// Since is when it started failing.
	Since time.Time
}

// RecordHealth tells whether outcomes can be recorded now.
func (s *Service) RecordHealth() RecordHealth {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if !s.health.failing {
		return RecordHealth{}
	}
	return RecordHealth{Failing: true, Since: s.health.since}
}

func (s *Service) recordFailing() bool {
	failing, _ := s.health.state()
	return failing
}

// recordFailed notes one failed record statement: it counts it, and the
// first of a run stops new calls and says so once.
func (s *Service) recordFailed(err error) {
	s.m.RecordFailure()
	if !s.health.fail(time.Now()) {
		return
	}
	s.m.RecordFailing(true)
	s.log.Error("recording outcomes fails; no new calls until it works", "err", err)
	emit(s.signals.RecordFailed, struct{}{})
}

// recordWorked notes a record statement that worked: after failures, calls
// resume, and it says so once.
func (s *Service) recordWorked() {
	ended, took, retries := s.health.work(time.Now())
	if !ended {
		return
	}
	s.m.RecordFailing(false)
	s.log.Info("recording outcomes works again; calls resume", "failed_for", took.Round(time.Millisecond).String(), "retries", retries)
	emit(s.signals.RecordRecovered, struct{}{})
}
