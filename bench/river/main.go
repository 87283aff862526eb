// Command river-peer is the River peer of `make bench`: it drains
// the bench's messages rows to the same webhook sink with River
// (github.com/riverqueue/river), so that the project's drain can be compared
// with a maintained PostgreSQL job queue on the same machine, in the same
// run. It lives in its own Go module so that the product's go.mod never gains
// River; the bench (bench/internal/bench) builds it into a temporary
// directory and runs it as a child process, twice per drain:
//
//	river-peer setup -postgres URI
//	    migrates River's tables into the bench database and inserts one River
//	    job per pending messages row (id, phone number and content in the
//	    job's args, so a job needs no extra read), with InsertManyFast (COPY);
//	river-peer work -postgres URI -webhook URL -workers N -variant V
//	    runs a River client with N workers until SIGTERM, then stops it
//	    cleanly (River's completer flushes) and exits 0.
//
// Each job POSTs {"to", "content"} with Idempotency-Key: <message id>, as the
// project's worker does, and marks the messages row sent, in one of two ways:
//
//	-variant update       a plain UPDATE of the row; River's batched completer
//	                      marks the job completed afterwards (River's default);
//	-variant complete-tx  the UPDATE and river.JobCompleteTx in one
//	                      transaction (River's transactional completion).
//
// The client uses the fetch settings of River's own benchmark (riverbench):
// FetchCooldown 2 ms, FetchPollInterval 20 ms, which are far faster than
// River's defaults (100 ms, 1 s) and so give River its best case.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// Variants of the job's completion.
const (
	VariantUpdate     = "update"
	VariantCompleteTx = "complete-tx"
)

// options are the command line of either subcommand.
type options struct {
	command    string
	postgres   string
	webhook    string
	workers    int
	variant    string
	statements string
	authHeader string
	authKey    string
	timeout    time.Duration
}

// parseArgs reads "setup|work" and its flags.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	if len(args) == 0 || (args[0] != "setup" && args[0] != "work") {
		return o, errors.New("usage: river-peer setup|work [flags]")
	}
	o.command = args[0]
	fs := flag.NewFlagSet("river-peer "+o.command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL URI of the bench database (required)")
	fs.StringVar(&o.webhook, "webhook", "", "webhook URL (work)")
	fs.IntVar(&o.workers, "workers", 32, "River MaxWorkers: jobs (webhook calls) in flight (work)")
	fs.StringVar(&o.variant, "variant", VariantUpdate, "how a job marks its row: update (batched completer) or complete-tx (JobCompleteTx) (work)")
	fs.StringVar(&o.statements, "statements", "", "write the statements this process sent, as JSON, here on exit (work)")
	fs.StringVar(&o.authHeader, "auth-header", "x-ins-auth-key", "header that carries -auth-key (work)")
	fs.StringVar(&o.authKey, "auth-key", "", "sent only when set (work)")
	fs.DurationVar(&o.timeout, "webhook-timeout", 10*time.Second, "one webhook call, connection to last byte (work)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.postgres == "":
		return o, errors.New("-postgres is required")
	case o.command == "work" && o.webhook == "":
		return o, errors.New("-webhook is required")
	case o.workers < 1 || o.workers > 10000:
		return o, errors.New("-workers must be from 1 to 10000")
	case o.variant != VariantUpdate && o.variant != VariantCompleteTx:
		return o, fmt.Errorf("-variant must be %s or %s", VariantUpdate, VariantCompleteTx)
	case o.timeout <= 0:
		return o, errors.New("-webhook-timeout must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "river-peer:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.command == "setup" {
		err = setup(ctx, o, log)
	} else {
		err = work(ctx, o, log)
	}
	if err != nil {
		log.Error("river-peer failed", "command", o.command, "err", err)
		return 1
	}
	return 0
}

// setup migrates River's tables and inserts one job per pending row, in
// the rows' age order.
func setup(ctx context.Context, o options, log *slog.Logger) error {
	pool, err := pgxpool.New(ctx, o.postgres)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate River: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &messageWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: log, Workers: workers})
	if err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `SELECT id, phone_number, content FROM messages WHERE status = 'pending' ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("read backlog: %w", err)
	}
	backlog, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MessageArgs, error) {
		var a MessageArgs
		err := r.Scan(&a.ID, &a.To, &a.Content)
		return a, err
	})
	if err != nil {
		return fmt.Errorf("read backlog: %w", err)
	}
	const chunk = 5000
	for lo := 0; lo < len(backlog); lo += chunk {
		params := make([]river.InsertManyParams, 0, chunk)
		for _, a := range backlog[lo:min(lo+chunk, len(backlog))] {
			params = append(params, river.InsertManyParams{Args: a})
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
	}
	return nil
}

// work runs the River client until ctx ends (SIGTERM), then stops it: Stop
// waits for jobs in flight and for the completer to write their outcomes.
func work(ctx context.Context, o options, log *slog.Logger) (err error) {
	counter := newStatementCounter()
	cfg, err := pgxpool.ParseConfig(o.postgres)
	if err != nil {
		return fmt.Errorf("-postgres: %w", err)
	}
	// One connection per job in flight (each writes its row), plus River's
	// producer, completer, notifier (LISTEN holds one) and leader elector.
	cfg.MaxConns = int32(o.workers + 5)
	cfg.ConnConfig.RuntimeParams["application_name"] = "bench-river"
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	// Open every connection before River starts, so that the drain does not
	// pay for PostgreSQL forking backends while jobs wait for them.
	if err := warm(ctx, pool, int(cfg.MaxConns)); err != nil {
		return err
	}

	hook := newPoster(o.webhook, o.authHeader, o.authKey, o.timeout, o.workers)
	defer hook.close()
	workers := river.NewWorkers()
	river.AddWorker(workers, &messageWorker{pool: pool, hook: hook, variant: o.variant})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Logger:            log,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.workers}},
		Workers:           workers,
	})
	if err != nil {
		return err
	}
	// The client runs on a context of its own: the signal only asks it to
	// stop, and Stop lets the jobs in flight and the completer finish.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start River: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-client.Stopped():
		return errors.New("the River client stopped by itself")
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop River: %w", err)
	}
	if o.statements != "" {
		if err := counter.write(o.statements); err != nil {
			return err
		}
	}
	return nil
}

// MessageArgs is one message, carried in the job's args so that working it
// needs no read of the messages row.
type MessageArgs struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Content string `json:"content"`
}

// Kind names the job kind in river_job.
func (MessageArgs) Kind() string { return "bench_message" }

// InsertOpts gives the job the project's default MAX_ATTEMPTS.
func (MessageArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 5} }

// markSentSQL is the plain UPDATE of the messages row after a 2xx. sent_at
// is the worker's clock after it read the answer, as in the project.
const markSentSQL = `UPDATE messages SET status = 'sent', is_sent = TRUE, sent_at = $2, remote_message_id = NULLIF($3, '') WHERE id = $1`

// messageWorker delivers one message and marks its row sent.
type messageWorker struct {
	river.WorkerDefaults[MessageArgs]
	pool    *pgxpool.Pool
	hook    *poster
	variant string
}

var _ river.Worker[MessageArgs] = (*messageWorker)(nil)

// Work posts the message; an error (a non-2xx answer or a failed call)
// makes River retry the job later.
func (w *messageWorker) Work(ctx context.Context, job *river.Job[MessageArgs]) error {
	remote, err := w.hook.post(ctx, job.Args)
	if err != nil {
		return err
	}
	ack := time.Now()
	if w.variant == VariantUpdate {
		if _, err := w.pool.Exec(ctx, markSentSQL, job.Args.ID, ack, remote); err != nil {
			return fmt.Errorf("mark %s sent: %w", job.Args.ID, err)
		}
		return nil
	}
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, markSentSQL, job.Args.ID, ack, remote); err != nil {
			return fmt.Errorf("mark %s sent: %w", job.Args.ID, err)
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete job %d: %w", job.ID, err)
		}
		return nil
	})
}

// warm opens n connections of the pool and gives them back.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("open connections: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
}
