package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(e2e.RunWithBinaries(m, func(dir string) { binDir = dir }, nil))
}

func bin(name string) string { return filepath.Join(binDir, name) }

// The three programs, run by hand as a user would, send the sample rows to a
// local webhook once each, serve health and readiness, and exit 0 on
// SIGTERM.
func TestProgramsSendTheSampleRows(t *testing.T) {
	t.Parallel()
	// Secrets with values that cannot appear in a log by chance.
	secrets := map[string]string{
		"WEBHOOK_AUTH_KEY": "authkey-" + testenv.Name("s"),
		"API_KEY":          "apikey-" + testenv.Name("s"),
		"WEBHOOK_SECRET":   "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw==",
	}
	sys := e2e.NewSystem(t, e2e.Options{Bin: binDir, Unmigrated: true, Vars: secrets})
	testenv.RunInitScripts(t, sys.Pool)
	var samples []string
	rows, err := sys.Pool.Query(context.Background(), `SELECT id FROM messages ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 {
		t.Fatal("init/ inserted no sample rows")
	}

	apiPort := e2e.FreePort(t)
	procs := []*e2e.Proc{
		sys.Start("scheduler"),
		sys.Start("worker-1"),
		sys.Start("worker-2"),
		sys.Start("api", "HTTP_PORT="+strconv.Itoa(apiPort)),
	}

	testenv.Eventually(t, 30*time.Second, "all sample rows to be sent", func() bool {
		return sys.Count("sent") == len(samples)
	})
	s := sys.Sink
	calls := s.Calls()
	for _, id := range samples {
		if calls[id] != 1 {
			t.Errorf("sample %s reached the webhook %d times", id, calls[id])
		}
	}
	// The completer writes the sent records to Redis right after the
	// record statement commits: wait for them.
	rdb := testenv.NewRedis(t)
	keys := make([]string, len(samples))
	for i, id := range samples {
		keys[i] = cache.Key(id)
	}
	testenv.Eventually(t, 10*time.Second, "every sample row to be cached", func() bool {
		n, err := rdb.Exists(context.Background(), keys...).Result()
		if err != nil {
			t.Fatalf("read the cache: %v", err)
		}
		return n == int64(len(keys))
	})
	if err := rdb.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", apiPort, path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d", path, resp.StatusCode)
		}
	}

	for _, p := range procs {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		code, err := p.Wait(10 * time.Second)
		if err != nil || code != 0 {
			t.Errorf("%s: exit %d, %v", p.Name, code, err)
		}
	}
	// The calls were signed and authenticated, and no log line of any
	// program (at DEBUG) shows a secret.
	for _, d := range s.Accepted() {
		if d.Header.Get("x-ins-auth-key") != secrets["WEBHOOK_AUTH_KEY"] || d.Header.Get("webhook-signature") == "" {
			t.Fatalf("delivery without auth key or signature: %v", d.Header)
		}
	}
	for _, p := range procs {
		out := p.Output()
		for name, v := range secrets {
			if strings.Contains(out, v) || strings.Contains(out, strings.TrimPrefix(v, "whsec_")) {
				t.Errorf("%s logged %s", p.Name, name)
			}
		}
	}
}

// A bad value stops a program at once with one line naming the variable.
func TestBadConfigStopsAtOnce(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"api", "worker", "scheduler"} {
		p := e2e.Start(t, bin(name), name, []string{"WEBHOOK_URL=http://127.0.0.1:1/", "CRON_INTERVAL=abc"})
		code, err := p.Wait(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out := strings.TrimSpace(p.Output())
		if code != 2 || strings.Count(out, "\n") != 0 || !strings.Contains(out, "CRON_INTERVAL") {
			t.Errorf("%s: exit %d, output %q", name, code, out)
		}
	}
}

// A database that does not exist will not appear by waiting: each program
// says so and exits 1 at once instead of retrying for a minute.
func TestMissingDatabaseStopsAtOnce(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.AdminURI())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + testenv.Name("nodb")
	uri := u.String()
	for _, name := range []string{"api", "worker", "scheduler"} {
		env := e2e.Env(e2e.BaseEnv(uri, testenv.RedisAddr(), testenv.Name("q"), "http://127.0.0.1:1/"),
			"HTTP_PORT="+strconv.Itoa(e2e.FreePort(t)), "METRICS_PORT=0")
		p := e2e.Start(t, bin(name), name, env)
		code, err := p.Wait(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v (output %q)", name, err, p.Output())
		}
		out := p.Output()
		if code != 1 || !strings.Contains(out, "does not exist") || strings.Contains(out, "waiting for postgres") {
			t.Errorf("%s: exit %d, output %q", name, code, out)
		}
	}
}
