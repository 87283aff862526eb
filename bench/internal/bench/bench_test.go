package bench

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

func TestSummarizeNearestRank(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, float64(i))
	}
	q := Summarize(xs)
	if q.P50 != 50 || q.P99 != 99 || q.Count != 100 {
		t.Fatalf("got %+v, want p50 50, p99 99, count 100", q)
	}
	if xs[0] != 100 {
		t.Fatal("Summarize sorted its argument in place")
	}
	if one := Summarize([]float64{7}); one.P50 != 7 || one.P99 != 7 {
		t.Fatalf("one sample: %+v", one)
	}
	if none := Summarize(nil); none.Count != 0 {
		t.Fatalf("no samples: %+v", none)
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]time.Duration{5, 1, 3, 100}); got != 3 {
		t.Fatalf("Median = %v, want the lower middle 3", got)
	}
	if got := Median(nil); got != 0 {
		t.Fatalf("Median(nil) = %v", got)
	}
}

const page = `# HELP messaging_claim_duration_seconds Time of one claim statement.
# TYPE messaging_claim_duration_seconds histogram
messaging_claim_duration_seconds_bucket{le="0.001"} 2
messaging_claim_duration_seconds_bucket{le="0.01"} 6
messaging_claim_duration_seconds_bucket{le="+Inf"} 10
messaging_claim_duration_seconds_sum 0.5
messaging_claim_duration_seconds_count 10
messaging_webhook_request_duration_seconds_bucket{outcome="sent",le="0.005"} 50
messaging_webhook_request_duration_seconds_bucket{outcome="sent",le="0.01"} 100
messaging_webhook_request_duration_seconds_bucket{outcome="sent",le="+Inf"} 100
messaging_webhook_request_duration_seconds_bucket{outcome="retried",le="0.005"} 7
messaging_deliveries_total{outcome="sent",reason="ok"} 100
go_info{version="go1.26 \"x\", y"} 1 1700000000000
`

func TestParseMetrics(t *testing.T) {
	ss, err := ParseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.Sum("messaging_claim_duration_seconds_count", nil); got != 10 {
		t.Fatalf("count = %v", got)
	}
	if got := ss.Sum("messaging_deliveries_total", map[string]string{"outcome": "sent"}); got != 100 {
		t.Fatalf("sent = %v", got)
	}
	if got := ss.Sum("go_info", map[string]string{"version": `go1.26 "x", y`}); got != 1 {
		t.Fatalf("escaped label not read: %v", got)
	}
	hook := ss.Histogram("messaging_webhook_request_duration_seconds", map[string]string{"outcome": "sent"})
	if len(hook) != 3 || hook[0].LE != 0.005 || !math.IsInf(hook[2].LE, 1) {
		t.Fatalf("buckets = %+v", hook)
	}
	// Half the calls are under 5 ms; p99 interpolates inside (5 ms, 10 ms].
	if got := HistogramQuantile(0.5, hook); got != 0.005 {
		t.Fatalf("p50 = %v", got)
	}
	if got := HistogramQuantile(0.99, hook); math.Abs(got-0.0099) > 1e-9 {
		t.Fatalf("p99 = %v", got)
	}
	// A quantile in the +Inf bucket is reported as the last finite bound.
	claim := ss.Histogram("messaging_claim_duration_seconds", nil)
	if got := HistogramQuantile(0.99, claim); got != 0.01 {
		t.Fatalf("p99 in +Inf = %v", got)
	}
	if got := HistogramQuantile(0.5, nil); !math.IsNaN(got) {
		t.Fatalf("empty histogram = %v", got)
	}
	if _, err := ParseMetrics(strings.NewReader("broken{le=\"1} 2\n")); err == nil {
		t.Fatal("an unterminated label was accepted")
	}
}

func TestGeneratorIsStableAndSized(t *testing.T) {
	a, b := Generator{Prefix: "b01234567-d001"}, Generator{Prefix: "b01234567-w032"}
	for i := range 50 {
		ma, mb := a.Message(i), b.Message(i)
		if ma.Content != mb.Content || ma.To != mb.To {
			t.Fatalf("message %d differs between runs: %+v vs %+v", i, ma, mb)
		}
		if len(ma.ID) != len(mb.ID) || len(ma.ID) > 36 {
			t.Fatalf("ids %q and %q: want equal lengths within VARCHAR(36)", ma.ID, mb.ID)
		}
		if len(ma.Content) > 160 || len(ma.To) > 20 || strings.Contains(ma.Content, "%!") {
			t.Fatalf("message %d does not fit the schema: %+v", i, ma)
		}
	}
}

func TestStatementLabel(t *testing.T) {
	got := StatementLabel("\nWITH budget AS (\n    SELECT budget FROM dispatch_control WHERE id = 1")
	if got != "WITH budget AS ( SELECT budget FROM" {
		t.Fatalf("label = %q", got)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions([]string{"-quick", "-workers", "1, 3", "-claim-runs", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Messages != 5000 || o.SentLarge != 200000 || o.ClaimRuns != 7 || len(o.Workers) != 2 || o.Workers[1] != 3 {
		t.Fatalf("options = %+v", o)
	}
	if o.Baseline != DefaultBaseline {
		t.Fatalf("baseline %q, want %q", o.Baseline, DefaultBaseline)
	}
	if !o.River || o.ReceiverDelay != 0 || !o.ClaimScaling {
		t.Fatalf("defaults: River %v, receiver delay %v, claim scaling %v", o.River, o.ReceiverDelay, o.ClaimScaling)
	}
	// The slow receiver mode: fewer messages, no claim timing, no River,
	// unless the flags say otherwise.
	slow, err := ParseOptions([]string{"-receiver-delay", "20ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if slow.ReceiverDelay != 20*time.Millisecond || slow.Messages != 20000 || slow.ClaimScaling || slow.River || slow.Baseline != "" {
		t.Fatalf("slow defaults = %+v", slow)
	}
	slow, err = ParseOptions([]string{"-receiver-delay=20ms", "-river", "-messages", "300", "-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slow.River || slow.Messages != 300 {
		t.Fatalf("explicit flags lost in slow mode: %+v", slow)
	}
	if q, err := ParseOptions([]string{"-receiver-delay", "20ms", "-quick"}, io.Discard); err != nil || q.Messages != 5000 {
		t.Fatalf("-quick in slow mode: %+v, %v", q, err)
	}
	for _, bad := range [][]string{
		{"-workers", "1,0"}, {"-messages", "0"}, {"-concurrency", "1001"}, {"extra"},
		{"-receiver-delay", "-1ms"}, {"-receiver-delay", "6s"}, {"-receiver-delay", "20"}, {"-timeout", "0s"}, {"-river=maybe"},
	} {
		if _, err := ParseOptions(bad, io.Discard); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestMarkdownTable(t *testing.T) {
	r := &Report{
		Wire: map[int]WireResult{32: {Concurrency: 32, Messages: 1000, Elapsed: time.Second}},
		Drains: []DrainResult{{
			Workers: 1, Concurrency: 32, Backlog: 1000, Messages: 1000, Elapsed: 2 * time.Second, ClaimClock: true,
			ClaimToAck: Quantiles{P50: 0.01, P99: 0.3, Count: 1000},
			PeakRSS:    30 << 20, Transactions: 100, Claims: 40, Claimed: 1000,
		}},
		Claim: &ClaimScaling{Batch: 32, SmallRows: 10000, LargeRows: 2000000, Small: time.Millisecond, Large: 1200 * time.Microsecond,
			ExplainSmall: "Seq Scan on messages m", ExplainLarge: "Index Scan using messages_pkey"},
	}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| measurement | 1 worker × 32 calls | target | met |",
		"| **drain / wire limit** | **0.50** | ≥ 0.27 with 1 worker | yes |",
		"| claim → ack (sent_at), p50 / p99 ms | 10.0 / 300 | p99 < 250 ms | **no** |",
		"| PostgreSQL round trips per claim batch | 2.5 | ≤ 3 | yes |",
		"| **claim time ratio 2M / 10k** | **1.20** | ≤ 1.5 | yes |",
		"| claim plan reads the whole table (Seq Scan on messages) | 10k: yes, 2M: no | never | **no** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// TestQuickParts runs the wire limit and the claim scaling at toy sizes
// against the real servers, and a tiny drain through the built programs.
func TestQuickParts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Redis and a build of the programs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := ParseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	w, err := runWire(ctx, Generator{Prefix: "t" + randomHex(4) + "-w004"}, 300, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Rate() <= 0 || w.Latency.Count != 300 || w.Duplicates != 0 {
		t.Fatalf("wire = %+v", w)
	}

	cs, err := runClaimScaling(ctx, claimSpec{env: o.Env, small: 100, large: 2000, pending: 50, batch: 8, runs: 10, log: log})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Small <= 0 || cs.Large <= 0 || !strings.Contains(cs.ExplainLarge, "Execution Time") {
		t.Fatalf("claim scaling = %+v", cs)
	}

	dir := t.TempDir()
	if err := buildPrograms(ctx, dir); err != nil {
		t.Fatal(err)
	}
	d, err := runDrain(ctx, drainSpec{
		env: o.Env, workers: 1, concurrency: 4, messages: 200, tag: "t" + randomHex(4) + "-d001",
		scheduler: dir + "/scheduler", worker: dir + "/worker",
		workerArgs: func(int) ([]string, string) { return nil, "" },
		claimClock: true, timeout: time.Minute, log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Rate() <= 0 || d.ClaimToAck.Count != 200 || d.PeakRSS <= 0 || d.Transactions <= 0 || d.Claims <= 0 || d.Duplicates != 0 {
		t.Fatalf("drain = %+v", d)
	}
	t.Logf("wire %.0f/s, drain %.0f/s, claim %v vs %v", w.Rate(), d.Rate(), cs.Small, cs.Large)
}

func TestErrorLinesAreCountedAndDeduplicated(t *testing.T) {
	var tb tailBuffer
	for _, chunk := range []string{
		"2026-01-01T00:00:00Z INF worker started\n2026-01-01T00:00:01Z ERR dispatch task failed err=x\n",
		"2026-01-01T00:00:02Z ERR dispatch task ", // split across writes
		"failed err=x\n{\"level\":\"ERROR\",\"msg\":\"other\"}\n",
	} {
		if _, err := tb.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	n, lines := tb.errorLines()
	if n != 3 || len(lines) != 3 {
		t.Fatalf("counted %d, kept %q", n, lines)
	}
	if got := distinctErrors("worker 0", lines); len(got) != 2 || !strings.HasPrefix(got[0], "worker 0: ") {
		t.Fatalf("distinct = %q", got)
	}
}

func TestMarkdownRiverAndCPU(t *testing.T) {
	r := &Report{
		Machine:      Machine{CPUs: 2},
		RiverVersion: "v0.51.2",
		Wire:         map[int]WireResult{32: {Concurrency: 32, Messages: 1000, Elapsed: 100 * time.Millisecond}},
		Drains: []DrainResult{{
			Workers: 1, Concurrency: 32, Backlog: 1000, Messages: 1000, Elapsed: 200 * time.Millisecond, // 5000/s
			CPUBusy: 91.4, CPUMeasured: true, Transactions: 300, Claims: 40, Claimed: 1000, PeakRSS: 30 << 20,
		}},
		River: []DrainResult{
			{Workers: 1, Concurrency: 32, Messages: 1000, Elapsed: 500 * time.Millisecond, Peer: RiverUpdate, Transactions: 2500,
				Statements: map[string]StatementStat{"UPDATE messages": {Count: 1000}, "(prepare)": {Count: 9}, "begin": {Count: 2000}}},
			{Workers: 1, Concurrency: 32, Messages: 1000, Elapsed: time.Second, Peer: RiverCompleteTx, CPUBusy: 70, CPUMeasured: true},
		},
	}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		// 5000/s against River's faster 2000/s.
		"| **drain / River's faster variant** (plain UPDATE, 2000 messages/s, 1 process × 32 jobs) | **2.50** | ≥ 3 with 1 worker | **no** |",
		"| CPUs busy during the drain, % of all 2 cores (/proc/stat) | 91 | ≥ 90 % (CPU-bound) | yes |",
		"| PostgreSQL statements per message (transactions, pg_stat_database) | 0.300 |  |  |",
		"| River v0.51.2 peer, same rows, same sink | River, plain UPDATE + batched completer, 1 process × 32 jobs | River, UPDATE + JobCompleteTx in one transaction, 1 process × 32 jobs |",
		"| **this project's 1-worker drain (5000 messages/s) / River** | **2.50** | **5.00** |",
		"| CPUs busy during the drain, % of all 2 cores (/proc/stat) | n/a | 70 |",
		"| PostgreSQL statements per message (transactions, pg_stat_database) | 2.500 | 0.000 |",
		"| PostgreSQL statements per message (pgx tracer in River's process) | 3.000 | 0.000 |",
		"River peer: bench/river",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "slots ÷ latency") {
		t.Error("slow receiver rows without a receiver delay")
	}
}

func TestMarkdownBaseline(t *testing.T) {
	drain := func(elapsed time.Duration) DrainResult {
		return DrainResult{Workers: 1, Concurrency: 32, Backlog: 1000, Messages: 1000, Elapsed: elapsed, Transactions: 20}
	}
	r := &Report{
		Machine: Machine{CPUs: 2},
		Wire:    map[int]WireResult{32: {Concurrency: 32, Messages: 1000, Elapsed: 50 * time.Millisecond}},
		Drains:  []DrainResult{drain(125 * time.Millisecond)}, // 8000/s
		Baseline: []BaselinePair{
			{This: drain(125 * time.Millisecond), Base: drain(100 * time.Millisecond)}, // 0.80
			{This: drain(100 * time.Millisecond), Base: drain(100 * time.Millisecond)}, // 1.00
			{This: drain(110 * time.Millisecond), Base: drain(100 * time.Millisecond)}, // 0.91
		},
		BaselineRev: "5324d75",
	}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| Baseline: this code against 5324d75, 1 worker × 32 calls, alternating | pair 1 | pair 2 | pair 3 | median | target | met |",
		"| this code, messages/s | 8000 | 10000 | 9091 |  |  |  |",
		"| 5324d75, messages/s | 10000 | 10000 | 10000 |  |  |  |",
		"| **this code / 5324d75** | 0.80 | 1.00 | 0.91 | **0.91** | ≥ 0.90 | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// The baseline is built from an exported revision with its patch; the
// default revision must exist in this repository and its patch apply.
func TestBuildBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an earlier revision")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "-C", root, "cat-file", "-e", DefaultBaseline+"^{commit}").Run(); err != nil {
		t.Skipf("revision %s is not in this clone (shallow?): %v", DefaultBaseline, err)
	}
	b, err := buildBaseline(context.Background(), DefaultBaseline, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{b.worker, b.scheduler} {
		if _, err := os.Stat(bin); err != nil {
			t.Error(err)
		}
	}
	if _, err := fs.Stat(b.migrations, "00003_lease_index.sql"); err != nil {
		t.Error(err)
	}
}

func TestMarkdownSlowReceiver(t *testing.T) {
	delay := 20 * time.Millisecond
	d := func(workers int, elapsed time.Duration, tx int64) DrainResult {
		return DrainResult{Workers: workers, Concurrency: 16, Backlog: 1000, Messages: 1000, Elapsed: elapsed,
			ReceiverDelay: delay, Transactions: tx, CPUBusy: 40, CPUMeasured: true}
	}
	r := &Report{
		Options: Options{ReceiverDelay: delay},
		Machine: Machine{CPUs: 2},
		Wire:    map[int]WireResult{16: {Messages: 1000, Elapsed: time.Second}, 64: {Messages: 1000, Elapsed: 300 * time.Millisecond}},
		// 1 worker: 1000/1.4 s = 714/s of 800; 4 workers: 2000/s of 3200, 2.8×.
		Drains: []DrainResult{d(1, 1400*time.Millisecond, 100), d(4, 500*time.Millisecond, 200)},
	}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| measurement | 1 worker × 16 calls, receiver 20ms | 4 workers × 16 calls, receiver 20ms | target | met |",
		"| slots ÷ latency, messages/s (workers × calls / receiver delay) | 800 | 3200 |  |  |",
		"| **drain / (slots ÷ latency)** | **0.89** | **0.62** | ≥ 0.9 with 1 worker | **no** |",
		"| **scaling: drain / 1-worker drain** | **1.00×** | **2.80×** | ≥ 3.5× with 4 workers | **no** |",
		"| PostgreSQL statements per message (transactions, pg_stat_database) | 0.100 | 0.200 | ≤ 0.15 (slow receiver) | **no** |",
		"| CPUs busy during the drain, % of all 2 cores (/proc/stat) | 40 | 40 |  |  |",
		"| **drain / wire limit** | **0.71** | **0.60** |  |  |",
		"Slow receiver: the sink holds every answer 20ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestRiverVersion(t *testing.T) {
	v, err := riverVersion([]byte("module x\n\ngo 1.26\n\nrequire (\n\tgithub.com/riverqueue/river v0.51.2\n\tgithub.com/riverqueue/river/riverdriver/riverpgxv5 v0.51.2\n)\n"))
	if err != nil || v != "v0.51.2" {
		t.Fatalf("version = %q, %v", v, err)
	}
	if _, err := riverVersion([]byte("module x\n")); err == nil {
		t.Fatal("a go.mod without River was accepted")
	}
	// The module the bench builds requires River, and the product does not.
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, riverDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := riverVersion(b); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "riverqueue") {
		t.Fatal("the product's go.mod requires River; only bench/river may")
	}
}

func TestSlowReceiverHoldsAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const delay = 60 * time.Millisecond
	rcv, err := startReceiver(ctx, 1, delay)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.close()
	client := webhook.New(webhook.Options{URL: rcv.url, Timeout: 10 * time.Second, AuthHeader: "x-ins-auth-key", MaxConns: 1})
	defer client.Close()
	t0 := time.Now()
	if _, err := client.Send(ctx, Generator{Prefix: "slow"}.Message(0)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < delay {
		t.Fatalf("the answer came after %s, want at least %s", took, delay)
	}
	_, requests, _, from, _ := rcv.receipts()
	if requests != 1 || from.Sub(t0) >= delay {
		t.Fatalf("requests %d, receipt %s after the call: the receipt must be the arrival", requests, from.Sub(t0))
	}
}
