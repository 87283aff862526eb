package delivery

// Several providers: each message's chain (ROUTES) is tried in order,
// skipping providers whose breaker is not closed or that a 410 disabled,
// and those that failed in the message's current round; a provider's rate
// limit, shared by every worker, is taken right before its call.

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/store"
)

// Provider is one receiving system as the engine sees it.
type Provider struct {
	Name   string
	Sender Sender
	// Gate is its circuit breaker, shared by every worker; nil: none.
	Gate Gate
	// Rate is the most calls a second over every worker (0: no limit);
	// Burst how many may go out at once above it.
	Rate, Burst int
	// Disabler, when set, disables the provider for every worker after a
	// 410 (with several providers; one provider pauses sending instead).
	Disabler Disabler
}

// Disabler marks a provider disabled for every worker.
type Disabler interface {
	Disable(ctx context.Context, reason string) error
}

// Limiter takes one call of a provider's rate limit, shared by every
// worker; when there is no room it takes nothing and says how long until
// there is.
type Limiter interface {
	Allow(ctx context.Context, provider string, rate, burst int) (bool, time.Duration, error)
}

// Readier is the optional part of a Gate that failover asks of the
// providers after the one that failed: could a call start now, without
// taking a probe. A Gate without it is taken as ready.
type Readier interface {
	Ready(ctx context.Context) bool
}

var (
	_ Disabler = (*store.ProviderBreaker)(nil)
)

// provider is a Provider with this process's own state.
type provider struct {
	Provider
	// offUntil, in Unix nanoseconds, is until when this process treats
	// the provider as disabled after reading a 410 itself: the shared
	// row says so once the completer wrote it and the breaker's view was
	// refreshed.
	offUntil atomic.Int64
}

// localOff is how long a 410 read here keeps the provider off before the
// shared row (read again every second) takes over.
const localOff = 3 * time.Second

func (p *provider) off(now time.Time) bool { return now.UnixNano() < p.offUntil.Load() }

// ready tells whether a call to p could start now, without taking a probe.
func (p *provider) ready(ctx context.Context, now time.Time) bool {
	if p.off(now) {
		return false
	}
	if r, ok := p.Gate.(Readier); ok {
		return r.Ready(ctx)
	}
	return true
}

// Candidates is the order in which a message's chain is tried: the
// providers that have not failed in its current round, in chain order,
// then, for a new round, those that have. It is pure.
func Candidates(chain, roundFailed []string) []string {
	out := make([]string, 0, len(chain))
	for _, n := range chain {
		if !slices.Contains(roundFailed, n) {
			out = append(out, n)
		}
	}
	for _, n := range chain {
		if slices.Contains(roundFailed, n) {
			out = append(out, n)
		}
	}
	return out
}

// Rate-limit waits: an executor waits for its provider's limit at most
// maxRateStep at a time and maxRateWait in all; a row that would wait
// longer is handed back uncharged, due when the limit has room, and the
// slot takes the next row.
// The half-open probe this worker won waits up to maxProbeRateWait: handed
// back, it would be lost until the probe timeout.
const (
	maxRateStep      = 100 * time.Millisecond
	maxRateWait      = 250 * time.Millisecond
	maxProbeRateWait = time.Second
)

// noProviderWait is how long a row waits, uncharged, when no provider of
// its chain is usable while others are: its providers' breakers are read
// again every second.
const noProviderWait = time.Second

// pick is the provider a row goes to, or why it goes nowhere now.
type pick struct {
	p     *provider
	probe bool
	// round is the row's current round: nil when this call starts a new
	// one (every provider of the chain failed in the last).
	round []string
	// refused: no provider is usable at all (the single provider's
	// breaker is open): the producer hands back the whole queue and waits
	// for the breakers. retryAt: this row waits alone, uncharged.
	refused bool
	retryAt time.Time
}

// chain is the chain of providers for the E.164 number to.
func (s *Service) chain(to string) []string {
	if len(s.providers) == 1 {
		return []string{s.providers[0].Name}
	}
	return s.router(to)
}

// choose picks the provider for row c: the first candidate whose breaker
// allows a call, then takes a call of its rate limit.
func (s *Service) choose(ctx context.Context, c store.Claimed, chain []string) pick {
	now := time.Now()
	for _, name := range Candidates(chain, c.RoundFailed) {
		p := s.byName[name]
		if p == nil || p.off(now) {
			continue
		}
		probe := false
		if p.Gate != nil {
			ok, pr := p.Gate.Allow(ctx)
			if !ok {
				continue
			}
			probe = pr
		}
		if wait, ok := s.takeRate(ctx, p, probe); !ok {
			return pick{retryAt: time.Now().Add(wait)}
		}
		round := c.RoundFailed
		if slices.Contains(round, name) {
			round = nil // every provider failed in the last round: a new one
		}
		return pick{p: p, probe: probe, round: round}
	}
	if len(s.providers) == 1 {
		return pick{refused: true}
	}
	for _, p := range s.providers {
		if p.ready(ctx, now) {
			return pick{retryAt: now.Add(noProviderWait)}
		}
	}
	return pick{refused: true}
}

// takeRate takes one call of p's rate limit, waiting for it a short moment
// at most (longer for the probe); else it reports how long until there is
// room.
func (s *Service) takeRate(ctx context.Context, p *provider, probe bool) (time.Duration, bool) {
	if p.Rate <= 0 || s.limiter == nil {
		return 0, true
	}
	step, most := maxRateStep, maxRateWait
	if probe {
		step, most = maxProbeRateWait, maxProbeRateWait
	}
	var waited time.Duration
	for {
		ok, after, err := s.limiter.Allow(ctx, p.Name, p.Rate, max(p.Burst, 1))
		if err != nil {
			s.log.Warn("rate limit unreadable: the message waits", "provider", p.Name, "err", err)
			return noProviderWait, false
		}
		if ok {
			return 0, true
		}
		after = max(after, time.Millisecond)
		if after > step || waited+after > most {
			return after, false
		}
		t := time.NewTimer(after)
		select {
		case <-t.C:
		case <-s.draining:
			t.Stop()
			return 0, false
		case <-ctx.Done():
			t.Stop()
			return 0, false
		}
		waited += after
	}
}

// failover tells whether, after provider failed for a row with chain and
// round, another provider of the chain that has not failed in the round
// could take the next attempt now.
func (s *Service) failover(ctx context.Context, chain, round []string, failed string) bool {
	now := time.Now()
	for _, n := range chain {
		if n == failed || slices.Contains(round, n) {
			continue
		}
		if p := s.byName[n]; p != nil && p.ready(ctx, now) {
			return true
		}
	}
	return false
}
