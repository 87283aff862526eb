package e2e_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Rows another system inserted with an id that cannot travel in a header
// (empty, with a control character, with a space at an end) fail on their
// first claim with the reason, and the webhook never sees them; a good row
// behind them is sent as usual.
func TestIDsThatCannotTravelInAHeaderFailWithoutACall(t *testing.T) {
	t.Parallel()
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Vars: map[string]string{"MESSAGE_FETCH_LIMIT": "20", "MAX_ATTEMPTS": "5"}})
	pool := sys.Pool
	bad := map[string]string{
		"":          "empty",
		"bad\nid":   "control character",
		"bad\rid":   "control character",
		"tab\tid":   "control character",
		"c1\u0085":  "control character",
		" leading":  "space",
		"trailing ": "space",
	}
	ctx := context.Background()
	for id := range bad {
		if _, err := pool.Exec(ctx, `INSERT INTO messages (id, content, phone_number, created_at)
            VALUES ($1, 'hello', '+905551111111', now() - interval '1 minute')`, id); err != nil {
			t.Fatalf("insert %q: %v", id, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO messages (id, content, phone_number) VALUES ('good-id', 'hello', '+905551111111')`); err != nil {
		t.Fatal(err)
	}

	s := sys.Sink
	procs := []*e2e.Proc{sys.Start("scheduler"), sys.Start("worker")}
	testenv.Eventually(t, 30*time.Second, "every row to be sent or failed", func() bool {
		return sys.Count("sent")+sys.Count("failed") == len(bad)+1
	})
	for id, want := range bad {
		var status, lastError string
		var attempts int
		if err := pool.QueryRow(ctx, `SELECT status, attempts, coalesce(last_error, '') FROM messages WHERE id = $1`, id).
			Scan(&status, &attempts, &lastError); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if status != "failed" || attempts != 1 || !strings.HasPrefix(lastError, "not sent: invalid message: id: ") || !strings.Contains(lastError, want) {
			t.Errorf("%q: status %s, attempts %d, last_error %q; want failed after one claim, reason with %q", id, status, attempts, lastError, want)
		}
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT status FROM messages WHERE id = 'good-id'`).Scan(&status); err != nil || status != "sent" {
		t.Fatalf("good row: %q, %v", status, err)
	}
	if calls := s.Calls(); len(calls) != 1 || calls["good-id"] != 1 {
		t.Fatalf("webhook calls %v, want only good-id once", calls)
	}
	for _, p := range procs {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		if code, err := p.Wait(10 * time.Second); err != nil || code != 0 {
			t.Errorf("%s: exit %d, %v", p.Name, code, err)
		}
	}
	if err := testenv.NewRedis(t).Del(ctx, cache.Key("good-id")).Err(); err != nil {
		t.Fatal(err)
	}
}
