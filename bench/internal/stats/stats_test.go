package stats

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		failed  int
		want    Summary
	}{
		{"empty", nil, 0, Summary{}},
		{"all failed", nil, 3, Summary{Runs: 3, Failed: 3}},
		{"odd", []float64{30, 10, 20}, 0, Summary{Runs: 3, Median: 20, P99: 30, Min: 10, Max: 30}},
		{"even", []float64{40, 10, 20, 30}, 1, Summary{Runs: 5, Failed: 1, Median: 25, P99: 40, Min: 10, Max: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.samples, tt.failed)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
			if want := len(tt.samples) > 0; got.OK() != want {
				t.Errorf("OK() = %v, want %v", got.OK(), want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i + 1)
		}
		return v
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 99, 0},
		{"20 runs: p99 is the max", seq(20), 99, 20},
		{"100 runs p99", seq(100), 99, 99},
		{"100 runs p50", seq(100), 50, 50},
		{"p0 is the min", []float64{5, 6}, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestMillis(t *testing.T) {
	got := Millis([]time.Duration{1500 * time.Microsecond, 2 * time.Second})
	if diff := cmp.Diff([]float64{1.5, 2000}, got); diff != "" {
		t.Errorf("Millis (-want +got):\n%s", diff)
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	for _, c := range [][2]float64{{1, 0}, {math.NaN(), 1}, {1, math.NaN()}} {
		if got := Ratio(c[0], c[1]); !math.IsNaN(got) {
			t.Errorf("Ratio(%v, %v) = %v, want NaN", c[0], c[1], got)
		}
	}
}
