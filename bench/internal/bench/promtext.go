package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples is a scraped /metrics page. The bench reads the worker's own
// claim and webhook histograms from it, because those are measured inside
// the worker where the bench cannot look.
type Samples []Sample

// ParseMetrics reads the text exposition format. It understands exactly what
// client_golang writes (no exemplars, optional timestamps) and rejects
// anything else, so a format change fails loudly instead of reading zeros.
func ParseMetrics(r io.Reader) (Samples, error) {
	var out Samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		rest, err := parseLabels(line[1:], s.Labels)
		if err != nil {
			return s, err
		}
		line = rest
	}
	fields := strings.Fields(line)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// parseLabels reads name="value" pairs up to the closing brace and returns
// what follows it.
func parseLabels(in string, into map[string]string) (string, error) {
	for {
		in = strings.TrimLeft(in, " ,")
		if strings.HasPrefix(in, "}") {
			return in[1:], nil
		}
		eq := strings.IndexByte(in, '=')
		if eq <= 0 || len(in) < eq+2 || in[eq+1] != '"' {
			return "", fmt.Errorf("bad label")
		}
		name := strings.TrimSpace(in[:eq])
		in = in[eq+2:]
		var val strings.Builder
		closed := false
		for j := 0; j < len(in); j++ {
			switch c := in[j]; {
			case c == '\\' && j+1 < len(in):
				j++
				switch in[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(in[j])
				}
			case c == '"':
				into[name] = val.String()
				in, closed = in[j+1:], true
			default:
				val.WriteByte(c)
			}
			if closed {
				break
			}
		}
		if !closed {
			return "", fmt.Errorf("unterminated label value")
		}
	}
}

// matches tells whether every label in want has the given value.
func (s Sample) matches(want map[string]string) bool {
	for k, v := range want {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

// Sum adds the values of the samples called name whose labels include want.
func (ss Samples) Sum(name string, want map[string]string) float64 {
	var t float64
	for _, s := range ss {
		if s.Name == name && s.matches(want) {
			t += s.Value
		}
	}
	return t
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	LE    float64
	Count float64
}

// Histogram collects the cumulative buckets of histogram name (summed over
// the samples matching want, so several workers' pages can be merged by
// concatenating them), sorted by upper bound.
func (ss Samples) Histogram(name string, want map[string]string) []Bucket {
	by := map[float64]float64{}
	for _, s := range ss {
		if s.Name != name+"_bucket" || !s.matches(want) {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			continue
		}
		by[le] += s.Value
	}
	out := make([]Bucket, 0, len(by))
	for le, c := range by {
		out = append(out, Bucket{LE: le, Count: c})
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		switch {
		case a.LE < b.LE:
			return -1
		case a.LE > b.LE:
			return 1
		}
		return 0
	})
	return out
}

// HistogramQuantile estimates quantile q the way PromQL's
// histogram_quantile does: linear interpolation inside the bucket that holds
// it. A result in the +Inf bucket is reported as the last finite bound, so
// it is a lower bound. NaN when the histogram is empty.
func HistogramQuantile(q float64, bs []Bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].Count == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].Count
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				return prevLE
			}
			if b.Count == prevCount {
				return b.LE
			}
			return prevLE + (b.LE-prevLE)*(rank-prevCount)/(b.Count-prevCount)
		}
		prevLE, prevCount = b.LE, b.Count
	}
	return prevLE
}
