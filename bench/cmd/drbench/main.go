// Command drbench measures drwatch against keepalived, Patroni and booth in
// network namespaces on one machine, with equal timers, and writes the
// table to bench/results/latest.{json,md}. It needs root.
//
//	go run ./bench/cmd/drbench            # full run: 20 failovers per tool, 10 min of netem
//	go run ./bench/cmd/drbench -quick     # a few minutes
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drwatch/drwatch/bench/internal/report"
	"github.com/drwatch/drwatch/bench/internal/stats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		if err := helper(ctx, os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := runBench(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "drbench:", err)
		os.Exit(1)
	}
}

type options struct {
	runs      int
	netemFor  time.Duration
	loss      float64       // percent, on the inter-site link
	delay     time.Duration // mean, each way
	jitter    time.Duration // each packet waits delay±jitter
	tools     string
	out       string
	repo      string
	micro     bool
	runLimit  time.Duration
	keepWork  bool
	benchTime string
	self      string
	work      string
}

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("drbench", flag.ContinueOnError)
	var o options
	quick := fs.Bool("quick", false, "3 failovers per tool, 1 min of netem, short micro benchmarks")
	fs.IntVar(&o.runs, "runs", 20, "failovers per tool (kill of the active); 0 runs only the netem window (with -merge, the other figures are kept)")
	fs.DurationVar(&o.netemFor, "netem", 10*time.Minute, "how long the inter-site link suffers -loss and -delay ± -jitter")
	fs.Float64Var(&o.loss, "loss", 1, "packet loss on the inter-site link during -netem, in percent")
	fs.DurationVar(&o.delay, "delay", 50*time.Millisecond, "mean delay on the inter-site link during -netem, each way")
	fs.DurationVar(&o.jitter, "jitter", 50*time.Millisecond, "each packet on the inter-site link waits -delay ± -jitter (uniform)")
	fs.StringVar(&o.tools, "tools", "keepalived,patroni,drwatch,booth", "tools to measure")
	fs.StringVar(&o.out, "out", "", "results directory (default: <repo>/bench/results)")
	fs.StringVar(&o.repo, "repo", "", "repository root (default: found from the working directory)")
	fs.BoolVar(&o.micro, "micro", true, "run drwatch's micro benchmarks")
	fs.DurationVar(&o.runLimit, "run-limit", 90*time.Second, "give up on one failover after this long")
	fs.BoolVar(&o.keepWork, "keep", false, "keep the work directory (logs, configs)")
	merge := fs.String("merge", "", "a previous latest.json whose figures this run did not measure are kept (rerun one tool, or only the netem window)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.benchTime = "3000x"
	if *quick {
		if !flagSet(fs, "runs") {
			o.runs = 3
		}
		if !flagSet(fs, "netem") {
			o.netemFor = time.Minute
		}
		o.benchTime = "500x"
	}
	if o.loss < 0 || o.loss > 100 || o.delay < 0 || o.jitter < 0 || o.jitter > o.delay {
		return fmt.Errorf("-loss %g, -delay %s, -jitter %s: want a loss of 0-100 %% and 0 <= jitter <= delay", o.loss, o.delay, o.jitter)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, tc, keepalived): run it with sudo")
	}
	if o.repo == "" {
		r, err := findRepo()
		if err != nil {
			return err
		}
		o.repo = r
	}
	if o.out == "" {
		o.out = filepath.Join(o.repo, "bench", "results")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.self = self
	work, err := os.MkdirTemp("", "drbench-")
	if err != nil {
		return err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if !o.keepWork {
		defer os.RemoveAll(work)
	}
	o.work = work
	fmt.Fprintf(stdout, "work directory %s\n", work)

	rep := &report.Report{Generated: time.Now(), Command: "drbench " + strings.Join(args, " "), Host: hostLine()}
	loadAtStart := loadAverage()
	if o.runs > 0 {
		rep.Setf("all", "runs per metric", "%d", o.runs)
	}
	rep.Setf("all", "kill of the active", "SIGKILL of every process in the site's namespace and its bridge port set down (silent: no RST, no ICMP)")
	rep.Setf("all", "client write load", "one write every 10 ms through the VIP, each bounded by 250 ms (connect included); an ack counts as committed")
	rep.Setf("all", "rows lost (RPO)", "%s", rowsLostDefinition)
	rep.Setf("all", "impairment asked for on the inter-site link", "loss %g%%, delay %s ±%s (what was applied is in the metric 4 notes), on each site's egress to the other site and its VIPs, for %s", o.loss, o.delay, o.jitter, o.netemFor)

	if err := installPeers(ctx, stdout); err != nil {
		return err
	}
	cleanTopology(ctx)
	defer cleanTopology(context.WithoutCancel(ctx))
	if err := buildTopology(ctx); err != nil {
		return err
	}

	var tools []tool
	for _, name := range strings.Split(o.tools, ",") {
		switch strings.TrimSpace(name) {
		case "keepalived":
			tools = append(tools, &keepalived{dir: work, self: self})
		case "patroni":
			tools = append(tools, &patroni{dir: work, self: self})
		case "drwatch":
			tools = append(tools, &drwatchTool{dir: work, self: self, repo: o.repo})
		case "booth":
			tools = append(tools, &booth{dir: work, self: self})
		case "":
		default:
			return fmt.Errorf("-tools: unknown tool %q (keepalived, patroni, drwatch, booth)", name)
		}
	}
	for _, t := range tools {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stdout, "== %s\n", t.name())
		if err := measureTool(ctx, o, t, rep, stdout, work); err != nil {
			rep.Notef("%s: %v", t.name(), err)
			fmt.Fprintf(stdout, "%s: %v\n", t.name(), err)
		}
		t.teardown()
		// Nothing of one tool may survive into the next tool's runs.
		for _, n := range allNode {
			killNamespace(ctx, n.ns())
		}
		for _, n := range []node{siteA, siteB} {
			_ = powerOn(ctx, n)
		}
	}
	if o.micro && ctx.Err() == nil {
		fmt.Fprintln(stdout, "== micro benchmarks")
		microBench(ctx, o, rep, stdout)
	}
	for _, t := range tools {
		t.settings(rep)
	}
	if ctx.Err() != nil {
		rep.Notef("interrupted: %v", ctx.Err())
	}
	// The machine may be shared: timings taken under someone else's load
	// say so.
	rep.Setf("all", "load average (1/5/15 min) at start / end", "%s / %s on %d CPUs", loadAtStart, loadAverage(), runtime.NumCPU())
	if *merge != "" {
		if err := mergeReport(rep, *merge, o); err != nil {
			return err
		}
	}
	return writeResults(rep, o.out, stdout)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// mergeReport keeps, from a previous report, every figure this run did
// not measure: the metrics of tools not in -tools, the failover metrics
// when -runs 0 measured only the netem window, drwatch's micro figures when
// -micro=false, and the settings and notes that go with them.
func mergeReport(rep *report.Report, path string, o options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-merge: %w", err)
	}
	var old report.Report
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("-merge %s: %w", path, err)
	}
	type key struct{ tool, name string }
	measured := map[key]bool{}
	for _, m := range rep.Metrics {
		measured[key{m.Tool, m.Metric}] = true
	}
	var kept []string
	keptTool := map[string]bool{}
	for _, m := range old.Metrics {
		if measured[key{m.Tool, m.Metric}] {
			continue
		}
		rep.Metrics = append(rep.Metrics, m)
		keptTool[m.Tool] = true
		if k := m.Tool + " " + m.Metric; !slices.Contains(kept, k) {
			kept = append(kept, k)
		}
	}
	// Kept figures keep their own run's settings: where this run's value
	// differs, the old one stays beside it, named for its run.
	newValue := map[key]string{}
	for _, s := range rep.Settings {
		newValue[key{s.Tool, s.Setting}] = s.Value
	}
	oldRun := old.Generated.UTC().Format(time.RFC3339)
	for _, s := range old.Settings {
		if !keptTool[s.Tool] && s.Tool != "all" {
			continue
		}
		v, ok := newValue[key{s.Tool, s.Setting}]
		switch {
		case !ok:
			rep.Settings = append(rep.Settings, s)
		case v != s.Value:
			s.Setting += " (run of " + oldRun + ")"
			rep.Settings = append(rep.Settings, s)
		}
	}
	for _, n := range old.Notes {
		tool, _, _ := strings.Cut(n, ":")
		if keptTool[tool] && !slices.Contains(rep.Notes, n) {
			rep.Notes = append(rep.Notes, n)
		}
	}
	if !o.micro && len(old.Micro) > 0 {
		rep.Micro = old.Micro
		kept = append(kept, "the micro benchmarks")
	}
	// Keep the metric order stable: by metric, then tool as first seen.
	slices.SortStableFunc(rep.Metrics, func(a, b report.Metric) int { return strings.Compare(a.Metric, b.Metric) })
	rep.Command += fmt.Sprintf(" (kept from the run of %s, %s: %s)", oldRun, old.Command, strings.Join(kept, ", "))
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run from the repository or pass -repo", dir)
		}
	}
}

func hostLine() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs, Linux %s, %s", runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
}

// installPeers installs the peers from Debian's packages; the package
// index is refreshed only when an install fails.
func installPeers(ctx context.Context, stdout io.Writer) error {
	pkgs := []string{"keepalived", "patroni", "etcd-server", "etcd-client", "postgresql", "booth", "pacemaker", "openssh-server", "iproute2", "iputils-arping", "libcap2-bin"}
	install := func() error {
		c := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install: %w: %s", err, lastLines(string(out), 5))
		}
		return nil
	}
	fmt.Fprintf(stdout, "installing peers: %s\n", strings.Join(pkgs, " "))
	if err := install(); err != nil {
		if err := run(ctx, "apt-get", "update", "-q"); err != nil {
			return errors.New("apt-get update failed")
		}
		return install()
	}
	return nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func commandIn(ctx context.Context, dir string, argv ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = dir
	return c
}

// waitTCP waits until addr accepts a connection from inside n.
func waitTCP(ctx context.Context, n node, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := run(ctx, "ip", "netns", "exec", n.ns(), "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not accepting connections after %s", addr, limit)
}

// acks follows the writer's acknowledged writes.
type acks struct {
	t    tail
	seqs []int64
	sent []time.Time // when the write was sent
	ts   []time.Time // when it was acknowledged
}

func (a *acks) poll() {
	for _, l := range a.t.lines() {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		seq, err1 := strconv.ParseInt(f[0], 10, 64)
		sent, err2 := strconv.ParseInt(f[1], 10, 64)
		ack, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			a.seqs = append(a.seqs, seq)
			a.sent = append(a.sent, time.Unix(0, sent))
			a.ts = append(a.ts, time.Unix(0, ack))
		}
	}
}

// firstSentAfter is the acknowledgement of the first write sent after t:
// a write sent before the kill may be acknowledged by the dying site.
func (a *acks) firstSentAfter(t time.Time) (time.Time, bool) {
	for i := range a.sent {
		if a.sent[i].After(t) {
			return a.ts[i], true
		}
	}
	return time.Time{}, false
}

// between lists the seqs acknowledged in [from, to): one run's rows, so
// a loss is counted in the run that caused it and not again later.
func (a *acks) between(from, to time.Time) []int64 {
	var out []int64
	for i, t := range a.ts {
		if !t.Before(from) && t.Before(to) {
			out = append(out, a.seqs[i])
		}
	}
	return out
}

// flowing reports whether writes were acknowledged in the last window.
func (a *acks) flowing(window time.Duration) bool {
	a.poll()
	return len(a.ts) > 0 && time.Since(a.ts[len(a.ts)-1]) < window
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// measureTool starts the pair, then kills the active site o.runs times,
// alternating sides, and finally runs the netem window.
func measureTool(ctx context.Context, o options, t tool, rep *report.Report, stdout io.Writer, work string) error {
	if err := t.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	started := time.Now()
	if err := t.startSite(ctx, siteA, true); err != nil {
		return err
	}
	if err := t.startSite(ctx, siteB, true); err != nil {
		return err
	}
	kind, target := t.writer()
	wname := "writer-" + t.name()
	wp, err := start(work, client, "", wname, nil, o.self, "writer", "-kind", kind, "-target", target)
	if err != nil {
		return err
	}
	defer wp.stop()
	// The writer's stdout is its log: lines after the start banner.
	ak := &acks{t: tail{path: filepath.Join(work, wname+".log")}}
	waitFlow := func(limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for !ak.flowing(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("no write acknowledged through the VIP within %s (logs in %s)", limit, work)
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	}
	if err := waitFlow(2 * time.Minute); err != nil {
		return err
	}
	var detect, rto, rpo []float64
	var detectFail, rtoFail, rpoFail int
	active := siteA
	var prevKill time.Time // rows acknowledged before it were checked by the previous run
	for i := 0; i < o.runs && ctx.Err() == nil; i++ {
		standby := site(peerOf(active.name))
		if err := waitFlow(o.runLimit); err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		// A random phase against the tools' 1 s timers.
		_ = sleepCtx(ctx, time.Duration(500+time.Now().UnixNano()%1000)*time.Millisecond)
		t0 := time.Now()
		if err := powerOff(ctx, active); err != nil {
			return err
		}
		dead := time.Now()
		var dAt, rAt time.Time
		var dOK, rOK bool
		deadline := t0.Add(o.runLimit)
		for (!dOK || !rOK) && time.Now().Before(deadline) && ctx.Err() == nil {
			if !dOK {
				dAt, dOK = t.detected(standby, t0)
			}
			if !rOK {
				ak.poll()
				rAt, rOK = ak.firstSentAfter(dead)
			}
			_ = sleepCtx(ctx, 5*time.Millisecond)
		}
		line := fmt.Sprintf("  run %2d: kill %s →", i+1, active.name)
		if dOK {
			detect = append(detect, ms(dAt.Sub(t0)))
			line += fmt.Sprintf(" detected %v", dAt.Sub(t0).Round(time.Millisecond))
		} else {
			detectFail++
			line += " not detected"
		}
		if rOK {
			rto = append(rto, ms(rAt.Sub(t0)))
			line += fmt.Sprintf(", first write %v", rAt.Sub(t0).Round(time.Millisecond))
		} else {
			rtoFail++
			line += ", no write"
		}
		if t.hasData() && rOK {
			lost, err := countLost(ctx, o.self, t, ak.between(prevKill, t0))
			if err != nil {
				rpoFail++
				line += ", rpo: " + err.Error()
			} else {
				rpo = append(rpo, float64(lost))
				line += fmt.Sprintf(", lost %d rows", lost)
			}
		}
		fmt.Fprintln(stdout, line)
		prevKill = t0
		// The old active comes back as standby.
		if err := powerOn(ctx, active); err != nil {
			return err
		}
		back := time.Now()
		if err := t.startSite(ctx, active, false); err != nil {
			return err
		}
		if rOK {
			active = standby
		}
		deadline = time.Now().Add(o.runLimit)
		for !t.ready(ctx, active, back) && time.Now().Before(deadline) && ctx.Err() == nil {
			_ = sleepCtx(ctx, 100*time.Millisecond)
		}
		// Longer than every tool's dead interval (keepalived 3.6 s): a
		// backup restarted moments ago still runs its first master-down
		// timer and would take over early.
		_ = sleepCtx(ctx, 5*time.Second)
		if !rOK {
			// Nobody took over: stop measuring a tool that cannot fail over.
			if i >= 1 && len(rto) == 0 {
				fmt.Fprintf(stdout, "  %s: no takeover in %d runs; stopping its runs\n", t.name(), i+1)
				break
			}
		}
	}
	add := func(metric, unit string, v []float64, failed int, note string) {
		rep.Metrics = append(rep.Metrics, report.Metric{Metric: metric, Tool: t.name(), Unit: unit, Summary: stats.Summarize(v, failed), Note: note})
	}
	if o.runs > 0 {
		add("1 detection", "ms", detect, detectFail, detectNote(t))
		add("2 RTO (first write through VIP)", "ms", rto, rtoFail, "")
	}
	if t.hasData() && o.runs > 0 {
		add("3a RPO on failover (acked rows lost)", "rows", rpo, rpoFail, "")
		sw, swFail := measureSwitchover(ctx, o, t, ak, &active, prevKill, stdout)
		add("3b RPO on planned switchover", "rows", sw, swFail, "")
	}
	// False failovers under loss and jitter on the inter-site link.
	if err := waitFlow(o.runLimit); err != nil {
		return err
	}
	if o.runs == 0 {
		// No kills settled the pair: wait, as after a kill, for the
		// standby to be ready and past its first timers, so the window
		// does not count a start-up takeover.
		deadline := time.Now().Add(o.runLimit)
		for !t.ready(ctx, active, started) && time.Now().Before(deadline) && ctx.Err() == nil {
			_ = sleepCtx(ctx, 100*time.Millisecond)
		}
		_ = sleepCtx(ctx, 5*time.Second)
	}
	standby := site(peerOf(active.name))
	fmt.Fprintf(stdout, "  netem for %s (active %s)\n", o.netemFor, active.name)
	vip := t.vip()
	im, err := impair(ctx, o, o.loss, o.delay, o.jitter, map[node][]string{
		siteA: {siteB.addr, vip}, siteB: {siteA.addr, vip},
	})
	if err != nil {
		return err
	}
	n0 := time.Now()
	_ = sleepCtx(ctx, o.netemFor)
	did := im.clear(context.WithoutCancel(ctx))
	ff := t.takeovers(standby, n0)
	note := fmt.Sprintf("over %s, %s", o.netemFor, im.how)
	if did != "" {
		note += "; " + did
	}
	if d, ok := t.(*drwatchTool); ok {
		note += fmt.Sprintf("; RemoteUnreachable (false detections): %d", d.unreachables(standby, n0)+d.unreachables(active, n0))
	}
	fmt.Fprintf(stdout, "  false failovers: %d (%s)\n", ff, note)
	add("4 false failovers under netem", "count", []float64{float64(ff)}, 0, note)
	return nil
}

func detectNote(t tool) string {
	switch t.(type) {
	case *keepalived:
		return "backup enters MASTER (notify)"
	case *patroni:
		return "replica's on_role_change to master"
	case *drwatchTool:
		return "standby publishes RemoteUnreachable"
	case *booth:
		return "standby runs before-acquire-handler (holder's lease expired, acquiring)"
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rowsLostDefinition is the one RPO definition for every tool with data.
const rowsLostDefinition = "the client's INSERTs (autocommit) through the VIP whose commit it saw acknowledged after the previous kill or switchover and before this one, and that the new primary lacks — counted by one SELECT through the VIP once the first write sent after the kill (or switchover) is acknowledged; a write that failed or timed out counts neither as acknowledged nor as lost"

// countLost asks the new primary, through the VIP, which acknowledged rows
// it lacks.
func countLost(ctx context.Context, self string, t tool, acked []int64) (int, error) {
	if len(acked) == 0 {
		return 0, errors.New("no acked rows")
	}
	_, dsn := t.writer()
	c := exec.CommandContext(ctx, "ip", "netns", "exec", client.ns(), self, "pgcheck", "-dsn", dsn)
	var in strings.Builder
	for _, s := range acked {
		fmt.Fprintln(&in, s)
	}
	c.Stdin = strings.NewReader(in.String())
	out, err := c.Output()
	if err != nil {
		return 0, fmt.Errorf("pgcheck: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// measureSwitchover runs planned switchovers under the same write load and
// counts acknowledged rows lost.
func measureSwitchover(ctx context.Context, o options, t tool, ak *acks, active *node, prev time.Time, stdout io.Writer) ([]float64, int) {
	var lost []float64
	failed := 0
	for i := 0; i < o.runs && ctx.Err() == nil; i++ {
		to := site(peerOf(active.name))
		_ = sleepCtx(ctx, 2*time.Second)
		t0 := time.Now()
		if err := t.switchover(ctx, to); err != nil {
			fmt.Fprintf(stdout, "  switchover %d: %v\n", i+1, err)
			failed++
			continue
		}
		deadline := time.Now().Add(o.runLimit)
		var ok bool
		for !ok && time.Now().Before(deadline) {
			ak.poll()
			_, ok = ak.firstSentAfter(t0)
			_ = sleepCtx(ctx, 20*time.Millisecond)
		}
		n, err := countLost(ctx, o.self, t, ak.between(prev, t0))
		prev = t0
		if err != nil {
			failed++
			continue
		}
		*active = to
		lost = append(lost, float64(n))
		fmt.Fprintf(stdout, "  switchover %2d → %s: lost %d rows\n", i+1, to.name, n)
	}
	return lost, failed
}

func writeResults(rep *report.Report, dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"latest.json", rep.WriteJSON}, {"latest.md", rep.WriteMarkdown}} {
		p := filepath.Join(dir, f.name)
		file, err := os.Create(p)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(file)
		err = f.write(w)
		if err == nil {
			err = w.Flush()
		}
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return nil
}
