package console_test

// The console in a real browser: Debian's Chromium, driven through the
// DevTools protocol by chromedp (imported only here, so no product binary
// links it), against the real api, worker and scheduler wired in this
// process by internal/app over real PostgreSQL and Redis, with a local
// webhook receiver.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// chromiumPath is where Debian's chromium package puts the browser
// (.ci/run installs it when it is missing).
const chromiumPath = "/usr/bin/chromium"

const browserKey = "browser-test-key-0123456789abcdef"

// failMarker in a message's content makes the receiver refuse its first
// call with 400, so the message fails at once and a retry then succeeds.
const failMarker = "[fail-once]"

// needChromium skips the test when the browser is missing on a developer's
// machine, and fails it in CI, where .ci/run must have installed it.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing in CI: .ci/run should have installed Debian's chromium package", chromiumPath)
	}
	t.Skipf("%s is missing: install Debian's chromium package (apt-get install chromium) to run the browser tests", chromiumPath)
}

// system is the api, one worker and one scheduler, run as the built
// programs by e2e.System.
type system struct {
	*e2e.System
	t    *testing.T
	base string
}

func startSystem(t *testing.T) *system {
	t.Helper()
	if binDir == "" {
		t.Skip("the browser test runs the built programs, which -short does not build")
	}
	sys := e2e.NewSystem(t, e2e.Options{
		Bin: binDir,
		Respond: func(w http.ResponseWriter, _ *http.Request, d sink.Delivery, n int) bool {
			if strings.Contains(d.Content, failMarker) && n == 1 {
				http.Error(w, `{"error":"invalid recipient"}`, http.StatusBadRequest)
				return true
			}
			return false
		},
		Vars: map[string]string{"API_KEY": browserKey, "MESSAGE_FETCH_LIMIT": "10", "RATE_LIMIT": "0"},
	})
	s := &system{System: sys, t: t}
	// Sending starts stopped, so the counts hold still until the test
	// presses start.
	if _, err := store.New(sys.Pool).SetRunning(context.Background(), false, ""); err != nil {
		t.Fatal(err)
	}
	_, s.base = sys.StartAPI()
	sys.Start("worker")
	sys.Start("scheduler")
	return s
}

func (s *system) status(id string) string {
	var st string
	if err := s.Pool.QueryRow(context.Background(), `SELECT status FROM messages WHERE id = $1`, id).Scan(&st); err != nil {
		s.t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

func (s *system) counts() map[string]int {
	out := map[string]int{}
	for _, st := range []string{"pending", "sending", "sent", "failed", "expired", "canceled", "suppressed"} {
		var n int
		if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = $1`, st).Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		out[st] = n
	}
	return out
}

// seed fills the table and the attempts log with an hour of history, so
// that the counts, the table and the chart have something to show.
func (s *system) seed() {
	s.t.Helper()
	// Minute g of the last hour has 2 to 10 messages; about one in eleven
	// failed, and the newest few are still pending.
	_, err := s.Pool.Exec(context.Background(), `
WITH m AS (
    SELECT 'seed-' || lpad(g::text, 2, '0') || '-' || k AS id, g, k,
           now() - (g || ' minutes')::interval - (k || ' seconds')::interval AS at,
           CASE WHEN g <= 1 THEN 'pending' WHEN (g * 7 + k) % 11 = 0 THEN 'failed' ELSE 'sent' END AS status
    FROM generate_series(1, 58) AS g, generate_series(1, 2 + (g * 5 + g / 7) % 9) AS k
)
INSERT INTO messages (id, content, phone_number, status, is_sent, attempts, sent_at, remote_message_id, last_error, created_at)
SELECT id,
       (ARRAY['Your verification code is 4821', 'Your parcel arrives tomorrow 09:00-12:00',
              'Reminder: appointment at 14:30', 'Flash sale: 20% off until midnight'])[1 + (g + k) % 4],
       '+9055511' || lpad((g * 37 + k)::text, 5, '0'),
       status, status = 'sent', CASE WHEN status = 'pending' THEN 0 ELSE 1 END,
       CASE WHEN status = 'sent' THEN at + interval '80 milliseconds' END,
       CASE WHEN status = 'sent' THEN 'remote-' || id END,
       CASE WHEN status = 'failed' THEN 'webhook answered 400: invalid recipient' END,
       at - interval '3 seconds'
FROM m`)
	if err != nil {
		s.t.Fatalf("seed messages: %v", err)
	}
	_, err = s.Pool.Exec(context.Background(), `
INSERT INTO message_attempts (message_id, attempt, started_at, duration_ms, status_code, outcome, error)
SELECT id, 1, sent_at - interval '80 milliseconds', 80, 202, 'sent', NULL FROM messages WHERE status = 'sent'
UNION ALL
SELECT id, 1, created_at + interval '3 seconds', 45, 400, 'failed', last_error FROM messages WHERE status = 'failed'`)
	if err != nil {
		s.t.Fatalf("seed attempts: %v", err)
	}
}

// browser collects what must not happen on a page: uncaught exceptions,
// console errors, failed loads and error answers.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// The first call starts the browser; it must not run under a timeout,
	// which would end the browser with it.
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			b.fail("exception: %s %s at %s:%d", d.Text, desc, d.URL, d.LineNumber)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, a.Description+fmt.Sprint(a.Value))
				}
				b.fail("console.%s: %s", ev.Type, strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.fail("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				b.fail("load failed: %s %s", ev.Type, ev.ErrorText)
			}
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				b.fail("answer %d: %s", ev.Response.Status, ev.Response.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return b
}

func (b *browser) fail(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

// check fails t on anything the page did wrong so far.
func (b *browser) check(t *testing.T, when string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Fatalf("%s, the browser reported:\n%s", when, strings.Join(b.errs, "\n"))
	}
}

// actionTimeout bounds one step of the test in the browser.
const actionTimeout = 45 * time.Second

func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b.check(t, what)
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition in the page until it is true.
func (b *browser) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		msgs, derr := chromedp.Run(dctx, chromedp.Evaluate[string](`[location.href, document.querySelector("#toast") && document.querySelector("#toast").textContent, document.querySelector("#create-error") && document.querySelector("#create-error").textContent, JSON.stringify([...document.querySelectorAll("#create-form input, #create-form textarea")].map(e => [e.name, e.value, e.validationMessage]))].join(" | ")`))
		t.Fatalf("waiting for %s (%s): %v\npage: %s %v", what, expr, err, msgs, derr)
	}
	b.check(t, "waiting for "+what)
}

// click waits for the element sel to be in the page and clicks it in the
// same script turn. The console redraws its table every few seconds, so a
// node found by one DevTools call may be gone by the next (chromedp's
// Click queries, then clicks by node id); finding and clicking together
// cannot miss.
func (b *browser) click(t *testing.T, what, sel string) {
	t.Helper()
	b.waitJS(t, what, fmt.Sprintf(`(() => { const n = document.querySelector(%q); if (!n) return false; n.click(); return true; })()`, sel))
}

func tid(id string) string { return `[data-testid="` + id + `"]` }

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func textIs(sel, want string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want)
}

func rowSel(id string) string { return fmt.Sprintf(`%s[data-id=%q]`, tid("message-row"), id) }

func TestConsoleInBrowser(t *testing.T) {
	needChromium(t)
	if testing.Short() {
		t.Skip("the browser test takes about 20 s")
	}
	s := startSystem(t)
	s.seed()
	b := newBrowser(t)
	start := "/console/"

	// Signing in: the console sends the browser to the sign-in page, which
	// brings it back.
	b.run(t, "open the console",
		chromedp.Navigate(s.base+start),
		chromedp.WaitVisible(css(tid("signin-key"))))
	b.run(t, "sign in",
		chromedp.SendKeys(css(tid("signin-key")), browserKey),
		chromedp.Click(css(tid("btn-signin"))),
		chromedp.WaitVisible(css(tid("switch-state"))))
	b.run(t, "open the console", chromedp.Navigate(s.base+start), chromedp.WaitVisible(css(tid("switch-state"))))
	if loc := eval[string](t, b, "location.pathname"); loc != "/console/" {
		t.Fatalf("after sign-in the browser is at %s", loc)
	}
	b.waitJS(t, "the switch", textIs(tid("switch-state"), "stopped"))

	// The counts are the database's, a suppressed message's included.
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO messages (id, content, phone_number, status, last_error)
VALUES ('suppressed-1', 'hi', '+12015550123', 'suppressed', 'not sent: the recipient opted out')`); err != nil {
		t.Fatal(err)
	}
	want := s.counts()
	if want["suppressed"] != 1 {
		t.Fatalf("counts %v, want one suppressed", want)
	}
	for st, n := range want {
		b.waitJS(t, "count of "+st, textIs(tid("count-"+st), fmt.Sprint(n)))
	}
	b.waitJS(t, "the chart", `document.querySelectorAll("#chart rect.bar-sent").length > 0 && document.querySelectorAll("#chart rect.bar-failed").length > 0`)
	b.waitJS(t, "the table", fmt.Sprintf(`document.querySelectorAll(%q).length === 20`, tid("message-row")))
	b.waitJS(t, "a next page", `!document.querySelector("#btn-older").disabled`)
	first := eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).dataset.id`, tid("message-row")))
	b.run(t, "older page", chromedp.Click(css("#btn-older")))
	b.waitJS(t, "the second page", fmt.Sprintf(`document.querySelector(%q).dataset.id !== %q`, tid("message-row"), first))
	b.run(t, "newer page", chromedp.Click(css("#btn-newer")))
	b.waitJS(t, "the first page again", fmt.Sprintf(`document.querySelector(%q).dataset.id === %q`, tid("message-row"), first))

	// Start: sending runs.
	b.run(t, "press start", chromedp.Click(css(tid("btn-start"))))
	b.waitJS(t, "running", textIs(tid("switch-state"), "running"))
	if ctl, err := store.New(s.Pool).Control(context.Background()); err != nil || !ctl.Running {
		t.Fatalf("after start: %+v %v", ctl, err)
	}

	failedWithoutCall(t, b, s)

	// Create a message in the form and watch it reach sent.
	b.run(t, "create a message",
		chromedp.SendKeys(css(tid("create-form")+` input[name="phone_number"]`), "+905551234567"),
		chromedp.SendKeys(css(tid("create-form")+` textarea[name="content"]`), "Hello from the browser test"),
		chromedp.Click(css(tid("create-form")+` button[type="submit"]`)))
	b.waitJS(t, "the new message's detail", `!!(document.querySelector("#detail") || {}).dataset && !!document.querySelector("#detail").dataset.id`)
	created := eval[string](t, b, `document.querySelector("#detail").dataset.id`)
	testenv.Eventually(t, 30*time.Second, "the created message to be sent", func() bool { return s.status(created) == "sent" })
	b.waitJS(t, "sent in the table", fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.status === "sent"`, rowSel(created)))
	b.waitJS(t, "the new count", textIs(tid("count-sent"), fmt.Sprint(s.counts()["sent"])))
	b.waitJS(t, "sent in the detail", `document.querySelector("#detail").dataset.status === "sent"`)

	// A message the receiver refuses fails; retry puts it back, and it is
	// sent.
	b.run(t, "create a message that fails",
		chromedp.SendKeys(css(tid("create-form")+` input[name="phone_number"]`), "+905559876543"),
		chromedp.SendKeys(css(tid("create-form")+` textarea[name="content"]`), "Refused once "+failMarker),
		chromedp.Click(css(tid("create-form")+` button[type="submit"]`)))
	b.waitJS(t, "the second message's detail", fmt.Sprintf(`document.querySelector("#detail").dataset.id !== %q`, created))
	failing := eval[string](t, b, `document.querySelector("#detail").dataset.id`)
	testenv.Eventually(t, 30*time.Second, "the refused message to fail", func() bool { return s.status(failing) == "failed" })
	b.run(t, "filter failed", chromedp.Click(css(`#filters button[data-filter="failed"]`)))
	b.waitJS(t, "the failed row's retry", fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(failing)+" "+tid("btn-retry")))
	b.click(t, "press retry", rowSel(failing)+" "+tid("btn-retry"))
	testenv.Eventually(t, 30*time.Second, "the retried message to be sent", func() bool { return s.status(failing) == "sent" })
	b.waitJS(t, "the retried message gone from the failed list", fmt.Sprintf(`!document.querySelector(%q)`, rowSel(failing)))
	b.run(t, "back to all", chromedp.Click(css(`#filters button[data-filter="all"]`)))

	// Stop: the API says running false.
	b.run(t, "press stop", chromedp.Click(css(tid("btn-stop"))))
	b.waitJS(t, "stopped", textIs(tid("switch-state"), "stopped"))
	var st struct {
		Running bool `json:"running"`
	}
	if err := getJSON(s.base+"/api/v1/scheduler", &st); err != nil || st.Running {
		t.Fatalf("GET /api/v1/scheduler after stop: %+v %v", st, err)
	}

	// Stopped, a new message stays pending; cancel takes it back.
	b.run(t, "create a message to cancel",
		chromedp.SendKeys(css(tid("create-form")+` input[name="phone_number"]`), "+905550000001"),
		chromedp.SendKeys(css(tid("create-form")+` textarea[name="content"]`), "Wrong campaign"),
		chromedp.Click(css(tid("create-form")+` button[type="submit"]`)))
	b.waitJS(t, "the third message's detail", fmt.Sprintf(`![%q, %q].includes(document.querySelector("#detail").dataset.id)`, created, failing))
	canceled := eval[string](t, b, `document.querySelector("#detail").dataset.id`)
	b.run(t, "filter pending", chromedp.Click(css(`#filters button[data-filter="pending"]`)))
	b.waitJS(t, "the pending row's cancel", fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(canceled)+" "+tid("btn-cancel")))
	b.click(t, "press cancel", rowSel(canceled)+" "+tid("btn-cancel"))
	testenv.Eventually(t, 10*time.Second, "the message to be canceled", func() bool { return s.status(canceled) == "canceled" })
	b.waitJS(t, "the canceled count", textIs(tid("count-canceled"), "1"))

	// The dashboard and the OpenAPI page work under their CSPs: they
	// draw, and the browser reports no blocked script, style, font or
	// manifest (check fails on any console error).
	b.run(t, "open the dashboard",
		chromedp.Navigate(s.base+"/monitoring/"),
		chromedp.WaitVisible(css(`#root table`)))
	b.waitJS(t, "the dispatch queue in the dashboard", fmt.Sprintf(`document.body.innerText.includes(%q)`, s.Queue))
	b.run(t, "open the OpenAPI page",
		chromedp.Navigate(s.base+"/swagger/index.html"),
		chromedp.WaitVisible(css(`#swagger-ui .information-container`)))
	b.waitJS(t, "the operations", `document.querySelectorAll(".opblock").length > 10`)

	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		screenshots(t, b, s)
	}

	// Sign-out ends the session: the console and the dashboard send the
	// browser to the sign-in page again.
	b.run(t, "back to the console", chromedp.Navigate(s.base+start), chromedp.WaitVisible(css(tid("btn-signout"))))
	b.click(t, "sign out", tid("btn-signout"))
	b.run(t, "the sign-in page", chromedp.WaitVisible(css(tid("signin-key"))))
	b.run(t, "the dashboard after sign-out", chromedp.Navigate(s.base+"/monitoring/"), chromedp.WaitVisible(css(tid("signin-key"))))
	b.check(t, "at the end")
}

// failedWithoutCall inserts a row the API would refuse (its number is not
// E.164), as another system may, and lets the running worker fail it
// without a webhook call. The console must not contradict itself about it:
// the Failed tile counts messages failed now, the chart's legend counts
// failed calls and says so, and the detail, opened in a 1000 px window, is
// in view and claims no call.
func failedWithoutCall(t *testing.T, b *browser, s *system) {
	t.Helper()
	const id = "row-with-a-bad-number"
	if _, err := s.Pool.Exec(context.Background(),
		`INSERT INTO messages (id, content, phone_number) VALUES ($1, 'Inserted around the API', '12345')`, id); err != nil {
		t.Fatalf("insert an invalid row: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the invalid row to fail", func() bool { return s.status(id) == "failed" })
	var calls int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM message_attempts WHERE message_id = $1`, id).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("the invalid row has %d webhook calls, want none", calls)
	}

	// The tile counts failed messages; the legend counts the failed calls
	// the chart draws, which the invalid row is not among; both say what
	// they count.
	failedMessages := s.counts()["failed"]
	var minutes api.MinuteStats
	if err := getJSON(s.base+"/api/v1/stats/minutes", &minutes); err != nil {
		t.Fatalf("GET /api/v1/stats/minutes: %v", err)
	}
	var failedCalls int64
	for _, m := range minutes.Data {
		failedCalls += m.Failed
	}
	if int64(failedMessages) == failedCalls {
		t.Fatalf("failed messages %d equal failed calls %d: the check below would not tell them apart", failedMessages, failedCalls)
	}
	b.waitJS(t, "the Failed tile", textIs(tid("count-failed"), fmt.Sprint(failedMessages)))
	b.waitJS(t, "the failed calls in the legend", textIs("#sum-failed", fmt.Sprint(failedCalls)))
	legend := eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).innerText`, tid("chart-legend")))
	if !strings.Contains(legend, "Failed calls") || !strings.Contains(legend, "Sent calls") {
		t.Fatalf("the chart's legend does not say it counts calls: %q", legend)
	}
	if tile := eval[string](t, b, `document.querySelector(".count.s-failed .label").textContent`); tile != "Failed" {
		t.Fatalf("the Failed tile is labelled %q", tile)
	}
	b.waitJS(t, "the chart's note", fmt.Sprintf(`(() => { const n = document.querySelector(%q); return !!n && n.offsetHeight > 0 && n.textContent.includes("without a call"); })()`, tid("chart-note")))

	// In a 1000 px window the detail opens below the table and the form:
	// opening it brings it into view.
	b.run(t, "a 1000 px window", chromedp.EmulateViewport(1000, 900))
	if w := eval[int](t, b, `(window.scrollTo(0, 0), window.innerWidth)`); w != 1000 {
		t.Fatalf("the window is %d px wide, want 1000", w)
	}
	b.click(t, "open the invalid row", rowSel(id))
	b.waitJS(t, "its detail", fmt.Sprintf(`document.querySelector("#detail").dataset.id === %q && !!document.querySelector(%q)`, id, tid("detail-calls-note")))
	b.waitJS(t, "the detail in view", `(() => { const r = document.querySelector("#detail").getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; })()`)
	if top := eval[float64](t, b, `window.scrollY`); top <= 0 {
		t.Fatalf("the page did not scroll (scrollY %v): the detail was in view without it, so this check proves nothing", top)
	}
	if v := eval[string](t, b, `document.querySelector('#detail [data-field="attempts"]').textContent`); v != "1" {
		t.Fatalf("Tries = %q, want 1", v)
	}
	if v := eval[string](t, b, `document.querySelector('#detail [data-field="calls"]').textContent`); v != "0" {
		t.Fatalf("Calls = %q, want 0", v)
	}
	note := eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).textContent`, tid("detail-calls-note")))
	if note != "Failed without a recorded webhook call (the reason is under Last error)." {
		t.Fatalf("the detail's note is %q", note)
	}
	if v := eval[string](t, b, `document.querySelector('#detail [data-field="last_error"]').textContent`); !strings.HasPrefix(v, "not sent: invalid message: ") {
		t.Fatalf("Last error = %q", v)
	}
	if text := eval[string](t, b, `document.querySelector("#detail").innerText`); strings.Contains(text, "Attempts") || strings.Contains(text, "yet") {
		t.Fatalf("the detail of a message failed without a call claims one:\n%s", text)
	}
	b.click(t, "close the detail", "#detail-close")
	b.run(t, "the usual window", chromedp.ResetViewport())
}

// screenshots writes docs/img/console.png and docs/img/asynqmon.png (run
// with UPDATE_SCREENSHOTS=1 and commit them; the README shows the first).
func screenshots(t *testing.T, b *browser, s *system) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var failed string
	if err := s.Pool.QueryRow(context.Background(), `SELECT id FROM messages WHERE status = 'failed' AND id LIKE 'seed-%' ORDER BY id LIMIT 1`).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	page := "/console/#msg=" + failed
	b.run(t, "open the console for its screenshot",
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(s.base+page),
		chromedp.WaitVisible(css(tid("message-detail"))))
	full := `document.querySelectorAll("#chart rect.bar-sent").length > 0 && document.querySelectorAll('[data-testid="message-row"]').length > 0` +
		` && document.querySelectorAll("#detail-attempts tr").length > 0`
	b.waitJS(t, "a full console", full)
	write(t, filepath.Join(dir, "console.png"), screenshot(t, b))
	b.run(t, "open the dashboard",
		chromedp.Navigate(s.base+"/monitoring/"),
		chromedp.WaitVisible(css(`#root table`)))
	write(t, filepath.Join(dir, "asynqmon.png"), screenshot(t, b))
}

func screenshot(t *testing.T, b *browser) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b.check(t, "taking a screenshot")
	return png
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// getJSON reads url with the API key, as a curl user would.
func getJSON(url string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+browserKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return jsonDecode(resp, v)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
