package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Options configure a System.
type Options struct {
	// Bin is the folder the programs were built into (RunWithBinaries).
	Bin string
	// Messages is how many rows InsertMessages puts in the database.
	Messages int
	// Respond overrides the local receiver's answers; nil accepts all.
	Respond sink.Responder
	// Vars override BaseEnv; an empty value removes the variable.
	Vars map[string]string
	// RedisAddr is the Redis the programs use; testenv.RedisAddr() if empty.
	RedisAddr string
	// Unmigrated leaves the new database empty, for the programs (or the
	// test) to create the schema.
	Unmigrated bool
	// Sink and WebhookURL name a receiver the test serves itself; both or
	// neither. Without them the System serves a sink.New(Respond).
	Sink       *sink.Sink
	WebhookURL string
	// StopTimeout bounds the exit of the programs still running when the
	// test ends; DefaultStopTimeout if zero.
	StopTimeout time.Duration
}

// DefaultStopTimeout is how long a program may take to exit after SIGTERM,
// both in System.StopAll and when the System stops what is still running
// at the end of a test.
const DefaultStopTimeout = 30 * time.Second

// System is one test's whole deployment as processes: a database of its
// own, a queue of its own, a local webhook receiver, and the api, scheduler
// and workers the test starts by name. Programs still running when the test
// ends get SIGTERM and must exit 0.
type System struct {
	t     testing.TB
	bin   string
	URI   string        // the database, reached directly
	Queue string        // the programs' QUEUE_NAME
	Pool  *pgxpool.Pool // a pool on URI for the test's own queries
	Sink  *sink.Sink    // what the receiver got
	IDs   []string      // the rows InsertMessages put in, in age order
	env   map[string]string
	procs []*Proc
	stop  time.Duration
}

// NewSystem creates the database, the queue and the receiver. It starts no
// program.
func NewSystem(t testing.TB, o Options) *System {
	t.Helper()
	if o.Bin == "" {
		t.Fatal("e2e.Options.Bin is empty: build the programs with RunWithBinaries")
	}
	if (o.Sink == nil) != (o.WebhookURL == "") {
		t.Fatal("e2e.Options: set both Sink and WebhookURL, or neither")
	}
	uri := testenv.NewDatabase(t)
	pool := testenv.NewPool(t, uri)
	if !o.Unmigrated {
		if err := store.Migrate(context.Background(), pool, testenv.Logger(t)); err != nil {
			t.Fatal(err)
		}
	}
	s := &System{t: t, bin: o.Bin, URI: uri, Pool: pool, Sink: o.Sink, stop: o.StopTimeout}
	if s.stop == 0 {
		s.stop = DefaultStopTimeout
	}
	hookURL := o.WebhookURL
	if s.Sink == nil {
		s.Sink, hookURL = NewReceiver(t, o.Respond)
	}
	redisAddr := o.RedisAddr
	if redisAddr == "" {
		redisAddr = testenv.RedisAddr()
	}
	s.Queue = testenv.Queue(t)
	s.env = BaseEnv(uri, redisAddr, s.Queue, hookURL)
	for k, v := range o.Vars {
		s.Setenv(k, v)
	}
	if o.Messages > 0 {
		s.Insert(o.Messages)
	}
	// Registered last, so it runs before the receiver and the database go.
	t.Cleanup(s.stopRunning)
	return s
}

// NewReceiver serves a local webhook receiver (sink.New(respond)) until t
// ends and returns it with its URL.
func NewReceiver(t testing.TB, respond sink.Responder) (*sink.Sink, string) {
	t.Helper()
	s := sink.New(respond, nil)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// Setenv sets a variable for the programs started from now on; an empty
// value removes it.
func (s *System) Setenv(key, value string) {
	if value == "" {
		delete(s.env, key)
		return
	}
	s.env[key] = value
}

// Insert adds n rows as another system would and appends their ids to IDs.
func (s *System) Insert(n int) []string {
	s.t.Helper()
	ids := testenv.InsertMessages(s.t, s.Pool, n)
	s.IDs = append(s.IDs, ids...)
	return ids
}

// Start runs the program that name names (name without a "-N" suffix:
// "worker-2" runs worker) with the System's environment and extra
// KEY=VALUE pairs.
func (s *System) Start(name string, extra ...string) *Proc {
	s.t.Helper()
	prog := strings.TrimRight(name, "-0123456789")
	p := launch(s.t, filepath.Join(s.bin, prog), name, Env(s.env, extra...))
	s.procs = append(s.procs, p)
	return p
}

// StartAPI runs the api on a free port and waits until its /readyz answers
// 200. It returns the process and the api's base URL.
func (s *System) StartAPI(extra ...string) (*Proc, string) {
	s.t.Helper()
	port := FreePort(s.t)
	p := s.Start("api", append([]string{"HTTP_PORT=" + strconv.Itoa(port)}, extra...)...)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.Eventually(s.t, 20*time.Second, "the api to answer /readyz", func() bool {
		return GetStatus(base+"/readyz") == 200
	})
	return p, base
}

// Count is the number of rows with status; a failed query fails the test.
func (s *System) Count(status string) int {
	s.t.Helper()
	var n int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = $1`, status).Scan(&n); err != nil {
		s.t.Fatalf("count %s messages: %v", status, err)
	}
	return n
}

// WaitFor waits up to timeout for Count(status) to reach at least n.
func (s *System) WaitFor(timeout time.Duration, status string, n int, what string) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, what, func() bool { return s.Count(status) >= n })
}

// WaitSent waits up to timeout for every row of IDs to be sent.
func (s *System) WaitSent(timeout time.Duration) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, "every message sent", func() bool { return s.Count("sent") == len(s.IDs) })
}

// WaitSettled waits up to timeout for every row of IDs to be sent or
// failed, with exactly failing of them failed.
func (s *System) WaitSettled(timeout time.Duration, failing int) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, "every message sent or failed", func() bool {
		failed := s.Count("failed")
		return s.Count("sent")+failed == len(s.IDs) && failed == failing
	})
}

// Ledger checks what the receiver accepted against the table (see
// CheckLedger).
func (s *System) Ledger(wantFailed map[string]bool) Ledger {
	s.t.Helper()
	return CheckLedger(s.t, s.Pool, s.Sink, wantFailed)
}

// AssertAlive fails the test for every program of procs that has exited:
// a fault must be survived, not restarted from.
func (s *System) AssertAlive(procs ...*Proc) {
	s.t.Helper()
	for _, p := range procs {
		if p.Exited() {
			s.t.Errorf("%s exited on its own", p.Name)
		}
	}
}

// StopAll stops procs as StopAll does, within the System's stop timeout.
func (s *System) StopAll(procs ...*Proc) {
	s.t.Helper()
	StopAll(s.t, s.stop, procs...)
}

// stopRunning ends the programs still running when the test ends: SIGTERM
// and exit 0 within the stop timeout while the test has passed so far, SIGKILL
// once it failed. Every program's output is logged when the test failed.
func (s *System) stopRunning() {
	var running []*Proc
	for _, p := range s.procs {
		if !p.Exited() {
			running = append(running, p)
		}
	}
	if !s.t.Failed() {
		for _, p := range running {
			if err := p.Signal(syscall.SIGTERM); err != nil {
				s.t.Errorf("stop %s: %v", p.Name, err)
			}
		}
		for _, p := range running {
			if code, err := p.Wait(s.stop); err != nil || code != 0 {
				s.t.Errorf("%s: exit %d, %v", p.Name, code, err)
			}
		}
	}
	for _, p := range s.procs {
		p.reap(s.t)
	}
}

// GetStatus is the status code of GET url, or 0 when it cannot be reached.
func GetStatus(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close() // only the status is read
	return resp.StatusCode
}
