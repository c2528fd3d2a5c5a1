package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/bench/internal/report"
)

func TestMergeKeepsWhatThisRunDidNotMeasure(t *testing.T) {
	old := report.Report{
		Generated: time.Date(2026, 11, 22, 17, 29, 0, 0, time.UTC),
		Command:   "drbench",
		Settings: []report.Setting{
			{Tool: "all", Setting: "runs per metric", Value: "20"},
			{Tool: "all", Setting: "load", Value: "1.0"},
			{Tool: "drwatch", Setting: "commit", Value: "af2c4d4"},
			{Tool: "keepalived", Setting: "advert_int", Value: "1"},
		},
		Metrics: []report.Metric{
			{Metric: "1 detection", Tool: "drwatch"},
			{Metric: "1 detection", Tool: "keepalived"},
			{Metric: "4 false failovers under netem", Tool: "drwatch", Note: "over 2m0s"},
			{Metric: "4 false failovers under netem", Tool: "keepalived", Note: "over 2m0s"},
		},
		Micro: []report.Micro{{Name: "bus", Value: 1942}},
		Notes: []string{"keepalived: early takeover seen", "drwatch: one note"},
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "latest.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// A -runs 0 -tools drwatch -micro=false run: only drwatch's netem window.
	rep := &report.Report{
		Command: "drbench -runs 0 -tools drwatch",
		Settings: []report.Setting{
			{Tool: "all", Setting: "load", Value: "2.0"},
			{Tool: "drwatch", Setting: "commit", Value: "abc1234"},
		},
		Metrics: []report.Metric{{Metric: "4 false failovers under netem", Tool: "drwatch", Note: "over 10m0s"}},
	}
	if err := mergeReport(rep, path, options{tools: "drwatch"}); err != nil {
		t.Fatal(err)
	}
	want := []report.Metric{
		{Metric: "1 detection", Tool: "drwatch"},
		{Metric: "1 detection", Tool: "keepalived"},
		{Metric: "4 false failovers under netem", Tool: "drwatch", Note: "over 10m0s"},
		{Metric: "4 false failovers under netem", Tool: "keepalived", Note: "over 2m0s"},
	}
	if diff := cmp.Diff(want, rep.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	wantSettings := []report.Setting{
		{Tool: "all", Setting: "load", Value: "2.0"},
		{Tool: "drwatch", Setting: "commit", Value: "abc1234"},
		{Tool: "all", Setting: "runs per metric", Value: "20"},
		{Tool: "all", Setting: "load (run of 2026-11-22T17:29:00Z)", Value: "1.0"},
		{Tool: "drwatch", Setting: "commit (run of 2026-11-22T17:29:00Z)", Value: "af2c4d4"},
		{Tool: "keepalived", Setting: "advert_int", Value: "1"},
	}
	if diff := cmp.Diff(wantSettings, rep.Settings); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(old.Notes, rep.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(old.Micro, rep.Micro); diff != "" {
		t.Errorf("micro figures (-want +got):\n%s", diff)
	}
	wantCmd := "drbench -runs 0 -tools drwatch (kept from the run of 2026-11-22T17:29:00Z, drbench: drwatch 1 detection, keepalived 1 detection, keepalived 4 false failovers under netem, the micro benchmarks)"
	if rep.Command != wantCmd {
		t.Errorf("command:\n got %s\nwant %s", rep.Command, wantCmd)
	}
}
