package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// cluster starts a scheduler, the workers and the api over a System with
// vars (ticks every second, a large budget, 2 s webhook timeout: the
// harness's), and returns the System and the api's port.
func cluster(t *testing.T, workers int, vars map[string]string) (*e2e.System, int) {
	t.Helper()
	all := map[string]string{"LOG_LEVEL": "INFO", "MESSAGE_FETCH_LIMIT": "1000"}
	for k, v := range vars {
		all[k] = v
	}
	s := e2e.NewSystem(t, e2e.Options{Bin: binDir, Vars: all})
	port := e2e.FreePort(t)
	s.Start("api", "HTTP_PORT="+strconv.Itoa(port))
	s.Start("scheduler")
	for i := range workers {
		s.Start(fmt.Sprintf("worker-%d", i+1))
	}
	return s, port
}

// insert adds n due messages to numbers prefix + a running number, as
// another system would, and returns their ids.
func insert(t *testing.T, s *e2e.System, n int, prefix string) []string {
	t.Helper()
	ids := make([]string, n)
	phones := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", testenv.Name("m"), i)
		phones[i] = fmt.Sprintf("%s%06d", prefix, 100000+i)
	}
	if _, err := s.Pool.Exec(context.Background(), `
INSERT INTO messages (id, content, phone_number, created_at)
SELECT id, 'message ' || id, phone, now() - interval '1 minute' + ord * interval '1 millisecond'
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(id, phone, ord)`, ids, phones); err != nil {
		t.Fatal(err)
	}
	return ids
}

// sent counts the messages of ids that are sent, and fails t on a failed one.
func sent(t *testing.T, s *e2e.System, ids []string) int {
	t.Helper()
	var n, failed int
	if err := s.Pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed') FROM messages WHERE id = ANY($1)`,
		ids).Scan(&n, &failed); err != nil {
		t.Fatal(err)
	}
	if failed > 0 {
		t.Fatalf("%d messages failed", failed)
	}
	return n
}

func waitSent(t *testing.T, s *e2e.System, ids []string, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, fmt.Sprintf("%d messages sent", len(ids)), func() bool { return sent(t, s, ids) == len(ids) })
}

// providerView is one entry of GET /api/v1/providers.
type providerView struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Rate     int    `json:"rate"`
	Calls    int    `json:"calls_last_minute"`
	Failures int    `json:"failures_last_minute"`
}

func providers(t *testing.T, port int) map[string]providerView {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/providers", port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Data []providerView `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]providerView{}
	for _, p := range body.Data {
		out[p.Name] = p
	}
	return out
}

func twoProviders(primary, backup *receiver, extra map[string]string) map[string]string {
	vars := map[string]string{
		"PROVIDERS": "primary,backup", "PROVIDER_PRIMARY_URL": primary.URL(), "PROVIDER_BACKUP_URL": backup.URL(),
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// TestFailoverAndRecovery: primary answers 500 to
// everything while 200 messages are due (2 workers, BREAKER_COOLDOWN=5s).
// None fails, each is accepted once, all within 30 s of the outage's start,
// primary gets at most 60 calls, the API shows primary open, and the
// attempts show primary then backup. The outage then ends, well before
// 60 s, since everything was accepted by then: after primary's probe
// succeeds, new messages go to primary again.
func TestFailoverAndRecovery(t *testing.T) {
	e2e.SlowTest(t)
	primary, backup := newReceiver(t), newReceiver(t)
	primary.down.Store(true)
	outageStart := time.Now()
	s, port := cluster(t, 2, twoProviders(primary, backup, map[string]string{"BREAKER_COOLDOWN": "5s"}))
	ids := insert(t, s, 200, "+905551")
	waitSent(t, s, ids, 30*time.Second-time.Since(outageStart))
	took := time.Since(outageStart)

	pa, ba := primary.accepted(), backup.accepted()
	for _, id := range ids {
		if n := pa[id] + ba[id]; n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	if n := len(primary.Calls()); n > 60 {
		t.Errorf("primary got %d calls while down, want at most 60", n)
	}
	testenv.Eventually(t, 10*time.Second, "the API to show primary open", func() bool {
		return providers(t, port)["primary"].State == "open"
	})
	var failedOver int
	if err := s.Pool.QueryRow(context.Background(), `
SELECT count(*) FROM messages m
WHERE m.id = ANY($1) AND m.provider = 'backup'
  AND (SELECT array_agg(a.provider || ':' || a.outcome ORDER BY a.attempt) FROM message_attempts a WHERE a.message_id = m.id)
      = ARRAY['primary:retry', 'backup:sent']`, ids).Scan(&failedOver); err != nil {
		t.Fatal(err)
	}
	if failedOver == 0 {
		t.Error("no message's attempts show primary, then backup")
	}
	t.Logf("failover: 200 sent %.1f s after the outage began; primary got %d calls; %d messages failed over primary -> backup in their attempts",
		took.Seconds(), len(primary.Calls()), failedOver)

	// Recovery, ended early: primary is up again; the first message after
	// the cooldown is its probe, and once it closed, new messages go to it.
	primary.down.Store(false)
	testenv.Eventually(t, 60*time.Second, "primary's breaker to close after its probe", func() bool {
		probe := insert(t, s, 1, "+905561")
		waitSent(t, s, probe, 30*time.Second)
		return providers(t, port)["primary"].State == "closed"
	})
	// Each worker reads the shared row again within about a second; from
	// then on every new message goes to primary.
	testenv.Eventually(t, 30*time.Second, "new messages to go to primary again", func() bool {
		after := insert(t, s, 20, "+905571")
		waitSent(t, s, after, 30*time.Second)
		pa := primary.accepted()
		for _, id := range after {
			if pa[id] != 1 {
				return false
			}
		}
		return true
	})
}

// TestGoneDisablesOneProvider: with several providers a 410 disables only
// that provider, for every worker, with the reason; the messages go on to
// the next provider, and enabling it sends new messages to it again.
func TestGoneDisablesOneProvider(t *testing.T) {
	e2e.SlowTest(t)
	primary, backup := newReceiver(t), newReceiver(t)
	primary.gone.Store(true)
	s, port := cluster(t, 2, twoProviders(primary, backup, nil))
	ids := insert(t, s, 30, "+905551")
	waitSent(t, s, ids, 30*time.Second)
	if n := len(backup.accepted()); n != 30 {
		t.Fatalf("backup accepted %d, want all 30", n)
	}
	p := providers(t, port)["primary"]
	if p.State != "disabled" || !strings.Contains(p.Reason, "410") {
		t.Fatalf("primary after a 410: %+v, want disabled with the reason", p)
	}
	// Once every worker read the shared row (within about a second), no
	// new message is offered to primary.
	testenv.Eventually(t, 30*time.Second, "new messages to skip primary", func() bool {
		before := len(primary.Calls())
		more := insert(t, s, 5, "+905581")
		waitSent(t, s, more, 30*time.Second)
		return len(primary.Calls()) == before
	})
	t.Logf("410: primary got %d calls in all before every worker skipped it", len(primary.Calls()))
	primary.gone.Store(false)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/v1/providers/primary/enable", port), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enable: %d", resp.StatusCode)
	}
	if p := providers(t, port)["primary"]; p.State != "closed" {
		t.Fatalf("primary after enable: %+v", p)
	}
	// The workers read the shared row again within about a second.
	testenv.Eventually(t, 30*time.Second, "new messages to reach primary again", func() bool {
		more := insert(t, s, 5, "+905561")
		waitSent(t, s, more, 30*time.Second)
		pa := primary.accepted()
		for _, id := range more {
			if pa[id] != 1 {
				return false
			}
		}
		return true
	})
}

// TestRoutes: ROUTES="+44=backup;*=primary,backup": every +44 number
// reaches only backup, the others reach primary.
func TestRoutes(t *testing.T) {
	e2e.SlowTest(t)
	primary, backup := newReceiver(t), newReceiver(t)
	s, _ := cluster(t, 1, twoProviders(primary, backup, map[string]string{"ROUTES": "+44=backup;*=primary,backup"}))
	uk := insert(t, s, 40, "+447700")
	tr := insert(t, s, 40, "+905551")
	waitSent(t, s, append(slices.Clone(uk), tr...), 30*time.Second)
	for _, c := range primary.Calls() {
		if strings.HasPrefix(c.to, "+44") {
			t.Errorf("primary got a +44 number")
		}
	}
	for _, c := range backup.Calls() {
		if !strings.HasPrefix(c.to, "+44") {
			t.Errorf("backup got a number outside +44")
		}
	}
	if len(primary.accepted()) != 40 || len(backup.accepted()) != 40 {
		t.Errorf("primary accepted %d, backup %d: want 40 each", len(primary.accepted()), len(backup.accepted()))
	}
}

// TestRateLimitAcrossWorkers: PROVIDER_BACKUP_RATE=20 with 3 workers and
// 300 messages: no 1 s window at the receiver holds more than 22 calls
// (RATE + BURST, plus one for timing at the window's edges), the average
// is at least 15 a second, and no message failed.
func TestRateLimitAcrossWorkers(t *testing.T) {
	e2e.SlowTest(t)
	backup := newReceiver(t)
	s, _ := cluster(t, 3, map[string]string{
		"PROVIDERS": "backup", "PROVIDER_BACKUP_URL": backup.URL(), "PROVIDER_BACKUP_RATE": "20",
	})
	ids := insert(t, s, 300, "+905551")
	waitSent(t, s, ids, 60*time.Second)
	calls := backup.Calls()
	slices.SortFunc(calls, func(a, b call) int { return a.at.Compare(b.at) })
	worst := 0
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].at.Sub(calls[i].at) < time.Second; j++ {
			n++
		}
		worst = max(worst, n)
	}
	span := calls[len(calls)-1].at.Sub(calls[0].at)
	rate := float64(len(calls)-1) / span.Seconds()
	t.Logf("rate: %d calls in %.2f s = %.1f/s; busiest 1 s window %d calls", len(calls), span.Seconds(), rate, worst)
	if worst > 22 {
		t.Errorf("a 1 s window held %d calls, want at most 22", worst)
	}
	if rate < 15 {
		t.Errorf("average %.1f calls/s, want at least 15", rate)
	}
	if len(backup.accepted()) != 300 {
		t.Errorf("%d messages accepted, want 300", len(backup.accepted()))
	}
}

// TestBadConfigurationExits2: every program refuses a bad provider
// configuration at start with exit status 2 and a line naming the
// variable.
func TestBadConfigurationExits2(t *testing.T) {
	e2e.SlowTest(t)
	two := []string{"PROVIDERS=primary,backup", "PROVIDER_PRIMARY_URL=http://127.0.0.1:1/a", "PROVIDER_BACKUP_URL=http://127.0.0.1:1/b"}
	cases := []struct {
		env  []string
		want string
	}{
		{append(slices.Clone(two), "ROUTES=+44=nobody"), "ROUTES"},
		{[]string{"PROVIDERS=primary"}, "PROVIDER_PRIMARY_URL"},
		{append(slices.Clone(two), "PROVIDER_BACKUP_RATE=fast"), "PROVIDER_BACKUP_RATE"},
	}
	for _, tc := range cases {
		for _, prog := range []string{"worker", "api", "scheduler"} {
			env := e2e.Env(e2e.BaseEnv("postgres://127.0.0.1:1/none", testenv.RedisAddr(), "unused", "http://127.0.0.1:1/"), tc.env...)
			p := e2e.Start(t, filepath.Join(binDir, prog), prog, env)
			code, err := p.Wait(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != 2 || !strings.Contains(p.Output(), tc.want) {
				t.Errorf("%s with %v: exit %d, output %q; want 2 naming %s", prog, tc.env, code, e2e.Tail(p.Output(), 3), tc.want)
			}
		}
	}
}
