package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// TestProvidersInBrowser: the console shows each provider with its state;
// a provider a 410 disabled shows disabled, and its enable button enables
// it for every worker.
func TestProvidersInBrowser(t *testing.T) {
	needChromium(t)
	if testing.Short() || binDir == "" {
		t.Skip("the browser test runs the built programs, which -short does not build")
	}
	_, primaryURL := e2e.NewReceiver(t, nil)
	_, backupURL := e2e.NewReceiver(t, nil)
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Vars: map[string]string{
		"API_KEY": browserKey, "RATE_LIMIT": "0",
		"PROVIDERS": "primary,backup", "PROVIDER_PRIMARY_URL": primaryURL, "PROVIDER_BACKUP_URL": backupURL,
	}})
	_, base := sys.StartAPI()
	const reason = "disabled at 2026-12-03T10:00:00Z: answered 410 Gone"
	if _, err := sys.Pool.Exec(context.Background(),
		`UPDATE delivery_breaker SET disabled_reason = $1, disabled_at = now() WHERE provider = 'backup'`, reason); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.run(t, "open the console", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(css(tid("signin-key"))))
	b.run(t, "sign in",
		chromedp.SendKeys(css(tid("signin-key")), browserKey),
		chromedp.Click(css(tid("btn-signin"))),
		chromedp.WaitVisible(css(tid("provider-primary"))))
	b.waitJS(t, "primary closed", `document.querySelector('[data-testid="provider-primary"]').dataset.state === "closed"`)
	b.waitJS(t, "backup disabled", `document.querySelector('[data-testid="provider-backup"]').dataset.state === "disabled"`)
	b.waitJS(t, "primary's enable button off", `document.querySelector('[data-testid="btn-enable-primary"]').disabled`)
	b.click(t, "enable backup", tid("btn-enable-backup"))
	b.waitJS(t, "backup closed", `document.querySelector('[data-testid="provider-backup"]').dataset.state === "closed"`)
	testenv.Eventually(t, 10*time.Second, "backup enabled in the database", func() bool {
		var disabled bool
		if err := sys.Pool.QueryRow(context.Background(),
			`SELECT disabled_reason IS NOT NULL FROM delivery_breaker WHERE provider = 'backup'`).Scan(&disabled); err != nil {
			t.Fatal(err)
		}
		return !disabled
	})
	b.check(t, "at the end")
}
