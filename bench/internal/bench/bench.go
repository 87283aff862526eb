// Package bench is the end-to-end benchmark behind `make bench`. On one
// machine it drains a backlog through the real programs (the
// scheduler and worker binaries built from cmd/, each a process of its own,
// each run in a fresh database) into the project's webhook sink, and in the
// same run measures the wire limit: the same POSTs, bodies and concurrency
// with no database or Redis. Absolute rates on a shared machine are noise;
// the ratio drain / wire limit is the figure to track. In the same run it
// drains the same backlog with a River peer (bench/river, a module of its
// own, run as a child process) and reports the project's drain / River's;
// with -receiver-delay the sink answers slowly, and the drains are compared
// with what their call slots allow. Every drain reports how busy the CPUs
// were and PostgreSQL statements per message. It also times the claim
// statement against a small and a large sent history, and can profile a
// worker. It prints Markdown tables.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Env is where the servers under test are.
type Env struct {
	PostgresURI string // a database the bench may CREATE DATABASE from
	RedisAddr   string
}

// Options are the bench's knobs; the flags set them.
type Options struct {
	Env Env
	// Messages is the backlog of each drain and the POSTs of each wire run.
	Messages int
	// Workers lists the worker process counts to drain with.
	Workers []int
	// Concurrency is MAX_CONCURRENT_JOBS of each worker; the wire limit
	// uses workers × Concurrency calls in flight.
	Concurrency int
	// ClaimClock installs the trigger that timestamps claims (see
	// claimClockSQL); without it there are no latencies.
	ClaimClock bool
	// Claim scaling: sent history sizes, due rows, timed runs per size.
	ClaimScaling         bool
	SentSmall, SentLarge int
	Pending, ClaimRuns   int
	// CPUProfile, when set, adds a drain by one traced, profiled worker and
	// writes its CPU profile here.
	CPUProfile string
	// Timeout bounds one drain.
	Timeout time.Duration
	// ReceiverDelay makes the sink hold every answer this long: the slow
	// receiver mode, where the drain is bound by latency, not CPU.
	ReceiverDelay time.Duration
	// River adds the River peer's two variants (bench/river), each draining
	// the same backlog with one process and Concurrency jobs in flight.
	River bool
	// Baseline, when set, adds a 1-worker drain by the programs of that git
	// revision, on a schema built by its own migrations, right after this
	// code's 1-worker drain: the cost of the lifecycle columns.
	Baseline string
	// PurgeRows, when positive, adds a 1-worker drain beside a retention
	// purge of that many finished rows, for the ratio to the same drain
	// without it.
	PurgeRows int
	// CallbackPairs adds (callbacks off, callbacks on) pairs of 1-worker
	// drains after the first drain, alternating: off without the outbox
	// trigger, on with status callbacks going to a local receiver; the
	// median ratio on / off is reported.
	CallbackPairs int
	// TwoProviders adds 1-worker drains with two providers (PROVIDERS,
	// no rate limit) beside drains with the one provider, alternating in
	// pairs, for the cost of choosing a provider per message.
	TwoProviders bool
	// BaselinePairs is how many (this code, baseline) pairs of 1-worker
	// drains run, alternating; the first pair's drain of this code is the
	// main table's. The median of the pairs' ratios is reported.
	BaselinePairs int
}

// maxReceiverDelay keeps the slow receiver under WEBHOOK_TIMEOUT's default
// (10 s), so that no call times out.
const maxReceiverDelay = 5 * time.Second

// ParseOptions reads the flags. -quick sets small sizes for a smoke run;
// flags given explicitly still win over it.
func ParseOptions(args []string, stderr io.Writer) (Options, error) {
	o := Options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Env.PostgresURI, "postgres", testenv.AdminURI(),
		"PostgreSQL URI of a database the bench may create databases from (env TEST_POSTGRES_URI)")
	fs.StringVar(&o.Env.RedisAddr, "redis", testenv.RedisAddr(), "Redis host:port (env TEST_REDIS_ADDR)")
	fs.IntVar(&o.Messages, "messages", 100000, "backlog per drain, and POSTs per wire-limit run")
	workers := fs.String("workers", "1,2,4", "comma-separated worker process counts to drain with")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "MAX_CONCURRENT_JOBS of each worker")
	fs.BoolVar(&o.ClaimClock, "claim-clock", true, "timestamp claims with a trigger in the bench database, for claim-to-ack latency")
	fs.BoolVar(&o.ClaimScaling, "claim-scaling", true, "time the claim statement with a small and a large sent history")
	fs.IntVar(&o.SentSmall, "sent-small", 10000, "sent rows in the table for the small claim timing")
	fs.IntVar(&o.SentLarge, "sent-large", 2000000, "sent rows in the table for the large claim timing")
	fs.IntVar(&o.Pending, "pending", 1000, "due rows in the table during the claim timing")
	fs.IntVar(&o.ClaimRuns, "claim-runs", 200, "timed claims per history size (median reported)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "also drain with one traced worker and write its CPU profile to this file")
	fs.DurationVar(&o.Timeout, "timeout", 180*time.Second, "stop a drain after this long and report the part that was drained")
	fs.DurationVar(&o.ReceiverDelay, "receiver-delay", 0,
		"slow receiver: the sink holds every answer this long (e.g. 20ms); then -messages defaults to 20000 and -claim-scaling and -river to false")
	fs.BoolVar(&o.River, "river", true, "also drain with the River peer (bench/river), plain UPDATE and JobCompleteTx, 1 process × -concurrency jobs")
	fs.StringVar(&o.Baseline, "baseline", DefaultBaseline,
		"also drain with 1 worker built from this git revision, on its own schema, for the ratio this code / it (empty: skip)")
	fs.IntVar(&o.BaselinePairs, "baseline-pairs", 3, "alternating (this code, baseline) pairs of 1-worker drains; the median ratio is reported")
	fs.IntVar(&o.PurgeRows, "purge-rows", 1000000, "also drain with 1 worker while the scheduler's retention purge deletes this many finished rows (0: skip)")
	fs.IntVar(&o.CallbackPairs, "callback-pairs", 3, "alternating pairs of 1-worker drains with status callbacks off (no outbox trigger) and on (to a local receiver); the median ratio is reported (0: skip)")
	fs.BoolVar(&o.TwoProviders, "two-providers", true, "also drain with 1 worker and two providers (no rate limit) against one provider, in 2 alternating pairs")
	quick := fs.Bool("quick", false, "smoke-test sizes: 5000 messages, 10k/200k sent rows, 50 claim runs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.ReceiverDelay > 0 {
		// Latency-bound: fewer messages take as long, and neither the
		// claim timing nor River is what this mode is about.
		if !set["messages"] && !*quick {
			o.Messages = 20000
		}
		if !set["claim-scaling"] {
			o.ClaimScaling = false
		}
		if !set["river"] {
			o.River = false
		}
		if !set["baseline"] {
			o.Baseline = ""
		}
	}
	if *quick {
		if !set["messages"] {
			o.Messages = 5000
		}
		if !set["purge-rows"] {
			o.PurgeRows = 100000
		}
		if !set["sent-large"] {
			o.SentLarge = 200000
		}
		if !set["claim-runs"] {
			o.ClaimRuns = 50
		}
	}
	var err error
	if o.Workers, err = parseCounts(*workers); err != nil {
		return o, fmt.Errorf("-workers: %w", err)
	}
	switch {
	case o.Messages < 1:
		return o, errors.New("-messages must be at least 1")
	case o.Concurrency < 1 || o.Concurrency > 1000:
		return o, errors.New("-concurrency must be from 1 to 1000 (MAX_CONCURRENT_JOBS)")
	case o.ClaimScaling && (o.SentSmall < 1 || o.SentLarge < o.SentSmall):
		return o, errors.New("-sent-small must be at least 1 and at most -sent-large")
	case o.ClaimScaling && (o.Pending < o.Concurrency || o.ClaimRuns < 1):
		return o, errors.New("-pending must be at least -concurrency, and -claim-runs at least 1")
	case o.ReceiverDelay < 0 || o.ReceiverDelay > maxReceiverDelay:
		return o, fmt.Errorf("-receiver-delay must be from 0 to %s (under WEBHOOK_TIMEOUT)", maxReceiverDelay)
	case o.Baseline != "" && (o.BaselinePairs < 1 || o.BaselinePairs > 9):
		return o, errors.New("-baseline-pairs must be from 1 to 9")
	case o.Timeout <= 0:
		return o, errors.New("-timeout must be positive")
	}
	return o, nil
}

// parseCounts reads "1,2,4".
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Main is the whole bench program: it returns the exit code. args are the
// command line without the program name.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == ChildCommand {
		return RunWorkerChild(ctx, args[1:], stderr)
	}
	opts, err := ParseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := Run(ctx, opts, log)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	rep.Command = "cd bench && go run . " + strings.Join(args, " ")
	if err := rep.Markdown(stdout); err != nil {
		_, _ = fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// Run runs every part of the bench and returns what it measured. Each part
// creates and drops its own database and cleans its Redis keys, even when
// it fails.
func Run(ctx context.Context, o Options, log *slog.Logger) (*Report, error) {
	rep := &Report{Options: o, Wire: map[int]WireResult{}, Started: time.Now()}
	var err error
	if rep.Machine, err = describeMachine(ctx, o.Env); err != nil {
		return nil, err
	}
	limit, used, err := maxConnections(ctx, o.Env.PostgresURI)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s: %w", o.Env.PostgresURI, err)
	}
	if most := slicesMax(o.Workers); most*app.WorkerPoolSize+4 > limit-used {
		rep.Notes = append(rep.Notes, fmt.Sprintf(
			"%d workers may open up to %d PostgreSQL connections (%d each) and the scheduler 4, "+
				"but the server allows %d and %d are in use: a drain may hit 'too many clients'.",
			most, most*app.WorkerPoolSize, app.WorkerPoolSize, limit, used))
		log.Warn(rep.Notes[len(rep.Notes)-1])
	}
	if o.River && o.Concurrency+riverExtraConns > limit-used {
		rep.Notes = append(rep.Notes, fmt.Sprintf(
			"the River peer opens %d PostgreSQL connections (one per job in flight and %d for River itself), "+
				"but the server allows %d and %d are in use: its drains may hit 'too many clients'.",
			o.Concurrency+riverExtraConns, riverExtraConns, limit, used))
		log.Warn(rep.Notes[len(rep.Notes)-1])
	}

	dir, err := os.MkdirTemp("", "ms-bench-bin")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	log.Info("building cmd/worker and cmd/scheduler")
	if err := buildPrograms(ctx, dir); err != nil {
		return nil, err
	}
	rep.Code = codeRevision(ctx)
	worker, scheduler := filepath.Join(dir, "worker"), filepath.Join(dir, "scheduler")
	run := randomHex(4)

	var riverBin string
	if o.River {
		log.Info("building the River peer", "dir", riverDir)
		var version string
		if riverBin, version, err = buildRiver(ctx, dir); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("the River peer could not be built and is not in the report: %v", err))
			log.Error("River peer build failed", "err", err)
		}
		rep.RiverVersion = version
	}

	var base *baseline
	if o.Baseline != "" {
		log.Info("building the baseline", "revision", o.Baseline)
		if base, err = buildBaseline(ctx, o.Baseline, dir); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("the baseline could not be built and is not in the report: %v", err))
			log.Error("baseline build failed", "err", err)
		}
	}

	wire := func(conc int) error {
		if _, ok := rep.Wire[conc]; ok {
			return nil
		}
		log.Info("wire limit", "posts", o.Messages, "concurrency", conc, "receiver_delay", o.ReceiverDelay)
		wr, err := runWire(ctx, Generator{Prefix: fmt.Sprintf("b%s-w%03d", run, conc%1000)}, o.Messages, conc, o.ReceiverDelay)
		if err != nil {
			return err
		}
		rep.Wire[conc] = wr
		log.Info("wire limit done", "per_second", int(wr.Rate()))
		return nil
	}

	for i, w := range o.Workers {
		conc := w * o.Concurrency
		if err := wire(conc); err != nil {
			return nil, err
		}
		log.Info("drain", "messages", o.Messages, "workers", w, "concurrency", o.Concurrency, "receiver_delay", o.ReceiverDelay)
		dr, err := runDrain(ctx, o.drainSpec(w, fmt.Sprintf("b%s-d%03d", run, w%1000), scheduler, worker, log))
		if err != nil {
			// The other worker counts may still run: report and go on.
			if ctx.Err() != nil {
				return nil, err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("the drain with %d workers failed and is not in the table: %v", w, err))
			log.Error("drain failed", "workers", w, "err", err)
		} else {
			rep.Drains = append(rep.Drains, dr)
			log.Info("drain done", "workers", w, "per_second", int(dr.Rate()), "ratio", fmt.Sprintf("%.2f", dr.Rate()/rep.Wire[conc].Rate()),
				"cpu_busy_percent", int(dr.CPUBusy))
		}
		// The baseline and the River peer run right after the first drain,
		// so that they meet the machine in the same state.
		if i == 0 && base != nil && w == 1 && err == nil {
			if err := runBaselinePairs(ctx, o, rep, dr, base, scheduler, worker, run, log); err != nil {
				return nil, err
			}
		}
		if i == 0 && w == 1 && err == nil && o.PurgeRows > 0 {
			spec := o.drainSpec(1, fmt.Sprintf("b%s-purge", run), scheduler, worker, log)
			spec.purgeRows = o.PurgeRows
			log.Info("drain beside a retention purge", "finished_rows", o.PurgeRows)
			pr, perr := runDrain(ctx, spec)
			switch {
			case perr != nil && ctx.Err() != nil:
				return nil, perr
			case perr != nil:
				rep.Notes = append(rep.Notes, fmt.Sprintf("the drain beside a retention purge failed: %v", perr))
			default:
				rep.Purge = &PurgePair{Without: dr, With: pr}
				log.Info("purge drain done", "per_second", int(pr.Rate()), "ratio", fmt.Sprintf("%.2f", pr.Rate()/dr.Rate()), "purged", pr.Purged)
			}
		}
		if i == 0 && w == 1 && err == nil && o.CallbackPairs > 0 {
			if err := runCallbackPairs(ctx, o, rep, scheduler, worker, run, log); err != nil {
				return nil, err
			}
		}
		if i == 0 && w == 1 && err == nil && o.TwoProviders {
			if err := runProviderPairs(ctx, o, rep, scheduler, worker, run, log); err != nil {
				return nil, err
			}
		}
		if i == 0 && riverBin != "" {
			if err := runRiverPeers(ctx, o, rep, riverBin, dir, run, wire, log); err != nil {
				return nil, err
			}
		}
	}

	if o.ClaimScaling {
		cs, err := runClaimScaling(ctx, claimSpec{
			env: o.Env, small: o.SentSmall, large: o.SentLarge,
			pending: o.Pending, batch: o.Concurrency, runs: o.ClaimRuns, log: log,
		})
		if err != nil {
			return nil, fmt.Errorf("claim scaling: %w", err)
		}
		rep.Claim = &cs
	}

	if o.CPUProfile != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		profile, err := filepath.Abs(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		stmts := filepath.Join(dir, "statements.json")
		log.Info("profiled drain", "messages", o.Messages, "profile", profile)
		spec := o.drainSpec(1, fmt.Sprintf("b%s-p%03d", run, 1), scheduler, self, log)
		spec.workerArgs = func(int) ([]string, string) {
			return []string{ChildCommand, "-cpuprofile", profile, "-statements", stmts}, stmts
		}
		dr, err := runDrain(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("profiled drain: %w", err)
		}
		rep.Profiled = &dr
	}
	rep.Finished = time.Now()
	return rep, nil
}

// runRiverPeers runs every River variant: one process with o.Concurrency
// jobs in flight, the same backlog and the same sink as a 1-worker drain.
// A variant that fails is noted and the bench goes on.
func runRiverPeers(ctx context.Context, o Options, rep *Report, bin, dir, run string, wire func(int) error, log *slog.Logger) error {
	if err := wire(o.Concurrency); err != nil {
		return err
	}
	for j, v := range RiverVariants {
		log.Info("River peer drain", "variant", v, "messages", o.Messages, "jobs_in_flight", o.Concurrency, "receiver_delay", o.ReceiverDelay)
		dr, err := runRiverDrain(ctx, drainSpec{
			env: o.Env, concurrency: o.Concurrency, messages: o.Messages,
			tag: fmt.Sprintf("b%s-r%03d", run, j), receiverDelay: o.ReceiverDelay, timeout: o.Timeout, log: log,
		}, riverSpec{bin: bin, variant: v, statements: filepath.Join(dir, "river-statements-"+v+".json")})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("the River peer (%s) failed and is not in the report: %v", riverVariantName(v), err))
			log.Error("River peer drain failed", "variant", v, "err", err)
			continue
		}
		rep.River = append(rep.River, dr)
		log.Info("River peer drain done", "variant", v, "per_second", int(dr.Rate()), "cpu_busy_percent", int(dr.CPUBusy))
	}
	return nil
}

// runBaselinePairs drains the backlog with one worker of the baseline,
// then, for each further pair, once more with this code and once with the
// baseline, alternating, so that the machine's drift falls on both. first
// is this code's drain that opened the run. A drain that fails is noted
// and its pair left out.
func runBaselinePairs(ctx context.Context, o Options, rep *Report, first DrainResult, base *baseline, scheduler, worker, run string, log *slog.Logger) error {
	rep.BaselineRev = base.rev
	drain := func(k int, who string) (DrainResult, error) {
		spec := o.drainSpec(1, fmt.Sprintf("b%s-p%d%s", run, k, who), scheduler, worker, log)
		if who == "b" {
			spec.scheduler, spec.worker, spec.migrations = base.scheduler, base.worker, base.migrations
		}
		log.Info("baseline pair", "pair", k+1, "of", o.BaselinePairs, "code", map[string]string{"t": "this", "b": base.rev}[who])
		return runDrain(ctx, spec)
	}
	for k := range o.BaselinePairs {
		this := first
		if k > 0 {
			var err error
			if this, err = drain(k, "t"); err != nil {
				if ctx.Err() != nil {
					return err
				}
				rep.Notes = append(rep.Notes, fmt.Sprintf("baseline pair %d: this code's drain failed: %v", k+1, err))
				continue
			}
		}
		b, err := drain(k, "b")
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("baseline pair %d: the %s drain failed: %v", k+1, base.rev, err))
			continue
		}
		rep.Baseline = append(rep.Baseline, BaselinePair{This: this, Base: b})
		log.Info("baseline pair done", "pair", k+1, "this_per_second", int(this.Rate()), "baseline_per_second", int(b.Rate()),
			"ratio", fmt.Sprintf("%.2f", this.Rate()/b.Rate()))
	}
	return nil
}

// runCallbackPairs drains the backlog with one worker, for each pair once
// with status callbacks off (no sender, and the trigger that writes events
// dropped) and once on, alternating, so that the machine's drift falls on
// both. A drain that fails is noted and its pair left out.
func runCallbackPairs(ctx context.Context, o Options, rep *Report, scheduler, worker, run string, log *slog.Logger) error {
	drain := func(k int, on bool) (DrainResult, error) {
		spec := o.drainSpec(1, fmt.Sprintf("b%s-c%d%v", run, k, on), scheduler, worker, log)
		// Off is without the feature's cost altogether: no sender and no
		// trigger writing events. On is STATUS_CALLBACK_URL set.
		spec.callbacks, spec.noOutbox = on, !on
		log.Info("callback pair", "pair", k+1, "of", o.CallbackPairs, "callbacks", on)
		return runDrain(ctx, spec)
	}
	for k := range o.CallbackPairs {
		off, err := drain(k, false)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("callback pair %d: the drain without callbacks failed: %v", k+1, err))
			continue
		}
		on, err := drain(k, true)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("callback pair %d: the drain with callbacks failed: %v", k+1, err))
			continue
		}
		rep.Callbacks = append(rep.Callbacks, CallbackPair{Without: off, With: on})
		log.Info("callback pair done", "pair", k+1, "off_per_second", int(off.Rate()), "on_per_second", int(on.Rate()),
			"ratio", fmt.Sprintf("%.2f", on.Rate()/off.Rate()), "callbacks", on.Callbacks)
	}
	return nil
}

// providerPairs is how many (one provider, two providers) pairs of
// 1-worker drains run, the order alternating, so that a machine that slows
// or speeds up during the run favours neither.
const providerPairs = 2

// runProviderPairs drains with one worker and two providers (PROVIDERS,
// the default route to both, no rate limit) and with the one provider,
// alternating. A drain that fails is noted and the bench goes on.
func runProviderPairs(ctx context.Context, o Options, rep *Report, scheduler, worker, run string, log *slog.Logger) error {
	for k := range providerPairs {
		var pair ProviderPair
		for j, n := range []int{1, 2} {
			if k%2 == 1 {
				n = 3 - n
			}
			spec := o.drainSpec(1, fmt.Sprintf("b%s-p%d%d", run, k, j), scheduler, worker, log)
			spec.providers = n
			log.Info("drain with providers", "pair", k+1, "providers", n)
			dr, err := runDrain(ctx, spec)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				rep.Notes = append(rep.Notes, fmt.Sprintf("provider pair %d: the drain with %d providers failed: %v", k+1, n, err))
				pair = ProviderPair{}
				break
			}
			if n == 1 {
				pair.One = dr
			} else {
				pair.Two = dr
			}
		}
		if pair.One.Rate() > 0 && pair.Two.Rate() > 0 {
			rep.Providers = append(rep.Providers, pair)
			log.Info("provider pair done", "pair", k+1, "one_per_second", int(pair.One.Rate()), "two_per_second", int(pair.Two.Rate()),
				"ratio", fmt.Sprintf("%.2f", pair.Two.Rate()/pair.One.Rate()))
		}
	}
	return nil
}

// drainSpec is a drain of the backlog by the given programs with workers
// worker processes, as the options say; its worker processes take no
// arguments and count no statements unless the caller sets workerArgs.
func (o Options) drainSpec(workers int, tag, scheduler, worker string, log *slog.Logger) drainSpec {
	return drainSpec{
		env: o.Env, workers: workers, concurrency: o.Concurrency, messages: o.Messages,
		tag: tag, scheduler: scheduler, worker: worker,
		workerArgs: func(int) ([]string, string) { return nil, "" },
		claimClock: o.ClaimClock, receiverDelay: o.ReceiverDelay, timeout: o.Timeout, log: log,
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
