package wake_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/testenv"
	"github.com/messaging-server/messaging-server/internal/wake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A tick announced on one queue's channel wakes that queue's listeners,
// and never those of another queue on the same Redis.
func TestTickWakesListenersOfItsQueue(t *testing.T) {
	rdb := testenv.NewRedis(t)
	a := wake.New(wake.Deps{Redis: rdb, Queue: testenv.Name("wake_a")})
	b := wake.New(wake.Deps{Redis: rdb, Queue: testenv.Name("wake_b")})
	ctx, cancel := context.WithCancel(context.Background())
	var heardA, heardB atomic.Int64
	done := make(chan struct{}, 2)
	go func() { a.Listen(ctx, func() { heardA.Add(1) }); done <- struct{}{} }()
	go func() { b.Listen(ctx, func() { heardB.Add(1) }); done <- struct{}{} }()
	defer func() {
		cancel()
		for range 2 {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Listen did not return after its context ended")
			}
		}
	}()
	// Publish only once both subscriptions are in place.
	testenv.Eventually(t, 5*time.Second, "both listeners subscribed", func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), a.Name(), b.Name()).Result()
		return err == nil && n[a.Name()] == 1 && n[b.Name()] == 1
	})
	if err := a.TickStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "queue a's listener woken", func() bool { return heardA.Load() == 1 })
	// b's connection delivers its messages in order: had a's tick reached
	// it, b would count 2 once its own arrives.
	if err := b.TickStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "queue b's listener woken", func() bool { return heardB.Load() >= 1 })
	if n := heardB.Load(); n != 1 {
		t.Fatalf("queue b's listener woke %d times for its one tick", n)
	}
}
