package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkPublishConsume/fsync=lazy-2         	    3000	    123 ns/op	      7500 p50-µs	     24000 p99-µs	      8000 events/s
BenchmarkVerdictTCP1000-2   	       3	 412345678 ns/op	       412.0 ms/verdict
BenchmarkBroken-2 x
PASS
`
	got := parseBench(strings.NewReader(out))
	want := []benchLine{
		{name: "PublishConsume/fsync=lazy", metrics: map[string]float64{"ns/op": 123, "p50-µs": 7500, "p99-µs": 24000, "events/s": 8000}},
		{name: "VerdictTCP1000", metrics: map[string]float64{"ns/op": 412345678, "ms/verdict": 412}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(benchLine{})); diff != "" {
		t.Errorf("parseBench (-want +got):\n%s", diff)
	}
}
