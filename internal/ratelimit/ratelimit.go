// Package ratelimit is the per-provider throughput limit every worker
// process shares: GCRA in Redis, by go-redis/redis_rate, one key per
// provider, so that the limit holds across processes.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter asks Redis whether one more call to a provider may start now.
type Limiter struct {
	l      *redis_rate.Limiter
	prefix string
}

// Deps are what a Limiter is built from.
type Deps struct {
	Redis redis.UniversalClient
	// Prefix starts every key (the queue name, so that deployments and
	// tests sharing one Redis keep apart).
	Prefix string
}

// New builds a Limiter.
func New(d Deps) *Limiter {
	return &Limiter{l: redis_rate.NewLimiter(d.Redis), prefix: d.Prefix}
}

// Key is the Redis key of provider's limit.
func (l *Limiter) Key(provider string) string { return "messaging:" + l.prefix + ":rate:" + provider }

// Allow takes one call of provider's limit of rate calls a second with
// burst above it, when there is room. When there is none it takes nothing
// and says how long until there is.
func (l *Limiter) Allow(ctx context.Context, provider string, rate, burst int) (bool, time.Duration, error) {
	res, err := l.l.Allow(ctx, l.Key(provider), redis_rate.Limit{Rate: rate, Burst: burst, Period: time.Second})
	if err != nil {
		return false, 0, fmt.Errorf("rate limit of %s: %w", provider, err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}
