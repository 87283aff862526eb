package faults_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/sink"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// recordFault is how long PostgreSQL refuses to record a message as sent.
const recordFault = 15 * time.Second

// Records fail while calls would work: mid-drain, a trigger refuses every
// change of a message to 'sent' for 15 s (a full disk, a lock timeout, a
// failover would refuse writes the same way). The workers must start no
// call meanwhile but the ones already in flight or queued, keep the
// outcomes of those and write them once the trigger is gone, say so on
// /readyz and in their metrics, and go on by themselves.
//
// The bound on calls while the trigger is present is what the two
// workers can hold claimed: each holds at most MAX_CONCURRENT_JOBS rows in
// calls plus QueueSize queued (delivery.QueueFactor × MAX_CONCURRENT_JOBS
// = 32 by default), so 2 × (4 + 32) = 72. Calls may start only until a
// worker's first refused write, a few milliseconds in; none may start
// after the first 3 s of the fault.
//
// WEBHOOK_TIMEOUT is the default 10 s, so the lease is the default 30 s
// and outlasts the fault: every outcome is kept and written when the
// trigger goes, and no message is accepted twice, not even those in
// flight when the trigger came. A fault longer than the lease gives
// outcomes up shortly before the lease ends, and those messages are sent
// again after it, with the same Idempotency-Key.
func TestRecordFailureStopsCalls(t *testing.T) {
	t.Parallel()
	start := time.Now()
	const (
		messages, workers, jobs = 500, 2, 4
		bound                   = workers * (jobs + 8*jobs)
	)
	var (
		window     atomic.Bool  // the trigger is present
		inWindow   atomic.Int64 // POSTs that arrived while it was
		lateWindow atomic.Int64 // ... after its first 3 s
		settled    atomic.Bool
	)
	c := newSystem(t, e2e.Options{Messages: messages, Respond: func(http.ResponseWriter, *http.Request, sink.Delivery, int) bool {
		if window.Load() {
			inWindow.Add(1)
			if settled.Load() {
				lateWindow.Add(1)
			}
		}
		time.Sleep(20 * time.Millisecond) //nolint:forbidigo // a receiver that takes a moment, so the drain lasts
		return false
	}, Vars: map[string]string{
		"MESSAGE_FETCH_LIMIT": "100000", "MAX_CONCURRENT_JOBS": strconv.Itoa(jobs), "WEBHOOK_TIMEOUT": "10",
	}})
	ports := []int{e2e.FreePort(t), e2e.FreePort(t)}
	procs := []*e2e.Proc{c.Start("scheduler"),
		c.Start("worker-1", "METRICS_PORT="+strconv.Itoa(ports[0])),
		c.Start("worker-2", "METRICS_PORT="+strconv.Itoa(ports[1]))}
	get := func(port int, path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0, ""
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, ""
		}
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 30*time.Second, "the drain under way", func() bool { return c.Count("sent") >= 100 })

	ctx := context.Background()
	if _, err := c.Pool.Exec(ctx, `
CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the fault test refuses to record a message as sent'; END $$;
CREATE TRIGGER refuse_sent BEFORE UPDATE ON messages FOR EACH ROW
WHEN (NEW.status = 'sent' AND OLD.status IS DISTINCT FROM 'sent') EXECUTE FUNCTION refuse_sent()`); err != nil {
		t.Fatal(err)
	}
	window.Store(true)
	sentAtFault := c.Count("sent")
	faultEnds := time.NewTimer(recordFault)
	defer faultEnds.Stop()

	testenv.Eventually(t, 5*time.Second, "both workers' /readyz to answer 503", func() bool {
		a, _ := get(ports[0], "/readyz")
		b, _ := get(ports[1], "/readyz")
		return a == http.StatusServiceUnavailable && b == http.StatusServiceUnavailable
	})
	code, body := get(ports[0], "/readyz")
	if !strings.Contains(body, `"status":"unavailable"`) || !strings.Contains(body, `"record_outcomes":"unavailable"`) {
		t.Errorf("/readyz while records fail: %d %s", code, body)
	}
	settle := time.NewTimer(3 * time.Second)
	defer settle.Stop()
	<-settle.C
	settled.Store(true)
	<-faultEnds.C // the fault lasts its 15 s
	if n := c.Count("sent"); n != sentAtFault {
		t.Errorf("%d messages became sent while the trigger refused it", n-sentAtFault)
	}
	if _, err := c.Pool.Exec(ctx, `DROP TRIGGER refuse_sent ON messages; DROP FUNCTION refuse_sent()`); err != nil {
		t.Fatal(err)
	}
	window.Store(false)
	calls, late := inWindow.Load(), lateWindow.Load()
	acceptedAtDrop := map[string]int{}
	for _, d := range c.Sink.Accepted() {
		acceptedAtDrop[d.IdempotencyKey]++
	}

	testenv.Eventually(t, 15*time.Second, "both workers' /readyz to answer 200 again", func() bool {
		a, _ := get(ports[0], "/readyz")
		b, _ := get(ports[1], "/readyz")
		return a == http.StatusOK && b == http.StatusOK
	})
	c.WaitSettled(90*time.Second, 0)
	c.AssertAlive(procs...)

	failures := 0.0
	for _, port := range ports {
		_, metrics := get(port, "/metrics")
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, "messaging_record_failures_total "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				failures += f
			}
		}
	}
	e2e.StopAll(t, 20*time.Second, procs...)

	if calls > bound {
		t.Errorf("%d calls while records failed, want at most %d (the rows the workers held)", calls, bound)
	}
	if late != 0 {
		t.Errorf("%d calls started more than 3 s into the fault", late)
	}
	if failures == 0 {
		t.Error("messaging_record_failures_total stayed 0")
	}
	// Accepted twice after the trigger went: a repeat of a message that was
	// accepted before it went, or twice after.
	twice := 0
	for key, n := range countAccepted(c.Sink) {
		if n > 1 && n > acceptedAtDrop[key] {
			twice++
		}
	}
	if twice != 0 {
		t.Errorf("%d messages accepted twice after the trigger went", twice)
	}
	for _, w := range procs[1:] {
		began := strings.Count(w.Output(), "recording outcomes fails; no new calls until it works")
		ended := strings.Count(w.Output(), "recording outcomes works again; calls resume")
		if began != 1 || ended != 1 {
			t.Errorf("%s logged %d starts and %d ends of the record failure, want 1 and 1", w.Name, began, ended)
		}
	}
	r := row{Ledger: c.Ledger(nil)}
	if r.Repeats != 0 {
		t.Errorf("%d repeated deliveries; the lease outlasts the fault, so none is expected", r.Repeats)
	}
	r.Scenario, r.Took = "11 records refused for 15 s mid-drain", time.Since(start)
	r.Note = fmt.Sprintf("%d calls while refused (bound %d), %d after its first 3 s; %.0f failed record statements; /readyz 503 then 200",
		calls, bound, late, failures)
	record(r)
}

func countAccepted(s *sink.Sink) map[string]int {
	out := map[string]int{}
	for _, d := range s.Accepted() {
		out[d.IdempotencyKey]++
	}
	return out
}
