package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The sign-in throttle's limit: at most SignInAttempts attempts per client
// in a window of SignInWindow that starts with the client's first attempt.
// A successful sign-in clears the count, so only failures add up.
const (
	SignInAttempts = 10
	SignInWindow   = 10 * time.Minute
)

// Throttle counts sign-in attempts per client in Redis, so every api
// replica sees the same count and a restart forgets nothing. It is a fixed
// window: the first attempt creates the counter with the window as its
// time to live, every attempt increments it in the same transaction, and
// a success deletes it.
type Throttle struct {
	rdb    redis.UniversalClient
	prefix string
}

// ThrottleDeps is what a Throttle needs.
type ThrottleDeps struct {
	Redis redis.UniversalClient
	// Namespace separates deployments that share one Redis (the api passes
	// QUEUE_NAME, which already names its asynq keys).
	Namespace string
}

// NewThrottle returns the sign-in throttle over d.
func NewThrottle(d ThrottleDeps) *Throttle {
	return &Throttle{rdb: d.Redis, prefix: "signin:attempts:" + d.Namespace + ":"}
}

// Attempt counts one sign-in attempt by client. It answers false, with the
// time until the window ends, when the client has already made
// SignInAttempts attempts in the window: the attempt must then be refused
// without looking at the key.
func (t *Throttle) Attempt(ctx context.Context, client string) (bool, time.Duration, error) {
	key := t.prefix + client
	var (
		incr *redis.IntCmd
		ttl  *redis.DurationCmd
	)
	_, err := t.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, 0, SignInWindow)
		incr = p.Incr(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("sign-in throttle: %w", err)
	}
	if incr.Val() <= SignInAttempts {
		return true, 0, nil
	}
	wait := ttl.Val()
	if wait <= 0 || wait > SignInWindow {
		wait = SignInWindow
	}
	return false, wait, nil
}

// Reset forgets client's attempts: it signed in.
func (t *Throttle) Reset(ctx context.Context, client string) error {
	if err := t.rdb.Del(ctx, t.prefix+client).Err(); err != nil {
		return fmt.Errorf("sign-in throttle: reset: %w", err)
	}
	return nil
}
