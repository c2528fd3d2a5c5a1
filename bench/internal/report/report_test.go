package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/bench/internal/stats"
)

func sample() *Report {
	r := &Report{Generated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Command: "drbench -quick", Host: "test"}
	r.Metrics = []Metric{
		{Metric: "detection", Tool: Drwatch, Unit: "ms", Summary: stats.Summarize([]float64{100, 300}, 0)},
		{Metric: "detection", Tool: "keepalived", Unit: "ms", Summary: stats.Summarize([]float64{400}, 0)},
		{Metric: "detection", Tool: "patroni", Unit: "ms", Summary: stats.Summarize(nil, 2), Note: "a|b"},
		{Metric: "rpo", Tool: "keepalived", Unit: "rows", Summary: stats.Summarize([]float64{0}, 0)},
	}
	r.Micro = []Micro{{Name: "bus p50", Value: 0.76, Unit: "ms"}}
	r.Setf("keepalived", "advert_int", "%ds", 1)
	r.Notef("booth: %s", "no pacemaker")
	return r
}

func TestComparisons(t *testing.T) {
	half, threeQuarters := 0.5, 0.75
	want := []Comparison{
		{Metric: "detection", Peer: "keepalived", Ratio: &half, P99Ratio: &threeQuarters},
		{Metric: "detection", Peer: "patroni"},
		{Metric: "rpo", Peer: "keepalived"},
	}
	if diff := cmp.Diff(want, sample().Comparisons()); diff != "" {
		t.Errorf("Comparisons (-want +got):\n%s", diff)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 12: "12", 1.25: "1.2", 2500.55: "2500.6"} {
		if got := Num(in); got != want {
			t.Errorf("Num(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| detection | drwatch | ms | 200 | 300 | 2 | — | — |  |",
		"| detection | keepalived | ms | 400 | 400 | 1 | 0.50 | 0.75 |  |",
		"| detection | patroni | ms | — | — | 2 (2 failed) | n/a | n/a | a\\|b |",
		"| keepalived | advert_int | 1s |",
		"- booth: no pacemaker",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"keepalived  ms    400", "0.50", "bus p50", "booth: no pacemaker"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Metrics     []Metric     `json:"metrics"`
		Comparisons []Comparison `json:"comparisons"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(got.Metrics) != 4 || len(got.Comparisons) != 3 || got.Comparisons[0].Ratio == nil || *got.Comparisons[0].Ratio != 0.5 || got.Comparisons[1].Ratio != nil {
		t.Errorf("round trip: %+v", got)
	}
}

func TestRatioCells(t *testing.T) {
	for _, tc := range []struct {
		name             string
		drwatch, peer    []float64
		wantMed, wantP99 string
	}{
		{"both lost nothing", []float64{0, 0}, []float64{0, 0}, "both 0", "both 0"},
		{"peer's tail only", []float64{0, 0, 0}, []float64{0, 0, 254}, "both 0", "0.00"},
		{"drwatch lost, peer did not", []float64{0, 0, 8}, []float64{0, 0, 0}, "both 0", "n/a"},
		{"both figures", []float64{100, 300}, []float64{400}, "0.50", "0.75"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Metrics: []Metric{
				{Metric: "m", Tool: Drwatch, Summary: stats.Summarize(tc.drwatch, 0)},
				{Metric: "m", Tool: "peer", Summary: stats.Summarize(tc.peer, 0)},
			}}
			med, p99 := r.ratios(r.Metrics[1])
			if med != tc.wantMed || p99 != tc.wantP99 {
				t.Errorf("ratios = %q, %q; want %q, %q", med, p99, tc.wantMed, tc.wantP99)
			}
		})
	}
}
