// Package stats summarises repeated measurements: median, p99 and the
// ratio between two tools' figures.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary is one metric over several runs, in the metric's unit
// (milliseconds, rows, failovers). Failed counts runs that gave no figure
// (e.g. the standby never took over within the run's limit).
type Summary struct {
	Runs   int     `json:"runs"`
	Failed int     `json:"failed"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// OK reports whether at least one run gave a figure.
func (s Summary) OK() bool { return s.Runs > s.Failed }

// Summarize returns the summary of samples; failed runs are counted apart.
// The median of an even count is the mean of the two middle samples; p99
// is the nearest-rank percentile, so over fewer than 100 runs it is the
// maximum — the honest reading of 20 runs.
func Summarize(samples []float64, failed int) Summary {
	s := Summary{Runs: len(samples) + failed, Failed: failed}
	if len(samples) == 0 {
		return s
	}
	v := slices.Clone(samples)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		s.Median = v[n/2]
	} else {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	s.P99 = Percentile(v, 99)
	s.Min, s.Max = v[0], v[n-1]
	return s
}

// Millis converts durations to milliseconds for Summarize.
func Millis(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = float64(x) / float64(time.Millisecond)
	}
	return out
}

// Percentile is the nearest-rank p-th percentile of sorted samples.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Ratio is a/b, or NaN when b is zero or either is missing: a ratio to
// nothing is not a figure.
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
