package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/drwatch/drwatch/bench/internal/report"
)

// benchLine is one result line of `go test -bench`: the name and its
// metrics by unit.
type benchLine struct {
	name    string
	metrics map[string]float64
}

// parseBench reads `go test -bench` output: "BenchmarkX/sub-2  N  v unit  v unit…".
func parseBench(r io.Reader) []benchLine {
	var out []benchLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		bl := benchLine{name: strings.TrimPrefix(name, "Benchmark"), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			bl.metrics[f[i+1]] = v
		}
		out = append(out, bl)
	}
	return out
}

// microBench runs drwatch's Go benchmarks and adds the figures.
func microBench(ctx context.Context, o options, rep *report.Report, stdout io.Writer) {
	type want struct {
		bench, metric, name, unit string
		scale                     float64
		note                      string
	}
	suites := []struct {
		pkg, pattern, benchtime string
		wants                   []want
	}{
		{"./pkg/bus", "PublishConsume|RawJetStreamPublish", o.benchTime, []want{
			{"PublishConsume/fsync=always", "p50-µs", "bus publish→consume p50 (fsync always)", "ms", 0.001, "publisher saturating; drwatch's default"},
			{"PublishConsume/fsync=always", "p99-µs", "bus publish→consume p99 (fsync always)", "ms", 0.001, ""},
			{"PublishConsume/fsync=always", "events/s", "bus throughput, publish + durable consume (fsync always)", "events/s", 1, ""},
			{"RawJetStreamPublish/fsync=always", "events/s", "raw JetStream synchronous publish (fsync always)", "msg/s", 1, "the floor the bus is compared with"},
			{"PublishConsume/fsync=lazy", "p50-µs", "bus publish→consume p50 (fsync lazy)", "ms", 0.001, "mostly queueing: the publisher outruns the consumer"},
			{"PublishConsume/fsync=lazy", "p99-µs", "bus publish→consume p99 (fsync lazy)", "ms", 0.001, ""},
			{"PublishConsume/fsync=lazy", "events/s", "bus throughput, publish + durable consume (fsync lazy)", "events/s", 1, ""},
			{"RawJetStreamPublish/fsync=lazy", "events/s", "raw JetStream synchronous publish (fsync lazy)", "msg/s", 1, ""},
		}},
		{"./services/notifier/internal/dedupe", "Dedupe", "2s", []want{
			{"Dedupe/memory", "events/s", "notifier dedupe decisions (memory store)", "decisions/s", 1, "read entry + decide"},
			{"Dedupe/kv", "events/s", "notifier dedupe decisions (JetStream KV store)", "decisions/s", 1, "the store a deployment uses"},
		}},
		{"./services/arbiter/internal/probe", "Verdict", "3x", []want{
			{"VerdictTCP1000", "ms/verdict", "arbitration over 1 000 arbiters, active side (TCP probes)", "ms", 1, "probe all in parallel, then decide"},
			{"VerdictICMP1000", "ms/verdict", "arbitration over 1 000 arbiters, active side (ICMP)", "ms", 1, ""},
			{"VerdictSSH1000", "ms/verdict", "arbitration over 1 000 arbiters, standby side (SSH login + session list)", "ms", 1, "20 in-process sshd, 50 arbiter entries each"},
		}},
	}
	for _, s := range suites {
		fmt.Fprintf(stdout, "  go test %s -bench %s\n", s.pkg, s.pattern)
		c := commandIn(ctx, o.repo, "go", "test", s.pkg, "-run", "^$", "-bench", s.pattern, "-benchtime", s.benchtime, "-count", "1")
		out, err := c.CombinedOutput()
		lines := parseBench(strings.NewReader(string(out)))
		if err != nil && len(lines) == 0 {
			rep.Notef("micro %s: %v: %s", s.pkg, err, lastLines(string(out), 3))
			continue
		}
		for _, w := range s.wants {
			found := false
			for _, l := range lines {
				if v, ok := l.metrics[w.metric]; ok && l.name == w.bench {
					rep.Micro = append(rep.Micro, report.Micro{Name: w.name, Value: v * w.scale, Unit: w.unit, Note: w.note})
					found = true
				}
			}
			if !found {
				rep.Notef("micro %s: no %s %s in the benchmark output", s.pkg, w.bench, w.metric)
			}
		}
	}
}
