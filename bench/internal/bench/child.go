package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/logging"
	"github.com/messaging-server/messaging-server/internal/store"
)

// ChildCommand is the first argument that makes the bench binary run as a
// traced worker (see RunWorkerChild). The bench starts itself this way for
// the profiled drain; people never need to.
const ChildCommand = "worker-child"

// StatementStat is how often one statement was sent and the time its
// round trips took, as the worker saw them.
type StatementStat struct {
	Count   int64   `json:"count"`
	Seconds float64 `json:"seconds"`
}

// statementCounter is a pgx tracer counting statements by their text (the
// first words, whitespace collapsed), prepares and new connections, and
// timing each: every one is a round trip to PostgreSQL. It is what
// pg_stat_statements would say, for a server where that extension is not
// loaded.
type statementCounter struct {
	mu     sync.Mutex
	n      map[string]StatementStat
	labels map[string]string // SQL text to label, so each text is split once
}

func (s *statementCounter) label(sql string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.labels[sql]
	if !ok {
		l = StatementLabel(sql)
		s.labels[sql] = l
	}
	return l
}

// traceStart carries a statement's label and start time from Start to End.
type traceStart struct {
	label string
	at    time.Time
}

type traceKey struct{}

func (s *statementCounter) start(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{label: label, at: time.Now()})
}

func (s *statementCounter) end(ctx context.Context) {
	t, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	took := time.Since(t.at).Seconds()
	s.mu.Lock()
	st := s.n[t.label]
	st.Count++
	st.Seconds += took
	s.n[t.label] = st
	s.mu.Unlock()
}

// StatementLabel names a statement by its first words, so the report says
// which query each round trip was without printing whole CTEs.
func StatementLabel(sql string) string {
	f := strings.Fields(sql)
	const words = 7
	if len(f) > words {
		f = f[:words]
	}
	return strings.Join(f, " ")
}

func (s *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return s.start(ctx, s.label(d.SQL))
}

func (s *statementCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	s.end(ctx)
}

func (s *statementCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return s.start(ctx, "(prepare)")
}

func (s *statementCounter) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareEndData) {
	s.end(ctx)
}

func (s *statementCounter) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return s.start(ctx, "(connect)")
}

func (s *statementCounter) TraceConnectEnd(ctx context.Context, _ pgx.TraceConnectEndData) {
	s.end(ctx)
}

func (s *statementCounter) snapshot() map[string]StatementStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.n)
}

// RunWorkerChild is cmd/worker with two additions the shipped binary lacks:
// a CPU profile of the whole run and a count of every statement it sends.
// It builds the same Worker through app.NewWorker from the same environment;
// only the pool is opened here, with the statement counter as its pgx
// tracer (app.Open sets its own only when traces are exported), with the same
// size and the same Redis options. The bench has already migrated the
// database.
func RunWorkerChild(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(ChildCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	statements := fs.String("statements", "", "write the statement counts here, as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(os.Environ())
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 2
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat).With("app", cfg.AppName, "program", "worker")
	counter := &statementCounter{n: map[string]StatementStat{}, labels: map[string]string{}}
	pcfg, err := pgxpool.ParseConfig(cfg.PostgresURI)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "POSTGRES_URI:", err)
		return 2
	}
	pcfg.MaxConns = int32(max(cfg.MaxConcurrentJobs+4, 2)) // cmd/worker's PoolSize
	pcfg.ConnConfig.RuntimeParams["application_name"] = cfg.AppName
	pcfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{
		Addr: cfg.RedisAddr(), Password: cfg.RedisPassword, DB: cfg.RedisDB,
		PoolSize: max(cfg.MaxConcurrentJobs+4, 10),
	})
	defer func() { _ = rdb.Close() }()

	var prof *os.File
	if *profile != "" {
		if prof, err = os.Create(*profile); err != nil {
			_, _ = fmt.Fprintln(stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			_, _ = fmt.Fprintln(stderr, err)
			_ = prof.Close()
			return 1
		}
	}
	w := app.NewWorker(cfg, &app.Deps{Pool: pool, Redis: rdb, Store: store.New(pool), Log: log}, app.Tuning{})
	runErr := w.Run(ctx)
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			_, _ = fmt.Fprintln(stderr, "write profile:", err)
			return 1
		}
	}
	if *statements != "" {
		b, _ := json.Marshal(counter.snapshot())
		if err := os.WriteFile(*statements, b, 0o644); err != nil {
			_, _ = fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if runErr != nil {
		log.Error("stopped with error", "err", runErr)
		return 1
	}
	return 0
}
