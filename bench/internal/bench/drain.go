package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/store"
)

// DrainResult is one backlog drain.
type DrainResult struct {
	Workers, Concurrency int
	// Backlog is how many messages were inserted; Messages how many the
	// database shows sent when the workers stopped: fewer only when the
	// drain hit its timeout (TimedOut), and then the rates and latencies
	// are those of the part that was drained.
	Backlog, Messages int
	TimedOut          bool
	// PurgeRows is how many finished rows, older than RETENTION_PERIOD, the
	// database held besides the backlog, for the scheduler's retention
	// purge to delete while the workers drained; Purged is how many it had
	// deleted by the time the sink had every message.
	PurgeRows, Purged int
	// Callbacks is how many status callbacks the local callback receiver
	// had accepted when the drain ended; -1 when callbacks were off.
	Callbacks int
	// Stuck counts rows neither sent nor pending after the workers stopped
	// (an outcome that could not be recorded leaves its row 'sending' until
	// the lease expires).
	Stuck int
	// Elapsed is the drain's duration: from the first claim statement's
	// start to the last outcome written (claim clock), or from the first to
	// the last webhook receipt without it.
	Elapsed time.Duration
	// ClaimClock says whether the latency fields below were measured.
	ClaimClock bool
	// Latencies in seconds, per message. Ack is sent_at: the worker has read
	// the webhook's 2xx. Recorded is the outcome UPDATE writing the row.
	// Receipt is the sink seeing the request.
	ClaimToAck, ClaimToRecorded, ClaimToReceipt, ReceiptToAck Quantiles
	// PeakRSS is the largest VmHWM of the worker processes, bytes.
	PeakRSS int64
	// Transactions is the database's xact_commit+xact_rollback delta over
	// the drain: every statement of the workers and the scheduler.
	Transactions int64
	// Claims is how many claim statements the workers ran (including ones
	// that found nothing); Claimed is how many rows they returned. From the
	// workers' /metrics.
	Claims, Claimed float64
	// ClaimMean is the mean claim statement time, seconds (worker's view).
	ClaimMean float64
	// Webhook is the webhook call time, seconds, estimated from the
	// workers' histogram (bucket interpolation).
	Webhook              Quantiles
	Requests, Duplicates int
	// WorkerErrors counts ERROR lines the workers logged; ErrorSamples
	// holds the first few of each program's, the scheduler's included.
	WorkerErrors int
	ErrorSamples []string
	// Statements is what a traced worker counted per statement (profiled
	// run and River peer only).
	Statements map[string]StatementStat
	// CPUBusy is how busy all cores of the machine were while the sink
	// received the backlog, in percent of all cores, from /proc/stat;
	// CPUSpan is the span it covers. CPUMeasured is false without
	// /proc/stat.
	CPUBusy     float64
	CPUSpan     time.Duration
	CPUMeasured bool
	// ReceiverDelay is how long the sink held every answer.
	ReceiverDelay time.Duration
	// Peer names the River variant for a River peer drain ("" for this
	// project's programs); JobsNotCompleted counts its River jobs left in
	// another state than completed after the River client stopped.
	Peer             string
	JobsNotCompleted int
}

// SlotsPerLatency is what the call slots allow against a slow receiver:
// workers × MAX_CONCURRENT_JOBS calls in flight, each taking the receiver's
// delay, messages/s. 0 without a delay.
func (d DrainResult) SlotsPerLatency() float64 {
	if d.ReceiverDelay <= 0 {
		return 0
	}
	return float64(d.Workers*d.Concurrency) / d.ReceiverDelay.Seconds()
}

// TracedStatements is how many statements the traced process sent (every
// query, BEGIN and COMMIT included, and each statement of a batch or COPY;
// prepares and new connections left out), 0 when none was traced.
func (d DrainResult) TracedStatements() int64 {
	var n int64
	for k, st := range d.Statements {
		if k != "(prepare)" && k != "(connect)" {
			n += st.Count
		}
	}
	return n
}

// Rate is messages per second.
func (d DrainResult) Rate() float64 { return rate(d.Messages, d.Elapsed) }

// PerMessage is transactions per delivered message.
func (d DrainResult) PerMessage() float64 {
	if d.Messages == 0 {
		return 0
	}
	return float64(d.Transactions) / float64(d.Messages)
}

// PerClaim is transactions per claim statement: the round trips one batch
// of messages costs (the batch's claim, its outcomes, and its share of the
// per-tick statements).
func (d DrainResult) PerClaim() float64 {
	if d.Claims == 0 {
		return 0
	}
	return float64(d.Transactions) / d.Claims
}

// BatchSize is the mean number of rows per claim statement.
func (d DrainResult) BatchSize() float64 {
	if d.Claims == 0 {
		return 0
	}
	return d.Claimed / d.Claims
}

// drainSpec says how to run one drain.
type drainSpec struct {
	env         Env
	workers     int
	concurrency int
	messages    int
	tag         string
	scheduler   string
	worker      string
	// workerArgs returns the arguments of worker i and the file it writes
	// its statement counts to ("" when it writes none).
	workerArgs func(i int) (args []string, statements string)
	claimClock bool
	// migrations builds the schema (nil: this code's, store.Migrations);
	// a baseline drain gives its revision's own.
	migrations fs.FS
	// receiverDelay makes the sink hold every answer this long.
	receiverDelay time.Duration
	// purgeRows, when positive, adds that many finished rows two days old
	// and runs the scheduler with a one-day retention, so that its purge
	// deletes them while the workers drain.
	purgeRows int
	// callbacks turns status callbacks on, to a local receiver that
	// accepts every one.
	callbacks bool
	// noOutbox drops the trigger that records status callback events,
	// for a drain without any of their cost.
	noOutbox bool
	// providers, when 2 or more, names that many providers (PROVIDERS),
	// all at the sink, with the default route through them in order.
	providers int
	timeout   time.Duration
	log       *slog.Logger
}

// runDrain inserts the backlog in a fresh database, starts one scheduler
// and the worker processes against a fresh sink, waits until the sink has
// every message, stops the programs the way an orchestrator would (SIGTERM,
// so every outcome is recorded), and reads the measurements.
func runDrain(ctx context.Context, sp drainSpec) (res DrainResult, err error) {
	res = DrainResult{Workers: sp.workers, Concurrency: sp.concurrency, Backlog: sp.messages, ClaimClock: sp.claimClock,
		ReceiverDelay: sp.receiverDelay, Callbacks: -1}
	gen := Generator{Prefix: sp.tag}
	cleanCtx := context.WithoutCancel(ctx)

	db, err := createDatabase(ctx, sp.env.PostgresURI, "bench")
	if err != nil {
		return res, err
	}
	defer func() {
		if derr := db.drop(cleanCtx); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := prepareBacklog(ctx, db, sp.migrations, gen, sp.messages, sp.claimClock); err != nil {
		return res, err
	}
	if sp.noOutbox {
		if err := dropOutbox(ctx, db); err != nil {
			return res, err
		}
	}
	if sp.purgeRows > 0 {
		res.PurgeRows = sp.purgeRows
		if err := insertFinished(ctx, db, sp.purgeRows); err != nil {
			return res, err
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: sp.env.RedisAddr})
	defer func() { _ = rdb.Close() }()
	queue := "bench_" + randomHex(5)
	defer func() {
		if cerr := cleanRedis(cleanCtx, rdb, sp.env.RedisAddr, queue, gen, sp.messages); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	rcv, err := startReceiver(ctx, sp.messages, sp.receiverDelay)
	if err != nil {
		return res, err
	}
	defer rcv.close()

	if err := db.waitIdle(ctx, 30*time.Second); err != nil {
		return res, err
	}
	before, err := db.transactions(ctx)
	if err != nil {
		return res, err
	}

	host, port, _ := strings.Cut(sp.env.RedisAddr, ":")
	base := []string{
		"POSTGRES_URI=" + db.uri, "REDIS_HOST=" + host, "REDIS_PORT=" + port,
		"QUEUE_NAME=" + queue, "WEBHOOK_URL=" + rcv.url,
		"CRON_INTERVAL=1", "MESSAGE_FETCH_LIMIT=100000",
		"MAX_CONCURRENT_JOBS=" + strconv.Itoa(sp.concurrency),
		"LOG_LEVEL=WARN", "REDIS_TTL=900",
	}
	var cbr *callbackReceiver
	if sp.callbacks {
		if cbr, err = startCallbackReceiver(ctx); err != nil {
			return res, err
		}
		defer cbr.close()
		base = append(base, "STATUS_CALLBACK_URL="+cbr.url)
	}
	if sp.providers > 1 {
		names := make([]string, sp.providers)
		for i := range names {
			names[i] = fmt.Sprintf("p%d", i+1)
			base = append(base, fmt.Sprintf("PROVIDER_P%d_URL=%s", i+1, rcv.url))
		}
		base = append(base, "PROVIDERS="+strings.Join(names, ","))
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			_ = p.stop(5 * time.Second) // only still running after an error
		}
	}()
	schedEnv := []string{"METRICS_PORT=0", "APP_NAME=bench-scheduler"}
	if sp.purgeRows > 0 {
		schedEnv = append(schedEnv, "RETENTION_PERIOD=1d", "RETENTION_INTERVAL=1s")
	}
	sched, err := startProc(ctx, "scheduler", sp.scheduler, nil, slices.Concat(base, schedEnv))
	if err != nil {
		return res, err
	}
	procs = append(procs, sched)
	if sp.purgeRows > 0 {
		// The workers start once the purge is under way, so that the
		// drain runs beside it and not before it.
		if err := waitPurging(ctx, db, sp.purgeRows); err != nil {
			return res, err
		}
	}
	workers := make([]*proc, sp.workers)
	ports := make([]int, sp.workers)
	stmtFiles := make([]string, sp.workers)
	for i := range workers {
		if ports[i], err = freePort(ctx); err != nil {
			return res, err
		}
		var args []string
		args, stmtFiles[i] = sp.workerArgs(i)
		env := slices.Concat(base, []string{"METRICS_PORT=" + strconv.Itoa(ports[i]), "APP_NAME=bench-worker-" + strconv.Itoa(i)})
		if workers[i], err = startProc(ctx, fmt.Sprintf("worker %d", i), sp.worker, args, env); err != nil {
			return res, err
		}
		procs = append(procs, workers[i])
	}

	if err := waitDelivered(ctx, sp, rcv, procs, &res); err != nil {
		return res, err
	}
	if sp.purgeRows > 0 {
		if res.Purged, err = purgedSoFar(ctx, db, sp.purgeRows); err != nil {
			return res, err
		}
	}
	if cbr != nil {
		res.Callbacks = int(cbr.accepted.Load())
	}

	// Measure inside the workers before they stop.
	var page Samples
	for i, w := range workers {
		ss, err := scrape(ctx, ports[i])
		if err != nil {
			return res, fmt.Errorf("%s: %w", w.name, err)
		}
		page = append(page, ss...)
		m, err := e2e.ReadMemory(w.pid())
		if err != nil {
			return res, fmt.Errorf("%s memory: %w", w.name, err)
		}
		res.PeakRSS = max(res.PeakRSS, m.HWM)
	}
	for _, w := range workers {
		if err := w.stop(90 * time.Second); err != nil {
			return res, err
		}
	}
	if err := sched.stop(30 * time.Second); err != nil {
		return res, err
	}
	procs = nil
	for _, p := range append(workers, sched) {
		n, lines := p.out.errorLines()
		if p != sched {
			res.WorkerErrors += n
		}
		res.ErrorSamples = append(res.ErrorSamples, distinctErrors(p.name, lines)...)
	}

	if err := db.waitIdle(ctx, 30*time.Second); err != nil {
		return res, err
	}
	after, err := db.transactions(ctx)
	if err != nil {
		return res, err
	}
	res.Transactions = after - before

	res.Claims = page.Sum("messaging_claim_duration_seconds_count", nil)
	res.Claimed = page.Sum("messaging_claimed_total", nil)
	if res.Claims > 0 {
		res.ClaimMean = page.Sum("messaging_claim_duration_seconds_sum", nil) / res.Claims
	}
	hook := page.Histogram("messaging_webhook_request_duration_seconds", map[string]string{"outcome": "sent"})
	res.Webhook = Quantiles{P50: HistogramQuantile(0.5, hook), P99: HistogramQuantile(0.99, hook)}
	if len(hook) > 0 {
		res.Webhook.Count = int(hook[len(hook)-1].Count)
	}
	for _, f := range stmtFiles {
		if f == "" {
			continue
		}
		if res.Statements, err = readStatements(f, res.Statements); err != nil {
			return res, err
		}
	}

	first, requests, dups, from, to := rcv.receipts()
	res.Requests, res.Duplicates = requests, dups
	res.Elapsed = to.Sub(from)
	return res, measureOutcomes(ctx, db, sp, readClockSQL, first, &res)
}

// distinctErrors keeps one line per distinct ERROR message (the text
// after the timestamp), so a message repeated every second is listed once.
func distinctErrors(program string, lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		_, msg, ok := strings.Cut(l, " ")
		if !ok {
			msg = l
		}
		if !seen[msg] {
			seen[msg] = true
			out = append(out, program+": "+l)
		}
	}
	return out
}

// prepareBacklog migrates the database with migrations (nil: this code's),
// inserts the backlog, installs the claim clock and gives the planner
// statistics (autovacuum may be off, as it is on the bench machine;
// production's autovacuum would have run).
func prepareBacklog(ctx context.Context, db *database, migrations fs.FS, gen Generator, n int, claimClock bool) error {
	pool, err := db.open(ctx, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if migrations == nil {
		migrations = store.Migrations()
	}
	if err := store.MigrateFS(ctx, pool, migrations, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	if err := gen.Insert(ctx, pool, n); err != nil {
		return err
	}
	if claimClock {
		if _, err := pool.Exec(ctx, claimClockSQL); err != nil {
			return fmt.Errorf("install claim clock: %w", err)
		}
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE messages"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// dropOutbox drops the trigger that writes status callback events: the
// drain then pays nothing for them.
func dropOutbox(ctx context.Context, db *database) error {
	pool, err := db.open(ctx, 1, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `DROP TRIGGER messages_events_upd ON messages`); err != nil {
		return fmt.Errorf("drop the outbox trigger: %w", err)
	}
	return nil
}

// insertFinished adds n sent rows that became final two days ago, for the
// retention purge to delete during a drain.
func insertFinished(ctx context.Context, db *database, n int) error {
	pool, err := db.open(ctx, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	const q = `
INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, created_at, finished_at)
SELECT 'purge-' || g, 'finished', '+905551111111', 'sent', true,
       now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
FROM generate_series(1, $1::int) g`
	if _, err := pool.Exec(ctx, q, n); err != nil {
		return fmt.Errorf("insert finished rows: %w", err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE messages"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// waitPurging waits, for at most 30 s, until the purge has deleted some of
// the n rows insertFinished added.
func waitPurging(ctx context.Context, db *database, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		done, err := purgedSoFar(ctx, db, n)
		if err != nil || done > 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the retention purge did not start within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// purgedSoFar is how many of the n rows insertFinished added are gone.
func purgedSoFar(ctx context.Context, db *database, n int) (int, error) {
	pool, err := db.open(ctx, 1, nil)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE id LIKE 'purge-%'`).Scan(&left); err != nil {
		return 0, fmt.Errorf("count finished rows: %w", err)
	}
	return n - left, nil
}

// waitDelivered waits until the sink has every message once or the timeout
// passes (res.TimedOut), and fails when a program exits. It measures how
// busy the CPUs were from the first receipt it sees (it looks every 20 ms)
// until the sink has them all: the drain, not the programs' start.
func waitDelivered(ctx context.Context, sp drainSpec, rcv *receiver, procs []*proc, res *DrainResult) error {
	deadline := time.Now().Add(sp.timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	var cpu cpuWindow
	cpu.begin() // replaced at the first receipt, unless the drain is over before a tick
	receiving := false
	for rcv.unique() < sp.messages {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if !receiving && rcv.unique() > 0 {
			receiving = true
			cpu.begin()
		}
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("%s exited during the drain: %w\n%s", p.name, p.err, e2e.Tail(p.out.String(), 30))
			}
		}
		if time.Now().After(deadline) {
			res.TimedOut = true
			sp.log.Warn("drain timed out; stopping the programs and reporting what was drained", "delivered", rcv.unique(), "of", sp.messages)
			break
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			sp.log.Info("draining", "delivered", rcv.unique(), "of", sp.messages)
		}
	}
	res.CPUBusy, res.CPUSpan, res.CPUMeasured = cpu.end()
	return nil
}

// measureOutcomes checks that the database recorded every message as sent
// and turns the claim clock into latencies and the drain's duration.
// clockSQL reads the clock rows (see readClock).
func measureOutcomes(ctx context.Context, db *database, sp drainSpec, clockSQL string, receipts map[string]time.Time, res *DrainResult) error {
	pool, err := db.open(ctx, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	var sent, other int
	// The finished rows a purge drain added (insertFinished) are not the
	// backlog.
	err = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status NOT IN ('sent', 'pending'))
FROM messages WHERE id NOT LIKE 'purge-%'`).Scan(&sent, &other)
	if err != nil {
		return err
	}
	res.Messages, res.Stuck = sent, other
	if !res.TimedOut && sent+other != sp.messages {
		return fmt.Errorf("drain: the sink got every message but the database has %d sent and %d neither sent nor pending of %d",
			sent, other, sp.messages)
	}
	if !sp.claimClock {
		return nil
	}
	// Statistics from before the drain say no row is sent; with them the
	// planner nested-looped River's 100,000 jobs against the "one" sent
	// row for many minutes. Autovacuum may be off here.
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze before reading the clock: %w", err)
	}
	rows, err := readClock(ctx, pool, clockSQL)
	if err != nil {
		return err
	}
	if len(rows) != sent {
		return fmt.Errorf("claim clock: %d of %d sent rows carry it", len(rows), sent)
	}
	var ack, rec, toReceipt, fromReceipt []float64
	first, last := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		ack = append(ack, r.ack-r.claimed)
		rec = append(rec, r.recorded-r.claimed)
		if t, ok := receipts[r.id]; ok {
			at := float64(t.UnixNano()) / 1e9
			toReceipt = append(toReceipt, at-r.claimed)
			fromReceipt = append(fromReceipt, r.ack-at)
		}
		first, last = math.Min(first, r.claimed), math.Max(last, r.recorded)
	}
	res.ClaimToAck, res.ClaimToRecorded = Summarize(ack), Summarize(rec)
	res.ClaimToReceipt, res.ReceiptToAck = Summarize(toReceipt), Summarize(fromReceipt)
	res.Elapsed = time.Duration((last - first) * float64(time.Second))
	return nil
}

// cleanRedis deletes the cache records of the run's messages and its asynq
// queue, so repeated runs do not fill the shared Redis.
func cleanRedis(ctx context.Context, rdb *redis.Client, addr, queue string, gen Generator, n int) error {
	const chunk = 5000
	for lo := 0; lo < n; lo += chunk {
		keys := make([]string, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			keys = append(keys, cache.Key(gen.ID(i)))
		}
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("delete cache records: %w", err)
		}
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
	defer func() { _ = insp.Close() }()
	if err := insp.DeleteQueue(queue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("delete queue %s: %w", queue, err)
	}
	// DeleteQueue leaves the queue's processed and failed counters.
	var left []string
	iter := rdb.Scan(ctx, 0, "asynq:{"+queue+"}:*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list queue keys: %w", err)
	}
	if len(left) > 0 {
		if err := rdb.Del(ctx, left...).Err(); err != nil {
			return fmt.Errorf("delete queue keys: %w", err)
		}
	}
	return nil
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// scrape reads a worker's /metrics page.
func scrape(ctx context.Context, port int) (Samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// readStatements adds the counts in a traced worker's statements file to
// into.
func readStatements(path string, into map[string]StatementStat) (map[string]StatementStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return into, fmt.Errorf("statement counts: %w", err)
	}
	var m map[string]StatementStat
	if err := json.Unmarshal(b, &m); err != nil {
		return into, fmt.Errorf("statement counts: %w", err)
	}
	if into == nil {
		into = map[string]StatementStat{}
	}
	for k, v := range m {
		st := into[k]
		st.Count += v.Count
		st.Seconds += v.Seconds
		into[k] = st
	}
	return into, nil
}
