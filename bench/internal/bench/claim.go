package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/store"
)

// ClaimScaling is the claim statement's time with little and with much sent
// history in the table. The ratio must stay near 1: a claim that reads sent
// rows gets slower every day the system runs.
type ClaimScaling struct {
	Pending, Batch, Runs       int
	SmallRows, LargeRows       int
	Small, Large               time.Duration // medians
	ExplainSmall, ExplainLarge string
}

// Ratio is Large / Small.
func (c ClaimScaling) Ratio() float64 {
	if c.Small <= 0 {
		return 0
	}
	return float64(c.Large) / float64(c.Small)
}

// claimSpec says how to run the claim scaling measurement.
type claimSpec struct {
	env                  Env
	small, large         int
	pending, batch, runs int
	log                  *slog.Logger
}

// lastSQL is a pgx tracer that remembers the last statement and its
// arguments, so the bench can EXPLAIN exactly the SQL that store.Claim
// sends, without copying its text.
type lastSQL struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (l *lastSQL) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sql, l.args = d.SQL, d.Args
	return ctx
}

func (l *lastSQL) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *lastSQL) get() (string, []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sql, l.args
}

// claimTable is one database of the claim measurement.
type claimTable struct {
	db     *database
	pool   *pgxpool.Pool
	st     *store.Store
	tracer *lastSQL
	times  []time.Duration
}

// newClaimTable creates a database with pending due rows and sent history
// rows (older than the due ones), VACUUM ANALYZEd as autovacuum would leave
// it. Its connections commit with synchronous_commit off: the WAL flush at
// commit costs the same whatever the table holds, and on a shared disk it
// is the noisiest part of a claim, so leaving it out times what the table
// size can change.
func newClaimTable(ctx context.Context, sp claimSpec, sent int) (*claimTable, error) {
	sp.log.Info("claim scaling: preparing", "sent_rows", sent)
	db, err := createDatabase(ctx, sp.env.PostgresURI, "bench_claim")
	if err != nil {
		return nil, err
	}
	t := &claimTable{db: db, tracer: &lastSQL{}}
	cfg, err := pgxpool.ParseConfig(db.uri)
	if err != nil {
		return t, err
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.Tracer = t.tracer
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.ConnConfig.RuntimeParams["application_name"] = "bench"
	if t.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return t, err
	}
	t.st = store.New(t.pool)
	if err := store.Migrate(ctx, t.pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return t, err
	}
	if err := (Generator{Prefix: "pending"}).Insert(ctx, t.pool, sp.pending); err != nil {
		return t, err
	}
	if err := InsertSent(ctx, t.pool, 0, sent); err != nil {
		return t, err
	}
	for _, q := range []string{
		`UPDATE dispatch_control SET running = TRUE, budget = 2000000000`,
		`VACUUM ANALYZE messages`,
	} {
		if _, err := t.pool.Exec(ctx, q); err != nil {
			return t, fmt.Errorf("%s: %w", q, err)
		}
	}
	return t, nil
}

func (t *claimTable) close(ctx context.Context) error {
	if t.pool != nil {
		t.pool.Close()
	}
	return t.db.drop(ctx)
}

// benchMaxAttempts is the MAX_ATTEMPTS the timed claims run with; the
// bench's rows never reach it, so it only has to be set.
const benchMaxAttempts = 3

// claimOnce times one store.Claim and puts the rows back to pending, so
// every run sees the same due rows.
func (t *claimTable) claimOnce(ctx context.Context, batch int) (time.Duration, error) {
	t0 := time.Now()
	cs, err := t.st.Claim(ctx, batch, time.Minute, benchMaxAttempts)
	took := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if len(cs) != batch {
		return 0, fmt.Errorf("claim returned %d rows, want %d", len(cs), batch)
	}
	return took, putBack(ctx, t.pool)
}

// runClaimScaling times store.Claim (the worker's own code) in two
// databases that differ only in how much sent history they hold, with the
// runs interleaved so that the machine's noise falls on both alike. Each
// run claims sp.batch rows (what one worker with that many free call
// slots claims) and the bench puts them back.
func runClaimScaling(ctx context.Context, sp claimSpec) (res ClaimScaling, err error) {
	res = ClaimScaling{Pending: sp.pending, Batch: sp.batch, Runs: sp.runs, SmallRows: sp.small, LargeRows: sp.large}
	var tables []*claimTable
	defer func() {
		for _, t := range tables {
			if cerr := t.close(context.WithoutCancel(ctx)); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	for _, n := range []int{sp.small, sp.large} {
		t, err := newClaimTable(ctx, sp, n)
		if t != nil {
			tables = append(tables, t)
		}
		if err != nil {
			return res, err
		}
	}
	sp.log.Info("claim scaling: timing", "runs", sp.runs)
	for i := -sp.runs / 10; i < sp.runs; i++ { // the first tenth warms caches
		for j := range tables {
			t := tables[((i+j)%len(tables)+len(tables))%len(tables)] // alternate who goes first
			took, err := t.claimOnce(ctx, sp.batch)
			if err != nil {
				return res, err
			}
			if i >= 0 {
				t.times = append(t.times, took)
			}
		}
	}
	res.Small, res.Large = Median(tables[0].times), Median(tables[1].times)
	if res.ExplainSmall, err = explainClaim(ctx, tables[0], sp.batch); err != nil {
		return res, err
	}
	if res.ExplainLarge, err = explainClaim(ctx, tables[1], sp.batch); err != nil {
		return res, err
	}
	return res, nil
}

// putBack returns claimed rows to pending, as if never claimed.
func putBack(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `UPDATE messages SET status = 'pending', attempts = 0, lease_expires_at = NULL WHERE status = 'sending'`)
	if err != nil {
		return fmt.Errorf("put claimed rows back: %w", err)
	}
	return nil
}

// explainClaim runs store.Claim once to capture its SQL and arguments, then
// EXPLAIN (ANALYZE, BUFFERS) of the same, and puts the rows back.
func explainClaim(ctx context.Context, t *claimTable, batch int) (string, error) {
	if _, err := t.st.Claim(ctx, batch, time.Minute, benchMaxAttempts); err != nil {
		return "", err
	}
	sql, args := t.tracer.get()
	if err := putBack(ctx, t.pool); err != nil {
		return "", err
	}
	rows, err := t.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("explain claim: %w", err)
	}
	if err := putBack(ctx, t.pool); err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// SeqScansMessages tells whether a plan reads the messages table from end
// to end, sent history included: what the claim must never do.
func SeqScansMessages(plan string) bool {
	return strings.Contains(plan, "Seq Scan on messages")
}
