package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	_, pool, st := testenv.MigratedStore(t)
	ctx := context.Background()
	id := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	keyA, keyB := id("fingerprint A"), id("fingerprint B")
	valid := func(session string, key []byte) bool {
		t.Helper()
		ok, err := st.SessionValid(ctx, id(session), key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	hour := time.Now().Add(time.Hour)
	for _, s := range []string{"s1", "s2", "s3"} {
		if err := st.CreateSession(ctx, id(s), keyA, hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, id("old"), keyA, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, id("s1"), keyA, hour); err == nil {
		t.Fatalf("a second session with the same id was stored")
	}
	for _, c := range []struct {
		session string
		key     []byte
		want    bool
	}{
		{"s1", keyA, true}, {"s1", keyB, false}, {"old", keyA, false}, {"never", keyA, false},
	} {
		if got := valid(c.session, c.key); got != c.want {
			t.Errorf("SessionValid(%s, %x) = %v, want %v", c.session, c.key[:2], got, c.want)
		}
	}
	if err := st.DeleteSession(ctx, id("s1")); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, id("s1")); err != nil {
		t.Fatalf("deleting a deleted session: %v", err)
	}
	if valid("s1", keyA) || !valid("s2", keyA) {
		t.Fatalf("delete ended the wrong session")
	}
	if n, err := st.PurgeExpiredSessions(ctx, 100); err != nil || n != 1 {
		t.Fatalf("purge: %d %v, want the one expired row", n, err)
	}
	// The purge is bounded.
	for i := range 5 {
		if err := st.CreateSession(ctx, id("expired-"+string(rune('a'+i))), keyA, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.PurgeExpiredSessions(ctx, 2); err != nil || n != 2 {
		t.Fatalf("bounded purge: %d %v, want 2", n, err)
	}
	if n, err := st.DeleteAllSessions(ctx); err != nil || n != 2 {
		t.Fatalf("revoke all: %d %v, want the 2 live sessions", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM console_sessions`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 || valid("s2", keyA) {
		t.Fatalf("%d rows left after revoke all", left)
	}
}
