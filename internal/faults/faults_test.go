package faults_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// newSystem is a scenario's System: the programs log at INFO and cache
// sent records for 120 s, under o.Vars.
func newSystem(t *testing.T, o e2e.Options) *e2e.System {
	t.Helper()
	vars := map[string]string{"REDIS_TTL": "120", "LOG_LEVEL": "INFO"}
	for k, v := range o.Vars {
		vars[k] = v
	}
	o.Bin, o.Vars = binDir, vars
	return e2e.NewSystem(t, o)
}

// report checks the ledger (every row must be sent) and adds the scenario's
// row to the table.
func report(t *testing.T, s *e2e.System, start time.Time, scenario, note string) {
	t.Helper()
	r := row{Ledger: s.Ledger(nil)}
	r.Scenario, r.Took, r.Note = scenario, time.Since(start), note
	record(r)
}

// Scenario 1: one of three workers is killed with SIGKILL in the middle of a
// backlog; its leased rows are delivered by the others once the lease ends.
func TestKillWorkerMidBacklog(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := newSystem(t, e2e.Options{Messages: 3000, Respond: e2e.Slow(20 * time.Millisecond), Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "8",
	}})
	sched := c.Start("scheduler")
	w := []*e2e.Proc{c.Start("worker-1"), c.Start("worker-2"), c.Start("worker-3")}
	testenv.Eventually(t, 30*time.Second, "a third of the backlog", func() bool { return c.Count("sent") >= 1000 })
	if err := w[1].Kill(); err != nil {
		t.Fatal(err)
	}
	// The lease is 2*WEBHOOK_TIMEOUT+10s = 14s.
	c.WaitSettled(90*time.Second, 0)
	e2e.StopAll(t, 20*time.Second, sched, w[0], w[2])
	report(t, c, start, "1 kill -9 one of 3 workers", "repeats are the killed worker's calls in flight")
}

// Scenario 2: every PostgreSQL connection is cut and new ones refused for a
// while; the programs recover without a restart and /readyz reports it.
func TestPostgresConnectionsCut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := newSystem(t, e2e.Options{Messages: 600, Respond: e2e.Slow(5 * time.Millisecond), Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "40", "MAX_CONCURRENT_JOBS": "4",
	}})
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{c.Start("scheduler"), c.Start("worker-1"), c.Start("worker-2"), c.Start("api", "HTTP_PORT="+strconv.Itoa(port))}
	readyz := func() int { return e2e.GetStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) }
	testenv.Eventually(t, 20*time.Second, "api ready and first deliveries", func() bool { return readyz() == 200 && c.Count("sent") >= 80 })

	u, err := url.Parse(c.URI)
	if err != nil {
		t.Fatal(err)
	}
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
	c.WaitSettled(90*time.Second, 0)
	c.AssertAlive(procs...)
	e2e.StopAll(t, 20*time.Second, procs...)
	report(t, c, start, "2 PostgreSQL connections cut", "/readyz 503 then 200")
}

// Scenario 3: Redis restarts and loses everything (it keeps nothing on
// disk); sending resumes at the next tick and the running state, kept in
// PostgreSQL, is unchanged.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	port := e2e.FreePort(t)
	rds := e2e.StartRedis(t, "redis", port, nil)
	c := newSystem(t, e2e.Options{Messages: 400, Respond: e2e.Slow(5 * time.Millisecond), RedisAddr: "127.0.0.1:" + strconv.Itoa(port), Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "40", "MAX_CONCURRENT_JOBS": "4",
	}})
	procs := []*e2e.Proc{c.Start("scheduler"), c.Start("worker-1"), c.Start("worker-2")}
	testenv.Eventually(t, 20*time.Second, "first deliveries", func() bool { return c.Count("sent") >= 80 })
	rds.Kill()
	time.Sleep(time.Second) //nolint:forbidigo // the length of the outage
	e2e.StartRedis(t, "redis", port, nil)
	c.WaitSettled(90*time.Second, 0)
	ctl, err := store.New(c.Pool).Control(context.Background())
	if err != nil || !ctl.Running {
		t.Fatalf("running state after the Redis restart: %+v %v", ctl, err)
	}
	c.AssertAlive(procs...)
	e2e.StopAll(t, 20*time.Second, procs...)
	report(t, c, start, "3 Redis restarted (data lost)", "running state kept in PostgreSQL")
}

// Scenario 5: SIGTERM during a busy run. Every process exits 0 within
// SERVER_GRACE_PERIOD, and no row stays claimed.
func TestSigtermUnderLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	const grace = 3
	c := newSystem(t, e2e.Options{Messages: 500, Respond: e2e.Slow(400 * time.Millisecond), Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "4", "SERVER_GRACE_PERIOD": strconv.Itoa(grace),
	}})
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{c.Start("scheduler"), c.Start("worker-1"), c.Start("worker-2"), c.Start("worker-3"),
		c.Start("api", "HTTP_PORT="+strconv.Itoa(port))}
	testenv.Eventually(t, 20*time.Second, "a busy run", func() bool { return c.Count("sent") >= 30 })
	t0 := time.Now()
	for _, p := range procs {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
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
	if n := c.Count("sending"); n != 0 {
		t.Fatalf("%d rows still claimed after every process exited", n)
	}
	// Resume and drain the rest.
	more := []*e2e.Proc{c.Start("scheduler"), c.Start("worker-1"), c.Start("worker-2"), c.Start("worker-3")}
	c.WaitSettled(120*time.Second, 0)
	e2e.StopAll(t, 20*time.Second, more...)
	report(t, c, start, "5 SIGTERM under load", fmt.Sprintf("all exited 0 in %s; 0 rows left claimed", took.Round(10*time.Millisecond)))
}

// Soak: 100,000 messages through three workers with 5% webhook failures and
// a worker restart every 20 s. Runs only with -soak (make faults).
func TestSoak(t *testing.T) {
	if !*soak {
		t.Skip("soak runs with -soak (make faults)")
	}
	t.Parallel()
	start := time.Now()
	c := newSystem(t, e2e.Options{Messages: 100000, Respond: func(w http.ResponseWriter, _ *http.Request, _ sink.Delivery, _ int) bool {
		if rand.IntN(100) < 5 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	}, Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": "16", "MAX_ATTEMPTS": "20", "LOG_LEVEL": "WARN",
		// Seconds, not the default's hours: at 5% failures one message in
		// 100,000 is expected to fail four times in a row.
		"RETRY_SCHEDULE": "1s,2s,5s,10s,30s",
	}})
	sched := c.Start("scheduler")
	workers := []*e2e.Proc{c.Start("worker-1"), c.Start("worker-2"), c.Start("worker-3")}
	rssStart := map[string]int64{}
	testenv.Eventually(t, 60*time.Second, "the drain to start", func() bool { return c.Count("sent") > 1000 })
	for _, w := range workers {
		rssStart[w.Name] = rssKiB(w.PID())
	}
	restarts := 0
	deadline := time.Now().Add(15 * time.Minute)
	for c.Count("sent") < len(c.IDs) {
		if time.Now().After(deadline) {
			t.Fatalf("soak did not finish: %d of %d sent", c.Count("sent"), len(c.IDs))
		}
		time.Sleep(20 * time.Second) //nolint:forbidigo // the restart period of the soak
		i := restarts % len(workers)
		e2e.StopAll(t, 20*time.Second, workers[i])
		workers[i] = c.Start(workers[i].Name)
		restarts++
	}
	var notes []string
	for _, w := range workers {
		notes = append(notes, fmt.Sprintf("%s RSS %d→%d MiB", w.Name, rssStart[w.Name]/1024, rssKiB(w.PID())/1024))
	}
	e2e.StopAll(t, 20*time.Second, append(workers, sched)...)
	report(t, c, start, "6 soak: 5% failures, worker restart every 20s",
		fmt.Sprintf("%d restarts; %s (restarted workers report their own start)", restarts, strings.Join(notes, ", ")))
}

func rssKiB(pid int) int64 {
	m, err := e2e.ReadMemory(pid)
	if err != nil {
		return 0
	}
	return m.RSS >> 10
}
