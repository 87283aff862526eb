package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestPutAndGetSent(t *testing.T) {
	t.Parallel()
	rdb := testenv.NewRedis(t)
	c := cache.New(rdb, time.Minute)
	ctx := context.Background()
	a, b := testenv.Name("id"), testenv.Name("id")
	t.Cleanup(func() { rdb.Del(context.Background(), cache.Key(a), cache.Key(b)) })
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.FixedZone("TRT", 3*3600))
	if err := c.PutSent(ctx, cache.Sent{ID: a, MessageID: "r-a", SentAt: at}, cache.Sent{ID: b, MessageID: "r-b", SentAt: at}); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.Get(ctx, "message:sent:"+a).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"message_id":"r-a","sent_at":"2026-11-27T07:00:00.123456Z"}`; raw != want {
		t.Fatalf("stored %s, want %s", raw, want)
	}
	if ttl := rdb.TTL(ctx, cache.Key(b)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %s", ttl)
	}
	got, err := c.GetSent(ctx, b)
	if err != nil || got.MessageID != "r-b" || !got.SentAt.Equal(at) || got.ID != b {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := c.GetSent(ctx, testenv.Name("missing")); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("missing key: %v", err)
	}
	if err := c.PutSent(ctx); err != nil {
		t.Fatalf("empty put: %v", err)
	}
}
