// Package wake tells every worker process that a tick started, over Redis
// pub/sub. Each tick's dispatch task reaches one worker; without a word from
// it the others would start claiming only when a task of their own arrives,
// up to a few ticks later. A message lost on the way costs that delay and
// nothing else: it only hastens what the dispatch tasks do anyway.
package wake

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// publishTimeout bounds one announcement, so a Redis outage never holds a
// dispatch task.
const publishTimeout = time.Second

// Deps are a Channel's dependencies.
type Deps struct {
	Redis redis.UniversalClient
	// Queue is the asynq queue the workers serve: processes of another
	// queue (another deployment on the same Redis) never hear it.
	Queue string
}

// Channel announces ticks and listens for them.
type Channel struct {
	rdb  redis.UniversalClient
	name string
}

// New returns the channel of d.Queue.
func New(d Deps) *Channel {
	return &Channel{rdb: d.Redis, name: "messaging:tick:" + d.Queue}
}

// Name is the Redis channel's name.
func (c *Channel) Name() string { return c.name }

// TickStarted tells every listening worker that a tick refilled the budget.
func (c *Channel) TickStarted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := c.rdb.Publish(ctx, c.name, "tick").Err(); err != nil {
		return fmt.Errorf("announce tick: %w", err)
	}
	return nil
}

// Listen calls wake for every tick announced until ctx ends. go-redis
// subscribes again by itself after a lost connection; ticks announced
// meanwhile are missed, and the dispatch tasks still wake this worker.
func (c *Channel) Listen(ctx context.Context, wake func()) {
	sub := c.rdb.Subscribe(ctx, c.name)
	defer func() { _ = sub.Close() }()
	msgs := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-msgs:
			if !ok {
				return
			}
			wake()
		}
	}
}
