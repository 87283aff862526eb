// Package cache keeps a fast, expiring record of sent messages in Redis, so
// that reads of a recent delivery do not touch PostgreSQL. PostgreSQL stays
// the source of truth: a lost cache entry costs a query, never a message.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix starts every cache key; the full key is KeyPrefix + message id.
const KeyPrefix = "message:sent:"

// ErrMiss is returned when the cache holds no record for an id.
var ErrMiss = errors.New("cache miss")

// Sent is the cached record of one delivery, in the JSON shape other systems
// read: {"message_id": "<remote id>", "sent_at": "<RFC 3339>"}.
type Sent struct {
	ID        string    `json:"-"`
	MessageID string    `json:"message_id"`
	SentAt    time.Time `json:"sent_at"`
}

// Cache writes and reads sent records.
type Cache struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a Cache whose entries expire after ttl.
func New(rdb redis.UniversalClient, ttl time.Duration) *Cache {
	return &Cache{rdb: rdb, ttl: ttl}
}

// Key is the Redis key of a message's record.
func Key(id string) string { return KeyPrefix + id }

// PutSent stores the records in one pipelined round trip.
func (c *Cache) PutSent(ctx context.Context, recs ...Sent) error {
	if len(recs) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range recs {
			r.SentAt = r.SentAt.UTC()
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode sent record: %w", err)
			}
			p.Set(ctx, Key(r.ID), b, c.ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache sent records: %w", err)
	}
	return nil
}

// GetSent reads one record; ErrMiss when there is none.
func (c *Cache) GetSent(ctx context.Context, id string) (Sent, error) {
	b, err := c.rdb.Get(ctx, Key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Sent{}, ErrMiss
	}
	if err != nil {
		return Sent{}, fmt.Errorf("read sent record: %w", err)
	}
	s := Sent{ID: id}
	if err := json.Unmarshal(b, &s); err != nil {
		return Sent{}, fmt.Errorf("decode sent record: %w", err)
	}
	return s, nil
}

// Delete removes the records of ids in one pipelined round trip; a missing
// record is not an error. Each key is its own command, so the keys may live
// on different nodes of a cluster.
func (c *Cache) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, Key(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete sent records: %w", err)
	}
	return nil
}
