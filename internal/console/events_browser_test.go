package console_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// The detail of a message lists its status callback events, and a failed
// one has a redeliver button that puts it back in line.
func TestConsoleRedeliversAFailedEvent(t *testing.T) {
	needChromium(t)
	if testing.Short() {
		t.Skip("a browser test")
	}
	s := startSystem(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO messages (id, content, phone_number) VALUES ('cb-1', 'hi', '+905551234567')`,
		`UPDATE messages SET status = 'failed', last_error = 'webhook answered 400: invalid recipient' WHERE id = 'cb-1'`,
		`UPDATE message_events SET status = 'failed', attempts = 12, last_error = 'callback answered 500' WHERE message_id = 'cb-1'`,
	} {
		if _, err := s.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.run(t, "open the console",
		chromedp.Navigate(s.base+"/console/"),
		chromedp.WaitVisible(css(tid("signin-key"))))
	b.run(t, "sign in",
		chromedp.SendKeys(css(tid("signin-key")), browserKey),
		chromedp.Click(css(tid("btn-signin"))),
		chromedp.WaitVisible(css(tid("switch-state"))))
	b.run(t, "open the message", chromedp.Navigate(s.base+"/console/#msg=cb-1"))
	b.waitJS(t, "the failed event", `!!document.querySelector('[data-testid="event-row"][data-status="failed"] [data-testid="btn-redeliver"]')`)
	b.click(t, "press redeliver", tid("btn-redeliver"))
	b.waitJS(t, "the event pending again", `!!document.querySelector('[data-testid="event-row"][data-status="pending"]') && !document.querySelector('[data-testid="btn-redeliver"]')`)
	var st string
	if err := s.Pool.QueryRow(ctx, `SELECT status FROM message_events WHERE message_id = 'cb-1'`).Scan(&st); err != nil || st != "pending" {
		t.Fatalf("event after redelivery: %q %v", st, err)
	}
	b.check(t, "at the end")
}
