package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is everything one bench run measured.
type Report struct {
	Options           Options
	Machine           Machine
	Command           string
	Code              string // the commit the programs were built from
	Started, Finished time.Time
	// Wire is the wire limit by total concurrency.
	Wire     map[int]WireResult
	Drains   []DrainResult
	Claim    *ClaimScaling
	Profiled *DrainResult
	// River holds the River peer's drains, one per variant, and
	// RiverVersion the River release bench/river requires.
	River        []DrainResult
	RiverVersion string
	// Baseline holds the alternating pairs of 1-worker drains by this code
	// and by the programs of BaselineRev (see Options.Baseline).
	Baseline []BaselinePair
	// Purge is the 1-worker drain beside a retention purge, and the same
	// run's first 1-worker drain without one; nil when not run.
	Purge *PurgePair
	// Callbacks are the pairs of 1-worker drains with status callbacks
	// off and on.
	Callbacks []CallbackPair
	// Providers are the 1-worker drains with two providers and with one,
	// in pairs.
	Providers   []ProviderPair
	BaselineRev string
	Notes       []string
}

// Targets the report checks each figure against.
const (
	targetRatio      = 0.27
	targetP99        = 0.250 // seconds
	targetClaimRatio = 1.5
	targetRSS        = 64 << 20
	targetRoundTrips = 3.0
	// Against River, the CPU and the slow receiver.
	targetVsRiver       = 3.0
	targetCPUBusy       = 90.0 // percent of all cores, CPU-bound drain
	targetSlotsRatio    = 0.9  // 1 worker, slow receiver
	targetScaling4      = 3.5  // 4 workers / 1 worker, slow receiver
	targetSlowStatement = 0.15 // statements per message, slow receiver
)

// slow tells whether the run used the slow receiver.
func (r *Report) slow() bool { return r.Options.ReceiverDelay > 0 }

// FastestRiver is River's faster variant, false when no River drain ran.
func (r *Report) FastestRiver() (DrainResult, bool) {
	var best DrainResult
	for _, d := range r.River {
		if d.Rate() > best.Rate() {
			best = d
		}
	}
	return best, best.Rate() > 0
}

// VsRiver is d's rate / River's faster variant's, NaN without River.
func (r *Report) VsRiver(d DrainResult) float64 {
	best, ok := r.FastestRiver()
	if !ok {
		return math.NaN()
	}
	return d.Rate() / best.Rate()
}

// Scaling is d's rate / the 1-worker drain's, NaN without one.
func (r *Report) Scaling(d DrainResult) float64 {
	i := slices.IndexFunc(r.Drains, func(d DrainResult) bool { return d.Workers == 1 })
	if i < 0 || r.Drains[i].Rate() == 0 {
		return math.NaN()
	}
	return d.Rate() / r.Drains[i].Rate()
}

func percent(d DrainResult) string {
	if !d.CPUMeasured {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", d.CPUBusy)
}

// Ratio is drain / wire limit for d.
func (r *Report) Ratio(d DrainResult) float64 {
	w, ok := r.Wire[d.Workers*d.Concurrency]
	if !ok || w.Rate() == 0 {
		return math.NaN()
	}
	return d.Rate() / w.Rate()
}

func ms(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	v := s * 1000
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func pair(q Quantiles) string {
	if q.Count == 0 {
		return "n/a"
	}
	return ms(q.P50) + " / " + ms(q.P99)
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// table is a Markdown table under construction.
type table struct {
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	var b strings.Builder
	for i, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		if i == 0 {
			b.WriteString(strings.Repeat("| --- ", len(r)) + "|\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Markdown writes the result table, then the claim statement's plans and
// the notes. The table has one column per worker count; the last two
// columns say what the target is and whether this run meets it.
func (r *Report) Markdown(w io.Writer) error {
	t := &table{}
	head := []string{"measurement"}
	for _, d := range r.Drains {
		s := "s"
		if d.Workers == 1 {
			s = ""
		}
		col := fmt.Sprintf("%d worker%s × %d calls", d.Workers, s, d.Concurrency)
		if r.slow() {
			col += fmt.Sprintf(", receiver %s", r.Options.ReceiverDelay)
		}
		head = append(head, col)
	}
	head = append(head, "target", "met")
	t.add(head...)

	row := func(name string, cell func(d DrainResult) string, target, met string) {
		cells := []string{name}
		for _, d := range r.Drains {
			cells = append(cells, cell(d))
		}
		t.add(append(cells, target, met)...)
	}
	all := func(ok func(d DrainResult) bool) string {
		if len(r.Drains) == 0 {
			return ""
		}
		for _, d := range r.Drains {
			if !ok(d) {
				return verdict(false)
			}
		}
		return verdict(true)
	}
	one := slices.IndexFunc(r.Drains, func(d DrainResult) bool { return d.Workers == 1 })

	row("messages drained", func(d DrainResult) string {
		if d.TimedOut {
			return fmt.Sprintf("**%d of %d (timed out after %s)**", d.Messages, d.Backlog, r.Options.Timeout)
		}
		return fmt.Sprint(d.Messages)
	}, "", all(func(d DrainResult) bool { return !d.TimedOut }))
	row("drain, messages/s", func(d DrainResult) string { return fmt.Sprintf("%.0f", d.Rate()) }, "", "")
	row("wire limit, POSTs/s (same POSTs and concurrency, no PostgreSQL/Redis)", func(d DrainResult) string {
		return fmt.Sprintf("%.0f", r.Wire[d.Workers*d.Concurrency].Rate())
	}, "", "")
	onlyOne := func(ok func(d DrainResult) bool) string {
		if one < 0 {
			return "n/a (no 1-worker drain)"
		}
		return verdict(ok(r.Drains[one]))
	}
	if r.slow() {
		row("**drain / wire limit**", func(d DrainResult) string { return "**" + ratio(r.Ratio(d)) + "**" }, "", "")
	} else {
		row("**drain / wire limit**", func(d DrainResult) string { return "**" + ratio(r.Ratio(d)) + "**" },
			fmt.Sprintf("≥ %.2f with 1 worker", targetRatio), onlyOne(func(d DrainResult) bool { return r.Ratio(d) >= targetRatio }))
	}
	if best, ok := r.FastestRiver(); ok {
		name := fmt.Sprintf("**drain / River's faster variant** (%s, %.0f messages/s, 1 process × %d jobs)", riverShort(best.Peer), best.Rate(), best.Concurrency)
		row(name, func(d DrainResult) string { return "**" + ratio(r.VsRiver(d)) + "**" },
			fmt.Sprintf("≥ %.0f with 1 worker", targetVsRiver), onlyOne(func(d DrainResult) bool { return r.VsRiver(d) >= targetVsRiver }))
	}
	if r.slow() {
		row("slots ÷ latency, messages/s (workers × calls / receiver delay)", func(d DrainResult) string { return fmt.Sprintf("%.0f", d.SlotsPerLatency()) }, "", "")
		row("**drain / (slots ÷ latency)**", func(d DrainResult) string { return "**" + ratio(d.Rate()/d.SlotsPerLatency()) + "**" },
			fmt.Sprintf("≥ %.1f with 1 worker", targetSlotsRatio), onlyOne(func(d DrainResult) bool { return d.Rate()/d.SlotsPerLatency() >= targetSlotsRatio }))
		four := slices.IndexFunc(r.Drains, func(d DrainResult) bool { return d.Workers == 4 })
		scaleMet := "n/a (no 4-worker drain)"
		if four >= 0 {
			scaleMet = verdict(r.Scaling(r.Drains[four]) >= targetScaling4)
		}
		row("**scaling: drain / 1-worker drain**", func(d DrainResult) string { return fmt.Sprintf("**%.2f×**", r.Scaling(d)) },
			fmt.Sprintf("≥ %.1f× with 4 workers", targetScaling4), scaleMet)
	}
	clock := func(q func(d DrainResult) Quantiles) func(d DrainResult) string {
		return func(d DrainResult) string { return pair(q(d)) }
	}
	row("claim → ack (sent_at), p50 / p99 ms", clock(func(d DrainResult) Quantiles { return d.ClaimToAck }), "p99 < 250 ms",
		all(func(d DrainResult) bool { return d.ClaimToAck.Count > 0 && d.ClaimToAck.P99 < targetP99 }))
	row("claim → outcome row written, p50 / p99 ms", clock(func(d DrainResult) Quantiles { return d.ClaimToRecorded }), "", "")
	row("claim → webhook receipt, p50 / p99 ms", clock(func(d DrainResult) Quantiles { return d.ClaimToReceipt }), "", "")
	row("webhook receipt → ack, p50 / p99 ms", clock(func(d DrainResult) Quantiles { return d.ReceiptToAck }), "", "")
	row("webhook call (worker histogram), p50 / p99 ms", func(d DrainResult) string {
		if d.Webhook.Count == 0 {
			return "n/a"
		}
		return ms(d.Webhook.P50) + " / " + ms(d.Webhook.P99)
	}, "", "")
	row("claim statement, mean ms (worker)", func(d DrainResult) string { return ms(d.ClaimMean) }, "", "")
	row("messages per claim statement", func(d DrainResult) string { return fmt.Sprintf("%.1f", d.BatchSize()) }, "", "")
	row("peak RSS per worker (VmHWM), MiB", func(d DrainResult) string { return fmt.Sprintf("%.1f", float64(d.PeakRSS)/(1<<20)) }, "< 64 MiB",
		all(func(d DrainResult) bool { return d.PeakRSS > 0 && d.PeakRSS < targetRSS }))
	cpuTarget, cpuMet := fmt.Sprintf("≥ %.0f %% (CPU-bound)", targetCPUBusy), all(func(d DrainResult) bool { return d.CPUMeasured && d.CPUBusy >= targetCPUBusy })
	stmtTarget, stmtMet := "", ""
	if r.slow() {
		cpuTarget, cpuMet = "", ""
		stmtTarget = fmt.Sprintf("≤ %.2f (slow receiver)", targetSlowStatement)
		stmtMet = all(func(d DrainResult) bool { return d.PerMessage() <= targetSlowStatement })
	}
	row(fmt.Sprintf("CPUs busy during the drain, %% of all %d cores (/proc/stat)", r.Machine.CPUs), percent, cpuTarget, cpuMet)
	row("PostgreSQL statements per message (transactions, pg_stat_database)", func(d DrainResult) string { return fmt.Sprintf("%.3f", d.PerMessage()) },
		stmtTarget, stmtMet)
	row("PostgreSQL round trips per claim batch", func(d DrainResult) string { return fmt.Sprintf("%.1f", d.PerClaim()) }, "≤ 3",
		all(func(d DrainResult) bool { return d.Claims > 0 && d.PerClaim() <= targetRoundTrips }))
	row("messages left neither sent nor pending", func(d DrainResult) string { return fmt.Sprint(d.Stuck) }, "0",
		all(func(d DrainResult) bool { return d.Stuck == 0 }))
	row("duplicate deliveries", func(d DrainResult) string { return fmt.Sprint(d.Duplicates) }, "0",
		all(func(d DrainResult) bool { return d.Duplicates == 0 }))
	row("ERROR lines logged by workers", func(d DrainResult) string { return fmt.Sprint(d.WorkerErrors) }, "0",
		all(func(d DrainResult) bool { return d.WorkerErrors == 0 }))

	if c := r.Claim; c != nil {
		span := func(name, v, target, met string) {
			cells := []string{name, v}
			for range max(len(r.Drains)-1, 0) {
				cells = append(cells, "")
			}
			t.add(append(cells, target, met)...)
		}
		span(fmt.Sprintf("claim of %d rows, %s sent rows in table, median ms", c.Batch, count(c.SmallRows)), ms(c.Small.Seconds()), "", "")
		span(fmt.Sprintf("claim of %d rows, %s sent rows in table, median ms", c.Batch, count(c.LargeRows)), ms(c.Large.Seconds()), "", "")
		span(fmt.Sprintf("**claim time ratio %s / %s**", count(c.LargeRows), count(c.SmallRows)), fmt.Sprintf("**%.2f**", c.Ratio()),
			"≤ 1.5", verdict(c.Ratio() <= targetClaimRatio))
		yn := func(b bool) string {
			if b {
				return "yes"
			}
			return "no"
		}
		small, large := SeqScansMessages(c.ExplainSmall), SeqScansMessages(c.ExplainLarge)
		span("claim plan reads the whole table (Seq Scan on messages)",
			fmt.Sprintf("%s: %s, %s: %s", count(c.SmallRows), yn(small), count(c.LargeRows), yn(large)), "never", verdict(!small && !large))
	}
	if err := t.write(w); err != nil {
		return err
	}
	if err := r.writeRiver(w); err != nil {
		return err
	}
	if err := r.writeCallbacks(w); err != nil {
		return err
	}
	if err := r.writePurge(w); err != nil {
		return err
	}
	if err := r.writeProviders(w); err != nil {
		return err
	}
	if err := r.writeBaseline(w); err != nil {
		return err
	}
	return r.writeDetails(w)
}

// BaselinePair is one drain of this code and, right after it, one of the
// baseline, both with one worker.
type BaselinePair struct{ This, Base DrainResult }

// Ratio is this code's rate / the baseline's, NaN without a baseline rate.
func (p BaselinePair) Ratio() float64 {
	if p.Base.Rate() == 0 {
		return math.NaN()
	}
	return p.This.Rate() / p.Base.Rate()
}

// VsBaseline is the median of the pairs' ratios, NaN without pairs.
func (r *Report) VsBaseline() float64 {
	var xs []float64
	for _, p := range r.Baseline {
		if x := p.Ratio(); !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	return median(xs)
}

// median is the middle of xs (the mean of the two middle ones for an even
// count), NaN when xs is empty. It sorts xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// CallbackPair is a 1-worker drain without status callbacks and one with
// them on, in the same run.
type CallbackPair struct{ Without, With DrainResult }

// targetVsCallbacks is the least the drain with callbacks may keep of the
// drain without them.
const targetVsCallbacks = 0.75

// writeCallbacks writes the table of the drains with status callbacks on
// and off, pair by pair, and the median ratio.
func (r *Report) writeCallbacks(w io.Writer) error {
	if len(r.Callbacks) == 0 {
		return nil
	}
	t := &table{}
	t.add(fmt.Sprintf("Status callbacks on (events recorded, one message.sent each sent to a local receiver) / off (no outbox trigger), 1 worker × %d calls", r.Callbacks[0].With.Concurrency),
		"off, messages/s", "on, messages/s", "on / off", "callbacks accepted by the drain's end")
	ratios := make([]float64, len(r.Callbacks))
	dups := 0
	for i, p := range r.Callbacks {
		ratios[i] = p.With.Rate() / p.Without.Rate()
		dups += p.With.Duplicates + p.Without.Duplicates
		t.add(fmt.Sprintf("pair %d", i+1), fmt.Sprintf("%.0f", p.Without.Rate()), fmt.Sprintf("%.0f", p.With.Rate()), ratio(ratios[i]), fmt.Sprint(p.With.Callbacks))
	}
	m := median(ratios)
	t.add(fmt.Sprintf("**median on / off** (target ≥ %.2f: %s)", targetVsCallbacks, verdict(m >= targetVsCallbacks)), "", "", "**"+ratio(m)+"**", "")
	t.add(fmt.Sprintf("duplicate deliveries (target 0: %s)", verdict(dups == 0)), "", "", fmt.Sprint(dups), "")
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return t.write(w)
}

// ProviderPair is a 1-worker drain with one provider and one with two
// (no rate limit), in the same run.
type ProviderPair struct{ One, Two DrainResult }

// targetVsProviders is the least a drain with two providers may keep of
// the drain with one.
const targetVsProviders = 0.9

// writeProviders writes the table of the drains with two providers
// against one.
func (r *Report) writeProviders(w io.Writer) error {
	if len(r.Providers) == 0 {
		return nil
	}
	t := &table{}
	t.add(fmt.Sprintf("Two providers (no rate limit) against one, 1 worker × %d calls", r.Providers[0].One.Concurrency), "value", "target", "met")
	ratios := make([]float64, len(r.Providers))
	dups := 0
	for i, p := range r.Providers {
		ratios[i] = p.Two.Rate() / p.One.Rate()
		dups += p.Two.Duplicates
		t.add(fmt.Sprintf("pair %d: one provider / two providers, messages/s", i+1), fmt.Sprintf("%.0f / %.0f", p.One.Rate(), p.Two.Rate()), "", "")
	}
	vs := median(ratios)
	t.add("**two providers / one (median of the pairs)**", "**"+ratio(vs)+"**", fmt.Sprintf("≥ %.2f", targetVsProviders), verdict(vs >= targetVsProviders))
	t.add("duplicate deliveries", fmt.Sprint(dups), "0", verdict(dups == 0))
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return t.write(w)
}

// PurgePair is a 1-worker drain without a retention purge and one beside
// it, in the same run.
type PurgePair struct{ Without, With DrainResult }

// targetVsPurge is the least the drain beside a purge may keep of the drain
// without it.
const targetVsPurge = 0.7

// writePurge writes the table of the drain beside a retention purge.
func (r *Report) writePurge(w io.Writer) error {
	if r.Purge == nil {
		return nil
	}
	p := r.Purge
	vs := p.With.Rate() / p.Without.Rate()
	t := &table{}
	t.add(fmt.Sprintf("Retention purge of %d finished rows beside a drain, 1 worker × %d calls", p.With.PurgeRows, p.With.Concurrency), "value", "target", "met")
	t.add("drain without a purge, messages/s", fmt.Sprintf("%.0f", p.Without.Rate()), "", "")
	t.add("drain beside the purge, messages/s", fmt.Sprintf("%.0f", p.With.Rate()), "", "")
	t.add("**beside the purge / without**", "**"+ratio(vs)+"**", fmt.Sprintf("≥ %.2f", targetVsPurge), verdict(vs >= targetVsPurge))
	t.add("finished rows purged while the drain ran", fmt.Sprint(p.With.Purged), "", "")
	t.add("duplicate deliveries", fmt.Sprint(p.With.Duplicates), "0", verdict(p.With.Duplicates == 0))
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return t.write(w)
}

// writeBaseline writes the table that compares this code's 1-worker drains
// with the baseline revision's, pair by pair.
func (r *Report) writeBaseline(w io.Writer) error {
	if len(r.Baseline) == 0 {
		return nil
	}
	t := &table{}
	head := []string{fmt.Sprintf("Baseline: this code against %s, 1 worker × %d calls, alternating",
		r.BaselineRev, r.Baseline[0].This.Concurrency)}
	for k := range r.Baseline {
		head = append(head, fmt.Sprintf("pair %d", k+1))
	}
	t.add(append(head, "median", "target", "met")...)
	row := func(name string, cell func(p BaselinePair) string, median, target, met string) {
		cells := []string{name}
		for _, p := range r.Baseline {
			cells = append(cells, cell(p))
		}
		t.add(append(cells, median, target, met)...)
	}
	rate := func(d DrainResult) string { return fmt.Sprintf("%.0f", d.Rate()) }
	row("this code, messages/s", func(p BaselinePair) string { return rate(p.This) }, "", "", "")
	row(r.BaselineRev+", messages/s", func(p BaselinePair) string { return rate(p.Base) }, "", "", "")
	vs := r.VsBaseline()
	row(fmt.Sprintf("**this code / %s**", r.BaselineRev), func(p BaselinePair) string { return ratio(p.Ratio()) },
		"**"+ratio(vs)+"**", fmt.Sprintf("≥ %.2f", targetVsBaseline), verdict(vs >= targetVsBaseline))
	stmts := func(d DrainResult) string { return fmt.Sprintf("%.3f", d.PerMessage()) }
	row("PostgreSQL statements per message, this code / "+r.BaselineRev, func(p BaselinePair) string {
		return stmts(p.This) + " / " + stmts(p.Base)
	}, "", "", "")
	row(fmt.Sprintf("CPUs busy, %% of all %d cores, this code / %s", r.Machine.CPUs, r.BaselineRev), func(p BaselinePair) string {
		return percent(p.This) + " / " + percent(p.Base)
	}, "", "", "")
	row("duplicate deliveries", func(p BaselinePair) string { return fmt.Sprint(p.This.Duplicates + p.Base.Duplicates) }, "", "0", "")
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return t.write(w)
}

// riverShort names a variant in a few words.
func riverShort(v string) string {
	switch v {
	case RiverUpdate:
		return "plain UPDATE"
	case RiverCompleteTx:
		return "JobCompleteTx"
	}
	return v
}

// writeRiver writes the River peer's table: one column per variant, the
// rows of the main table that apply to it.
func (r *Report) writeRiver(w io.Writer) error {
	if len(r.River) == 0 {
		return nil
	}
	t := &table{}
	head := []string{fmt.Sprintf("River %s peer, same rows, same sink", r.RiverVersion)}
	for _, d := range r.River {
		col := fmt.Sprintf("%s, 1 process × %d jobs", riverVariantName(d.Peer), d.Concurrency)
		if d.ReceiverDelay > 0 {
			col += fmt.Sprintf(", receiver %s", d.ReceiverDelay)
		}
		head = append(head, col)
	}
	t.add(head...)
	row := func(name string, cell func(d DrainResult) string) {
		cells := []string{name}
		for _, d := range r.River {
			cells = append(cells, cell(d))
		}
		t.add(cells...)
	}
	row("messages drained", func(d DrainResult) string {
		if d.TimedOut {
			return fmt.Sprintf("**%d of %d (timed out after %s)**", d.Messages, d.Backlog, r.Options.Timeout)
		}
		return fmt.Sprint(d.Messages)
	})
	row("drain, messages/s", func(d DrainResult) string { return fmt.Sprintf("%.0f", d.Rate()) })
	row("drain / wire limit (same concurrency)", func(d DrainResult) string { return ratio(r.Ratio(d)) })
	if i := slices.IndexFunc(r.Drains, func(d DrainResult) bool { return d.Workers == 1 }); i >= 0 {
		p := r.Drains[i]
		row(fmt.Sprintf("**this project's 1-worker drain (%.0f messages/s) / River**", p.Rate()), func(d DrainResult) string {
			if d.Rate() == 0 {
				return "n/a"
			}
			return "**" + ratio(p.Rate()/d.Rate()) + "**"
		})
	}
	if r.slow() {
		row("drain / (slots ÷ latency)", func(d DrainResult) string { return ratio(d.Rate() / d.SlotsPerLatency()) })
	}
	row("fetch (river_job.attempted_at) → ack (sent_at), p50 / p99 ms", func(d DrainResult) string { return pair(d.ClaimToAck) })
	row("fetch → messages row written, p50 / p99 ms", func(d DrainResult) string { return pair(d.ClaimToRecorded) })
	row(fmt.Sprintf("CPUs busy during the drain, %% of all %d cores (/proc/stat)", r.Machine.CPUs), percent)
	row("PostgreSQL statements per message (transactions, pg_stat_database)", func(d DrainResult) string { return fmt.Sprintf("%.3f", d.PerMessage()) })
	row("PostgreSQL statements per message (pgx tracer in River's process)", func(d DrainResult) string {
		if d.Messages == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", float64(d.TracedStatements())/float64(d.Messages))
	})
	row("peak RSS (VmHWM), MiB", func(d DrainResult) string { return fmt.Sprintf("%.1f", float64(d.PeakRSS)/(1<<20)) })
	row("River jobs not completed after the client stopped", func(d DrainResult) string { return fmt.Sprint(d.JobsNotCompleted) })
	row("duplicate deliveries", func(d DrainResult) string { return fmt.Sprint(d.Duplicates) })
	row("ERROR lines logged", func(d DrainResult) string { return fmt.Sprint(d.WorkerErrors) })
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return t.write(w)
}

// ratio keeps two significant digits below 0.1, so a collapse still reads
// as a number rather than 0.00.
func ratio(x float64) string {
	if x < 0.1 {
		return fmt.Sprintf("%.3f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// count writes 2000000 as 2M and 10000 as 10k.
func count(n int) string {
	switch {
	case n >= 1e6 && n%1e5 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + "M"
	case n >= 1e3 && n%100 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + "k"
	}
	return fmt.Sprint(n)
}

func (r *Report) writeDetails(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "\nMachine: %d CPUs (%s), %d MiB RAM, Linux %s; %s; PostgreSQL %s; Redis %s.\n",
		m.CPUs, m.CPUModel, m.MemoryMiB, m.Kernel, m.Go, m.PostgreSQL, m.Redis)
	if r.Code != "" {
		fmt.Fprintf(&b, "Code: %s.\n", r.Code)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`, started %s, took %s.\n", r.Command, r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	}
	if c := r.Claim; c != nil {
		for _, p := range []struct {
			rows int
			plan string
		}{{c.SmallRows, c.ExplainSmall}, {c.LargeRows, c.ExplainLarge}} {
			fmt.Fprintf(&b, "\nEXPLAIN (ANALYZE, BUFFERS) of the claim statement (store.Claim's SQL, %d rows), %s sent and %d due rows in the table:\n\n```\n%s\n```\n",
				c.Batch, count(p.rows), c.Pending, p.plan)
		}
	}
	if p := r.Profiled; p != nil && len(p.Statements) > 0 {
		state := ""
		if p.TimedOut {
			state = fmt.Sprintf(", timed out with %d of %d drained", p.Messages, p.Backlog)
		}
		fmt.Fprintf(&b, "\nStatements sent by one traced worker (cmd/worker's wiring plus a pgx tracer) draining %d messages in %d claim statements (%.0f messages/s under the profiler%s):\n\n",
			p.Messages, int(p.Claims), p.Rate(), state)
		t := &table{}
		t.add("statement (first words)", "count", "per message", "per claim", "mean ms")
		keys := make([]string, 0, len(p.Statements))
		for k := range p.Statements {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return int(p.Statements[b].Count - p.Statements[a].Count) })
		var total StatementStat
		for _, k := range keys {
			st := p.Statements[k]
			total.Count += st.Count
			total.Seconds += st.Seconds
			t.add("`"+k+"`", fmt.Sprint(st.Count), fmt.Sprintf("%.3f", float64(st.Count)/float64(p.Messages)),
				perClaim(st.Count, p.Claims), ms(st.Seconds/float64(max(st.Count, 1))))
		}
		t.add("**all round trips**", fmt.Sprint(total.Count), fmt.Sprintf("%.3f", float64(total.Count)/float64(p.Messages)),
			perClaim(total.Count, p.Claims), ms(total.Seconds/float64(max(total.Count, 1))))
		if err := t.write(&b); err != nil {
			return err
		}
	}
	b.WriteString("\nHow it was measured:\n\n")
	for _, n := range r.method() {
		b.WriteString("- " + n + "\n")
	}
	for _, n := range r.Notes {
		b.WriteString("- Note: " + n + "\n")
	}
	errs := func(what string, d DrainResult) {
		for _, l := range d.ErrorSamples {
			fmt.Fprintf(&b, "- ERROR logged during the %s (first of each kind): `%s`\n", what, strings.ReplaceAll(l, "`", "'"))
		}
	}
	for _, d := range r.Drains {
		errs(fmt.Sprintf("%d-worker drain", d.Workers), d)
	}
	if r.Profiled != nil {
		errs("profiled drain", *r.Profiled)
	}
	for _, d := range r.River {
		errs(riverVariantName(d.Peer)+" drain", d)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func perClaim(n int64, claims float64) string {
	if claims == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(n)/claims)
}

// method explains each row, so the table can be read without this code.
func (r *Report) method() []string {
	out := []string{
		"Drain: the backlog is COPYed into a fresh database (then VACUUM ANALYZE), then one scheduler and N worker processes built from cmd/ run " +
			"with CRON_INTERVAL=1, MESSAGE_FETCH_LIMIT=100000 (the per-tick budget is never the limit), MAX_CONCURRENT_JOBS as the column says, LOG_LEVEL=WARN, " +
			"against the project's sink (internal/sink) served on 127.0.0.1 in the bench process. The sink's ledger tells when all messages arrived and counts duplicates; " +
			"the programs are then stopped with SIGTERM and the database must show every message sent. A drain that passes -timeout is stopped the same way and reports the part it drained.",
		"Drain rate: messages / (last outcome row written − first claim statement start), from the claim clock; without it, first to last webhook receipt.",
		"Wire limit: the same number of POSTs with the same bodies and headers, through the worker's own webhook client (one client, MaxConns = total concurrency), " +
			"to a fresh sink of the same kind, with workers × MAX_CONCURRENT_JOBS calls in flight, in the bench process, right before the drain it is compared with.",
		"Claim clock: a PL/pgSQL row trigger, installed only in the bench's database, stores the claim statement's statement_timestamp() when a row becomes 'sending' " +
			"and the clock_timestamp() of the UPDATE that marks it 'sent'; ack is the row's sent_at (the worker's clock after it read the 2xx). Same machine, same clock.",
		"Peak RSS: VmHWM of each worker process from /proc just before it is stopped; the largest is shown.",
		"PostgreSQL statements: pg_stat_statements is not preloaded here, so the bench counts transactions (xact_commit + xact_rollback of the bench database in " +
			"pg_stat_database, read after every backend exited): every autocommit statement is one transaction and one round trip. It includes the scheduler's " +
			"switch reads and each tick's two ReserveTick statements (a few per second), and excludes pool pings. Round trips per claim batch = transactions / claim statements " +
			"(the workers' messaging_claim_duration_seconds_count, which includes claims that found nothing).",
		"Webhook call and claim statement times are the workers' own Prometheus histograms, scraped from METRICS_PORT before the workers stop (p50/p99 interpolated inside buckets).",
		"CPUs busy: the aggregate cpu line of /proc/stat read when the bench first sees a webhook receipt (it looks every 20 ms) and when the sink has every message; " +
			"busy = user+nice+system+irq+softirq+steal, idle = idle+iowait, shown as busy / (busy+idle) in % of all cores. It is the whole machine: PostgreSQL, Redis, " +
			"the programs, the bench's own sink, and anything else running on it.",
	}
	if r.slow() {
		out = append(out, fmt.Sprintf("Slow receiver: the sink holds every answer %s after the request arrived (the receipt time is the arrival), in the wire limit, "+
			"the drains and the River peer alike. slots ÷ latency = workers × MAX_CONCURRENT_JOBS / delay, what the call slots allow if nothing else waits; "+
			"scaling = drain rate / the 1-worker drain's rate, in the same run.", r.Options.ReceiverDelay))
	}
	if len(r.River) > 0 {
		out = append(out, fmt.Sprintf("River peer: bench/river (its own Go module, River %s, riverpgxv5), built by the bench with go build -C and run as a child process. "+
			"Its setup (River's migrations, one job per pending row with the row's id, phone number and content in the args, InsertManyFast) runs before anything is measured. "+
			"Then one process runs a River client with MaxWorkers = %d, FetchCooldown 2 ms and FetchPollInterval 20 ms (the settings of River's own benchmark; "+
			"River's defaults are 100 ms and 1 s). Each job POSTs the same body and headers as the project's worker (same pool settings) and marks the row sent: "+
			"plain UPDATE, after which River's batched completer marks the job completed; or the UPDATE and river.JobCompleteTx in one transaction. "+
			"It writes no Redis record (the project's worker does). It is stopped with SIGTERM once the sink has every message, and River's Stop lets the completer finish. "+
			"Drain rate: messages / (last messages row written − first river_job.attempted_at), from a trigger like the claim clock that stores clock_timestamp() "+
			"when the row becomes sent. Statements per message are both transactions (pg_stat_database, as for the project; a JobCompleteTx transaction "+
			"counts once) and the statements a pgx tracer in River's process counted (every query, BEGIN and COMMIT included; prepares and connects left out), "+
			"River's leader election and maintenance included.", r.RiverVersion, r.Options.Concurrency))
	}
	if r.Claim != nil {
		out = append(out, fmt.Sprintf("Claim scaling: two databases with %d due rows each and %d or %d sent rows (older than the due rows; VACUUM ANALYZE after loading, as autovacuum would); "+
			"store.Claim of %d rows timed from the bench, %d runs in each after %d warm-up runs, alternating between the databases so noise falls on both alike, "+
			"the claimed rows put back to pending after each run; median shown. These connections commit with synchronous_commit off: the WAL flush costs the same "+
			"whatever the table holds and is the noisiest part on a shared disk.",
			r.Claim.Pending, r.Claim.SmallRows, r.Claim.LargeRows, r.Claim.Batch, r.Claim.Runs, r.Claim.Runs/10))
	}
	return out
}
