package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// TestTraceparentStoredAndClaimed: a create stores each item's trace
// context, NULL when it has none, and the claim hands it back; a row
// inserted by another system claims with none.
func TestTraceparentStoredAndClaimed(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if _, err := s.Create(context.Background(), []store.NewMessage{
		{ID: "traced", Content: "hi", PhoneNumber: "+905551234567", Traceparent: tp},
		{ID: "untraced", Content: "hi", PhoneNumber: "+905551234568"},
	}); err != nil {
		t.Fatal(err)
	}
	var stored *string
	if err := pool.QueryRow(context.Background(), `SELECT traceparent FROM messages WHERE id = 'untraced'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != nil {
		t.Fatalf("an item without trace context stored %q, want NULL", *stored)
	}
	exec(t, pool, `INSERT INTO messages (id, content, phone_number) VALUES ('foreign', 'hi', '+905551234569')`)
	setBudget(t, pool, 10)
	exec(t, pool, `UPDATE dispatch_control SET running = true`)
	got := map[string]string{}
	for _, c := range claim(t, s, 10, time.Minute) {
		got[c.ID] = c.Traceparent
	}
	want := map[string]string{"traced": tp, "untraced": "", "foreign": ""}
	if len(got) != len(want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			t.Errorf("claim of %s: traceparent %q (claimed %v), want %q", id, g, ok, w)
		}
	}
}
