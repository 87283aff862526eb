package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Every program, at LOG_LEVEL=DEBUG, through a drain, a failure (400), a
// receipt and a console sign-in, logs none of the numbers, contents and
// secrets it handled: no content, no full number, no key, secret, session
// cookie, URL user info or query string.
func TestLogsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	uri := testenv.NewDatabase(t)
	pool := testenv.NewPool(t, uri)
	sinkPort, apiPort := e2e.FreePort(t), e2e.FreePort(t)
	tag := testenv.Name("p")
	hookPass := "hookpass-" + tag
	env := e2e.BaseEnv(uri, testenv.RedisAddr(), testenv.Queue(t),
		fmt.Sprintf("http://hookuser:%s@127.0.0.1:%d/hook?token=qsecret-%s", hookPass, sinkPort, tag))
	secrets := map[string]string{
		"WEBHOOK_AUTH_KEY": "authkey-" + tag,
		"API_KEY":          "apikey-" + tag,
		"WEBHOOK_SECRET":   "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==",
	}
	for k, v := range secrets {
		env[k] = v
	}
	procs := []*e2e.Proc{
		e2e.Start(t, bin("sink"), "sink", nil, "-addr", fmt.Sprintf("127.0.0.1:%d", sinkPort)),
		e2e.Start(t, bin("scheduler"), "scheduler", e2e.Env(env)),
		e2e.Start(t, bin("worker"), "worker", e2e.Env(env)),
		e2e.Start(t, bin("api"), "api", e2e.Env(env, "HTTP_PORT="+strconv.Itoa(apiPort))),
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	ctx := context.Background()
	if err := procs[3].WaitForOutput(ctx, "api listening"); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string, headers ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(b)
	}
	auth := "Authorization: Bearer " + secrets["API_KEY"]
	jsonCT := "Content-Type: application/json"
	seed := time.Now().UnixNano() % 1e6
	phones := []string{fmt.Sprintf("+90553%07d", seed%10000000), fmt.Sprintf("+90554%07d", seed%10000000)}
	contents := []string{"drain content " + tag, "reject content " + tag}
	for i := range phones {
		status, _, b := do("POST", "/api/v1/messages", `{"id": "log-`+strconv.Itoa(i)+`", "content": "`+contents[i]+`", "phone_number": "`+phones[i]+`"}`, auth, jsonCT)
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, b)
		}
	}
	testenv.Eventually(t, 30*time.Second, "one message sent and one failed", func() bool {
		var sent, failed int
		err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed') FROM messages`).Scan(&sent, &failed)
		return err == nil && sent == 1 && failed == 1
	})
	var remote string
	if err := pool.QueryRow(ctx, `SELECT remote_message_id FROM messages WHERE status = 'sent'`).Scan(&remote); err != nil {
		t.Fatal(err)
	}
	if status, _, b := do("POST", "/api/v1/receipts", `{"message_id": "`+remote+`", "status": "delivered"}`, auth, jsonCT); status != 200 {
		t.Fatalf("receipt: %d %s", status, b)
	}
	// A read with a query string that must not be logged.
	querySecret := "cursorsecret" + tag
	do("GET", "/api/v1/messages?status=sent&cursor="+querySecret, "", auth)
	// A console sign-in, and a page with its cookie.
	status, h, b := do("POST", "/console/signin", url.Values{"key": {secrets["API_KEY"]}}.Encode(),
		"Content-Type: application/x-www-form-urlencoded", "Origin: "+base)
	cookie := strings.Split(h.Get("Set-Cookie"), ";")[0]
	if status != http.StatusSeeOther || cookie == "" {
		t.Fatalf("sign-in: %d %q %s", status, cookie, b)
	}
	if status, _, b := do("GET", "/console/", "", "Cookie: "+cookie); status != 200 {
		t.Fatalf("console with the session: %d %.200s", status, b)
	}
	_, cookieValue, _ := strings.Cut(cookie, "=")

	e2e.StopAll(t, 10*time.Second, procs...)
	never := map[string]string{"session cookie": cookieValue, "URL user info": hookPass, "webhook query": "qsecret-" + tag, "API query": querySecret}
	for k, v := range secrets {
		never[k] = v
	}
	never["WEBHOOK_SECRET base64"] = strings.TrimPrefix(secrets["WEBHOOK_SECRET"], "whsec_")
	for i := range phones {
		never["phone "+strconv.Itoa(i)] = phones[i]
		never["phone without + "+strconv.Itoa(i)] = strings.TrimPrefix(phones[i], "+")
		never["content "+strconv.Itoa(i)] = contents[i]
	}
	for _, p := range procs {
		out := p.Output()
		if !strings.Contains(out, "DEBUG") && !strings.Contains(out, "DBG") && p.Name != "sink" {
			t.Errorf("%s logged nothing at DEBUG: the test would prove little", p.Name)
		}
		for what, v := range never {
			if strings.Contains(out, v) {
				t.Errorf("%s logged the %s:\n%s", p.Name, what, e2e.Tail(out, 40))
			}
		}
	}
}
