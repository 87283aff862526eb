package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/testenv"
)

// A claim reports how long each message had been due: since its send_at
// when it has one, else since created_at (the queue lag the worker's
// messaging_message_age_seconds observes at a first attempt).
func TestClaimReportsWaited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool, st := testenv.MigratedStore(t)
	ids := testenv.InsertMessages(t, pool, 2) // created about an hour ago
	if _, err := pool.Exec(ctx, `UPDATE messages SET send_at = now() - interval '10 minutes' WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReserveTick(ctx, 10, 0, 3); err != nil {
		t.Fatal(err)
	}
	cs, err := st.Claim(ctx, 10, time.Minute, 3)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %d %v", len(cs), err)
	}
	for _, c := range cs {
		want := time.Hour
		if c.ID == ids[1] {
			want = 10 * time.Minute
		}
		if c.Waited < want-5*time.Second || c.Waited > want+5*time.Second {
			t.Errorf("%s waited %s, want about %s", c.ID, c.Waited, want)
		}
	}
}
