package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/messaging-server/messaging-server/internal/e2e"
)

// The River peer: River drains the same rows to the same sink, in
// the same run, so the project's drain is compared with a maintained
// PostgreSQL job queue on the same machine at the same moment. River lives
// in its own module, bench/river, so the product's go.mod never gains it;
// the bench builds it like the programs and runs it as a child process.
const (
	riverDir = "bench/river"
	// The variants, as bench/river's -variant flag names them.
	RiverUpdate     = "update"
	RiverCompleteTx = "complete-tx"
)

// riverExtraConns is how many connections bench/river's pool holds beyond
// one per job in flight (its -workers + 5).
const riverExtraConns = 5

// RiverVariants are the River drains the bench runs, in order.
var RiverVariants = []string{RiverUpdate, RiverCompleteTx}

// riverVariantName is how the report names a variant.
func riverVariantName(v string) string {
	switch v {
	case RiverUpdate:
		return "River, plain UPDATE + batched completer"
	case RiverCompleteTx:
		return "River, UPDATE + JobCompleteTx in one transaction"
	}
	return "River " + v
}

// buildRiver compiles bench/river into dir (go build -C, so its own go.mod
// and go.sum are used; GOWORK=off so no workspace drags the product in) and
// returns the binary and the River version its go.mod requires. The first
// build downloads River through the Go module proxy; later ones use the
// module cache.
func buildRiver(ctx context.Context, dir string) (bin, version string, err error) {
	root, err := repoRoot()
	if err != nil {
		return "", "", err
	}
	src := filepath.Join(root, riverDir)
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return "", "", fmt.Errorf("the River peer: %w", err)
	}
	if version, err = riverVersion(gomod); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "river-peer")
	cmd := exec.CommandContext(ctx, "go", "build", "-C", src, "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build the River peer (%s): %w\n%s", riverDir, err, out)
	}
	return bin, version, nil
}

// riverVersion reads the version of github.com/riverqueue/river that
// bench/river's go.mod requires.
func riverVersion(gomod []byte) (string, error) {
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return "", fmt.Errorf("the River peer's go.mod: %w", err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/riverqueue/river" {
			return r.Mod.Version, nil
		}
	}
	return "", errors.New("the River peer's go.mod does not require github.com/riverqueue/river")
}

// riverClockSQL is the River peer's clock: the moment its UPDATE writes a
// messages row as sent, in last_error (which the peer never writes), the
// same clock_timestamp() the claim clock stores for this project's
// outcomes. River's own river_job.attempted_at (the fetch statement's
// now()) is the claim time. One PL/pgSQL call per row.
const riverClockSQL = `
CREATE FUNCTION bench_river_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_error := extract(epoch FROM clock_timestamp())::text;
    RETURN NEW;
END $$;
CREATE TRIGGER bench_river_clock BEFORE UPDATE OF status ON messages
    FOR EACH ROW WHEN (NEW.status = 'sent' AND OLD.status <> 'sent') EXECUTE FUNCTION bench_river_clock();`

// riverReadClockSQL returns, per sent message: id, fetched (the job's
// attempted_at), ack (sent_at, the peer's clock after the 2xx) and
// recorded (the row write).
//
// The jobs' ids are extracted once into a materialized set, so the JSON
// expression is computed once per job. That alone did not stop the nested
// loop over 100,000 x 100,000 rows: with the statistics of before the
// drain the planner took the sent rows for a handful. measureOutcomes
// runs ANALYZE before this query; that is what keeps the plan a hash join.
const riverReadClockSQL = `
WITH j AS MATERIALIZED (
    SELECT args->>'id' AS id, attempted_at FROM river_job WHERE attempted_at IS NOT NULL
)
SELECT m.id, extract(epoch FROM j.attempted_at)::float8, extract(epoch FROM m.sent_at)::float8,
       m.last_error::float8
FROM messages m JOIN j ON j.id = m.id
WHERE m.status = 'sent' AND m.last_error IS NOT NULL`

// riverSpec is one River drain.
type riverSpec struct {
	bin, variant string
	// statements is where the peer writes its statement counts.
	statements string
}

// runRiverDrain drains the backlog with the River peer: a fresh database
// with the same rows as a drain of this project, River's tables and one job
// per row (the peer's setup, before anything is measured), then one River
// process with sp.concurrency jobs in flight against a fresh sink, stopped
// with SIGTERM once the sink has every message. Measured as runDrain
// measures: transactions, CPU, peak RSS, the clock, duplicates.
func runRiverDrain(ctx context.Context, sp drainSpec, rs riverSpec) (res DrainResult, err error) {
	res = DrainResult{
		Workers: 1, Concurrency: sp.concurrency, Backlog: sp.messages, ClaimClock: true,
		ReceiverDelay: sp.receiverDelay, Peer: rs.variant,
	}
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
	if err := prepareBacklog(ctx, db, nil, gen, sp.messages, false); err != nil {
		return res, err
	}
	if err := runToEnd(ctx, "River peer setup", rs.bin, []string{"setup", "-postgres", db.uri}, 10*time.Minute); err != nil {
		return res, err
	}
	pool, err := db.open(ctx, 2, nil)
	if err != nil {
		return res, err
	}
	for _, q := range []string{riverClockSQL, "VACUUM ANALYZE messages", "VACUUM ANALYZE river_job"} {
		if _, err := pool.Exec(ctx, q); err != nil {
			pool.Close()
			return res, fmt.Errorf("the River peer's database: %w", err)
		}
	}
	pool.Close()

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

	args := []string{
		"work", "-postgres", db.uri, "-webhook", rcv.url,
		"-workers", strconv.Itoa(sp.concurrency), "-variant", rs.variant, "-statements", rs.statements,
	}
	p, err := startProc(ctx, "River peer", rs.bin, args, nil)
	if err != nil {
		return res, err
	}
	defer func() { _ = p.stop(5 * time.Second) }() // only still running after an error
	if err := waitDelivered(ctx, sp, rcv, []*proc{p}, &res); err != nil {
		return res, err
	}
	m, err := e2e.ReadMemory(p.pid())
	if err != nil {
		return res, fmt.Errorf("the River peer's memory: %w", err)
	}
	res.PeakRSS = m.HWM
	if err := p.stop(90 * time.Second); err != nil {
		return res, err
	}
	n, lines := p.out.errorLines()
	res.WorkerErrors = n
	res.ErrorSamples = distinctErrors(p.name, lines)

	if err := db.waitIdle(ctx, 30*time.Second); err != nil {
		return res, err
	}
	after, err := db.transactions(ctx)
	if err != nil {
		return res, err
	}
	res.Transactions = after - before
	if res.Statements, err = readStatements(rs.statements, nil); err != nil {
		return res, err
	}
	if res.JobsNotCompleted, err = riverJobsNotCompleted(ctx, db); err != nil {
		return res, err
	}

	first, requests, dups, from, to := rcv.receipts()
	res.Requests, res.Duplicates = requests, dups
	res.Elapsed = to.Sub(from)
	sp.claimClock = true
	return res, measureOutcomes(ctx, db, sp, riverReadClockSQL, first, &res)
}

// riverJobsNotCompleted counts River jobs in any state but completed.
func riverJobsNotCompleted(ctx context.Context, db *database) (int, error) {
	pool, err := db.open(ctx, 1, nil)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state <> 'completed'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count River jobs: %w", err)
	}
	return n, nil
}

// runToEnd runs a program to its end, bounded by timeout.
func runToEnd(ctx context.Context, name, bin string, args []string, timeout time.Duration) error {
	p, err := startProc(ctx, name, bin, args, nil)
	if err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitErr()
	case <-ctx.Done():
		_ = p.stop(5 * time.Second)
		return ctx.Err()
	case <-t.C:
		_ = p.stop(5 * time.Second)
		return fmt.Errorf("%s did not finish within %s", name, timeout)
	}
}
