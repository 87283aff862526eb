package bench

import (
	"math"
	"slices"
	"time"
)

// Quantiles are the two latency points the targets are stated in. Values are
// seconds; Count is how many samples they summarise (0: not measured).
type Quantiles struct {
	P50, P99 float64
	Count    int
}

// Summarize returns the p50 and p99 of xs by the nearest-rank method, which
// never invents a value that was not observed (so a p99 of a few hundred
// samples is a real sample, not an interpolation).
func Summarize(xs []float64) Quantiles {
	if len(xs) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Quantiles{P50: nearestRank(s, 0.50), P99: nearestRank(s, 0.99), Count: len(s)}
}

// nearestRank is the smallest sample such that at least q of the samples are
// at or below it; sorted must be sorted and non-empty.
func nearestRank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// Median is the middle duration (the lower middle for an even count); it is
// how claim timings are compared, because one stall on a shared machine
// must not move the result.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
