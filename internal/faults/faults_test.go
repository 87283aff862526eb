package faults_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

var (
	soak   = flag.Bool("soak", false, "also run the soak scenario (make faults)")
	binDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(e2e.RunWithBinaries(m, func(dir string) { binDir = dir }, printReport))
}

// cluster is one scenario's database, webhook and programs.
type cluster struct {
	t    *testing.T
	uri  string
	pool *pgxpool.Pool
	sink *sink.Sink
	env  map[string]string
	ids  []string
}

func newCluster(t *testing.T, messages int, respond sink.Responder, redisAddr string, vars map[string]string) *cluster {
	t.Helper()
	uri := testenv.NewDatabase(t)
	pool := testenv.NewPool(t, uri)
	if err := store.Migrate(context.Background(), pool, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	s := sink.New(respond, nil)
	hook := httptest.NewServer(s)
	t.Cleanup(hook.Close)
	env := e2e.BaseEnv(uri, redisAddr, testenv.Queue(t), hook.URL)
	env["REDIS_TTL"] = "120"
	env["LOG_LEVEL"] = "INFO"
	for k, v := range vars {
		env[k] = v
	}
	c := &cluster{t: t, uri: uri, pool: pool, sink: s, env: env}
	c.ids = testenv.InsertMessages(t, pool, messages)
	return c
}

func (c *cluster) start(name string, extra ...string) *e2e.Proc {
	prog := strings.TrimRight(name, "-0123456789")
	return e2e.Start(c.t, filepath.Join(binDir, prog), name, e2e.Env(c.env, extra...))
}

func (c *cluster) count(status string) int {
	var n int
	if err := c.pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = $1`, status).Scan(&n); err != nil {
		c.t.Logf("count %s: %v", status, err)
		return -1
	}
	return n
}

func (c *cluster) waitDone(timeout time.Duration, failing int) {
	c.t.Helper()
	testenv.Eventually(c.t, timeout, "every message sent or failed", func() bool {
		return c.count("sent")+c.count("failed") == len(c.ids) && c.count("failed") == failing
	})
}

// report checks the ledger (every row must be sent) and adds the scenario's
// row to the table.
func (c *cluster) report(start time.Time, scenario, note string) {
	c.t.Helper()
	r := checkLedger(c.t, c.pool, c.sink, nil)
	r.Scenario, r.Took, r.Note = scenario, time.Since(start), note
	record(r)
}

// assertAlive fails t for every program that exited on its own: an outage
// must be survived, not restarted from.
func assertAlive(t *testing.T, procs []*e2e.Proc) {
	t.Helper()
	for _, p := range procs {
		if p.Exited() {
			t.Errorf("%s exited during the outage", p.Name)
		}
	}
}

// Scenario 1: one of three workers is killed with SIGKILL in the middle of a
// backlog; its leased rows are delivered by the others once the lease ends.
func TestKillWorkerMidBacklog(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := newCluster(t, 3000, e2e.Slow(20*time.Millisecond), testenv.RedisAddr(), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "8",
	})
	sched := c.start("scheduler")
	w := []*e2e.Proc{c.start("worker-1"), c.start("worker-2"), c.start("worker-3")}
	testenv.Eventually(t, 30*time.Second, "a third of the backlog", func() bool { return c.count("sent") >= 1000 })
	if err := w[1].Kill(); err != nil {
		t.Fatal(err)
	}
	// The lease is 2*WEBHOOK_TIMEOUT+10s = 14s.
	c.waitDone(90*time.Second, 0)
	e2e.StopAll(t, 20*time.Second, sched, w[0], w[2])
	c.report(start, "1 kill -9 one of 3 workers", "repeats are the killed worker's calls in flight")
}

// Scenario 2: every PostgreSQL connection is cut and new ones refused for a
// while; the programs recover without a restart and /readyz reports it.
func TestPostgresConnectionsCut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := newCluster(t, 600, e2e.Slow(5*time.Millisecond), testenv.RedisAddr(), map[string]string{
		"MESSAGE_FETCH_LIMIT": "40", "MAX_CONCURRENT_JOBS": "4",
	})
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{c.start("scheduler"), c.start("worker-1"), c.start("worker-2"), c.start("api", "HTTP_PORT="+strconv.Itoa(port))}
	readyz := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 20*time.Second, "api ready and first deliveries", func() bool { return readyz() == 200 && c.count("sent") >= 80 })

	u, _ := url.Parse(c.uri)
	db := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(context.Background(), testenv.AdminURI())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	allow := func(ok bool) {
		if _, err := admin.Exec(context.Background(), fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", db, ok)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	defer allow(true)
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "/readyz to report 503", func() bool { return readyz() == http.StatusServiceUnavailable })
	time.Sleep(2 * time.Second) //nolint:forbidigo // the length of the outage
	allow(true)
	testenv.Eventually(t, 30*time.Second, "/readyz to report 200 again", func() bool { return readyz() == 200 })
	c.waitDone(90*time.Second, 0)
	assertAlive(t, procs)
	e2e.StopAll(t, 20*time.Second, procs...)
	c.report(start, "2 PostgreSQL connections cut", "/readyz 503 then 200")
}

// startRedis runs a private Redis on port, so restarting it touches no other
// test.
func startRedis(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	testenv.Eventually(t, 10*time.Second, "redis to answer", func() bool {
		out, err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "ping").Output()
		return err == nil && strings.TrimSpace(string(out)) == "PONG"
	})
	return cmd
}

// Scenario 3: Redis restarts and loses everything (it keeps nothing on
// disk); sending resumes at the next tick and the running state, kept in
// PostgreSQL, is unchanged.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	port := e2e.FreePort(t)
	rds := startRedis(t, port)
	c := newCluster(t, 400, e2e.Slow(5*time.Millisecond), "127.0.0.1:"+strconv.Itoa(port), map[string]string{
		"MESSAGE_FETCH_LIMIT": "40", "MAX_CONCURRENT_JOBS": "4",
	})
	procs := []*e2e.Proc{c.start("scheduler"), c.start("worker-1"), c.start("worker-2")}
	testenv.Eventually(t, 20*time.Second, "first deliveries", func() bool { return c.count("sent") >= 80 })
	_ = rds.Process.Signal(syscall.SIGKILL)
	time.Sleep(time.Second) //nolint:forbidigo // the length of the outage
	startRedis(t, port)
	c.waitDone(90*time.Second, 0)
	ctl, err := store.New(c.pool).Control(context.Background())
	if err != nil || !ctl.Running {
		t.Fatalf("running state after the Redis restart: %+v %v", ctl, err)
	}
	assertAlive(t, procs)
	e2e.StopAll(t, 20*time.Second, procs...)
	c.report(start, "3 Redis restarted (data lost)", "running state kept in PostgreSQL")
}

// Scenario 5: SIGTERM during a busy run. Every process exits 0 within
// SERVER_GRACE_PERIOD, and no row stays claimed.
func TestSigtermUnderLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	const grace = 3
	c := newCluster(t, 500, e2e.Slow(400*time.Millisecond), testenv.RedisAddr(), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "4", "SERVER_GRACE_PERIOD": strconv.Itoa(grace),
	})
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{c.start("scheduler"), c.start("worker-1"), c.start("worker-2"), c.start("worker-3"),
		c.start("api", "HTTP_PORT="+strconv.Itoa(port))}
	testenv.Eventually(t, 20*time.Second, "a busy run", func() bool { return c.count("sent") >= 30 })
	t0 := time.Now()
	for _, p := range procs {
		_ = p.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		code, err := p.Wait(grace*time.Second + 5*time.Second)
		if err != nil || code != 0 {
			t.Errorf("%s: exit %d, %v", p.Name, code, err)
		}
	}
	took := time.Since(t0)
	if took > grace*time.Second+2*time.Second {
		t.Errorf("shutdown took %s, grace is %ds", took, grace)
	}
	if n := c.count("sending"); n != 0 {
		t.Fatalf("%d rows still claimed after every process exited", n)
	}
	// Resume and drain the rest.
	more := []*e2e.Proc{c.start("scheduler"), c.start("worker-1"), c.start("worker-2"), c.start("worker-3")}
	c.waitDone(120*time.Second, 0)
	e2e.StopAll(t, 20*time.Second, more...)
	c.report(start, "5 SIGTERM under load", fmt.Sprintf("all exited 0 in %s; 0 rows left claimed", took.Round(10*time.Millisecond)))
}

// Soak: 100,000 messages through three workers with 5% webhook failures and
// a worker restart every 20 s. Runs only with -soak (make faults).
func TestSoak(t *testing.T) {
	if !*soak {
		t.Skip("soak runs with -soak (make faults)")
	}
	t.Parallel()
	start := time.Now()
	c := newCluster(t, 100000, func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
		if rand.IntN(100) < 5 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	}, testenv.RedisAddr(), map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "16", "MAX_ATTEMPTS": "20", "LOG_LEVEL": "WARN",
		// Seconds, not the default's hours: at 5% failures one message in
		// 100,000 is expected to fail four times in a row.
		"RETRY_SCHEDULE": "1s,2s,5s,10s,30s",
	})
	sched := c.start("scheduler")
	workers := []*e2e.Proc{c.start("worker-1"), c.start("worker-2"), c.start("worker-3")}
	rssStart := map[string]int64{}
	testenv.Eventually(t, 60*time.Second, "the drain to start", func() bool { return c.count("sent") > 1000 })
	for _, w := range workers {
		rssStart[w.Name] = rssKiB(w.PID())
	}
	restarts := 0
	deadline := time.Now().Add(15 * time.Minute)
	for c.count("sent") < len(c.ids) {
		if time.Now().After(deadline) {
			t.Fatalf("soak did not finish: %d of %d sent", c.count("sent"), len(c.ids))
		}
		time.Sleep(20 * time.Second) //nolint:forbidigo // the restart period of the soak
		i := restarts % len(workers)
		e2e.StopAll(t, 20*time.Second, workers[i])
		workers[i] = c.start(workers[i].Name)
		restarts++
	}
	var notes []string
	for _, w := range workers {
		notes = append(notes, fmt.Sprintf("%s RSS %d→%d MiB", w.Name, rssStart[w.Name]/1024, rssKiB(w.PID())/1024))
	}
	e2e.StopAll(t, 20*time.Second, append(workers, sched)...)
	c.report(start, "6 soak: 5% failures, worker restart every 20s",
		fmt.Sprintf("%d restarts; %s (restarted workers report their own start)", restarts, strings.Join(notes, ", ")))
}

func rssKiB(pid int) int64 {
	m, err := e2e.ReadMemory(pid)
	if err != nil {
		return 0
	}
	return m.RSS >> 10
}
