package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/cli"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/demo"
	"github.com/drwatch/drwatch/pkg/checker"
	"github.com/drwatch/drwatch/pkg/events"
)

// TestPartitionFuzz runs the demo's two sites and three arbiters, then for
// a bounded time cuts and heals at random the link between the sites and
// each site's link to each arbiter, and kills and restarts the sites'
// processes (same store dir). A kill cancels the process's context: its
// services stop as on SIGTERM, the orchestrator releasing the VIP and the
// arbiter's sessions ending last. The test then runs what the
// deployment's supervisor runs (systemd ExecStopPost= drwatch vip
// release, deployments/README.md), a no-op after a clean stop; after a
// SIGKILL it is all that removes the address, and the moment between the
// kernel closing the arbiter sessions and that release is a fencing gap
// this fuzzer does not model. The kill is a Down for the checker: a dead process holds no role until it
// records one again (RoleChanged, or RoleConfirmed when it resumes). At the end
// it heals everything, waits for the logs to converge and proves from
// both logs and the VIP samples that no two sites were ever active at once
// and that no event was lost or doubled between the logs.
//
// DRWATCH_FUZZ_SEED=N replays a run, =random draws one; DRWATCH_FUZZ_DURATION (default 60s)
// bounds the chaos.
// regressionSeeds are runs that once found two actives (fixed since); the
// default run replays them so a CI run is repeatable. A random run is
// DRWATCH_FUZZ_SEED=random (six such runs on 2026-12-07 found nothing; a
// seed that does find two actives belongs here once fixed).
var regressionSeeds = []uint64{1795442195789122849, 1795443581097987065, 1795443387924523098, 1795444117977606389,
	1795448721533677696, 1795448983080579737, 1795449113669812740}

func TestPartitionFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("the partition fuzzer runs two whole sites for a minute")
	}
	seeds := regressionSeeds
	switch s := os.Getenv("DRWATCH_FUZZ_SEED"); s {
	case "":
	case "random":
		seeds = []uint64{uint64(time.Now().UnixNano())}
	default:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DRWATCH_FUZZ_SEED=%q: want a number or random", s)
		}
		seeds = []uint64{v}
	}
	chaos := 60 * time.Second
	if s := os.Getenv("DRWATCH_FUZZ_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("DRWATCH_FUZZ_DURATION=%q: want a positive duration such as 10m", s)
		}
		chaos = d
	}
	for _, seed := range seeds {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { fuzzRun(t, seed, chaos) })
	}
}

func fuzzRun(t *testing.T, seed uint64, chaos time.Duration) {
	t.Logf("seed %d (replay: DRWATCH_FUZZ_SEED=%d DRWATCH_FUZZ_DURATION=%s go test -run TestPartitionFuzz ./cmd/drwatch)", seed, seed, chaos)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "sites.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	topo, err := demo.NewTopology(ctx, demo.TopologyOptions{
		Dir: dir, Services: cli.Services(), Linger: 3 * time.Second,
		// Short enough that a run sees several failovers, not one then a
		// block of 8 h.
		WaitDuration: 5 * time.Second, BlockWindow: time.Second,
		Log: slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := topo.Stop(); err != nil {
			t.Logf("stop: %v", err)
		}
	}()
	for _, s := range demo.Sites {
		if err := topo.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// The VIP as clients would find it, sampled every 20 ms.
	var mu sync.Mutex
	var samples []checker.VIPSample
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var holders []string
			for _, s := range demo.Sites {
				if topo.Site(s).VIP.IsHeld() {
					holders = append(holders, s)
				}
			}
			mu.Lock()
			samples = append(samples, checker.VIPSample{At: time.Now(), Holders: holders})
			mu.Unlock()
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	var actions []string
	act := func(format string, args ...any) {
		actions = append(actions, fmt.Sprintf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("actions (seed %d):", seed)
			for _, a := range actions {
				t.Log("  " + a)
			}
			// t.TempDir goes when the test ends; the logs must outlive it.
			kept := filepath.Join(os.TempDir(), fmt.Sprintf("drwatch-fuzz-%d.log", seed))
			if b, err := os.ReadFile(logFile.Name()); err == nil && os.WriteFile(kept, b, 0o644) == nil {
				t.Logf("service logs: %s", kept)
			} else {
				t.Logf("service logs: %s (gone with the test's temporary directory)", logFile.Name())
			}
		}
	})
	restartAt := map[string]time.Time{}
	var downs []checker.Down
	end := time.Now().Add(chaos)
	for time.Now().Before(end) {
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		for s, at := range restartAt {
			if time.Now().After(at) {
				act("restart %s", s)
				if err := topo.Start(ctx, s); err != nil {
					t.Fatalf("restart %s: %v", s, err)
				}
				delete(restartAt, s)
			}
		}
		switch n := rng.IntN(10); {
		case n < 3:
			if topo.SitesCut() {
				act("heal a-b")
				if err := topo.HealSites(); err != nil {
					t.Fatal(err)
				}
			} else {
				act("cut a-b")
				topo.CutSites()
			}
		case n < 8:
			s, i := demo.Sites[rng.IntN(2)], rng.IntN(len(topo.Arbiters))
			l := topo.ArbiterLink(s, i)
			if l.IsCut() {
				act("heal %s-arbiter%d", s, i)
				if err := l.Heal(); err != nil {
					t.Fatal(err)
				}
			} else {
				act("cut %s-arbiter%d", s, i)
				l.Cut()
			}
		default:
			s := demo.Sites[rng.IntN(2)]
			if _, down := restartAt[s]; down {
				continue
			}
			act("kill %s", s)
			// The role ends as the kill begins: the dying process's
			// orchestrator stops first (releasing the VIP), its arbiter
			// sessions last; the VIP samples, not this stamp, show
			// whether the address was ever held twice.
			downs = append(downs, checker.Down{Site: s, At: time.Now()})
			if err := topo.Kill(s); err != nil {
				t.Logf("site %s stopped with: %v", s, err)
			}
			// The supervisor's ExecStopPost.
			if err := topo.Site(s).VIP.Release(ctx); err != nil {
				t.Fatalf("release %s's VIP after the kill: %v", s, err)
			}
			restartAt[s] = time.Now().Add(time.Duration(500+rng.IntN(4500)) * time.Millisecond)
		}
	}

	act("heal everything, restart every site")
	if err := topo.HealAll(); err != nil {
		t.Fatal(err)
	}
	for s := range restartAt {
		if err := topo.Start(ctx, s); err != nil {
			t.Fatalf("restart %s: %v", s, err)
		}
	}
	// Let the pair settle and the logs converge.
	logs := converge(t, ctx, topo, 60*time.Second)
	stopSampling()
	<-sampled

	changes := roleChanges(logs)
	ivs := checker.ActiveIntervals("", time.Time{}, changes, downs)
	mu.Lock()
	bad := checker.NeverTwoActive(ivs, samples)
	mu.Unlock()
	for _, b := range bad {
		t.Errorf("two actives: %s", b)
	}
	for _, s := range demo.Sites {
		for _, b := range checker.NothingLost(s, ownIDs(logs[s], s), ownIDs(logs[peer(s)], s)) {
			t.Errorf("log: %s", b)
		}
	}
	t.Logf("%d actions, %d role changes, %d active spans, %d VIP samples; events a %d, b %d",
		len(actions), len(changes), len(ivs), len(samples), len(logs["a"]), len(logs["b"]))
	for _, iv := range ivs {
		t.Logf("  active %s epoch %d %s – %s", iv.Site, iv.Epoch, iv.Start.Format("15:04:05.000"), iv.End.Format("15:04:05.000"))
	}
}

func peer(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// converge waits until each site's log holds every event of the other's,
// and returns both logs.
func converge(t *testing.T, ctx context.Context, topo *demo.Topology, timeout time.Duration) map[string][]demo.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var logs map[string][]demo.Record
	for {
		logs = map[string][]demo.Record{}
		for _, s := range demo.Sites {
			recs, err := topo.ReadLog(ctx, s)
			if err != nil {
				t.Logf("read %s's log: %v", s, err)
			}
			logs[s] = recs
		}
		same := true
		for _, s := range demo.Sites {
			if len(ownIDs(logs[s], s)) != len(ownIDs(logs[peer(s)], s)) {
				same = false
			}
		}
		if same || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// ownIDs are the ids of site's events in a log, in log order.
func ownIDs(recs []demo.Record, site string) []string {
	var out []string
	for _, r := range recs {
		if string(r.Env.Site) == site {
			out = append(out, string(r.Env.ID))
		}
	}
	return out
}

// roleChanges gathers both sites' RoleChanged and RoleConfirmed events
// from both logs, each once. A RoleConfirmed is a restarted site acting
// on its logged role again: after the kill's Down it opens a new span.
func roleChanges(logs map[string][]demo.Record) []checker.RoleChange {
	seen := map[events.ID]bool{}
	var out []checker.RoleChange
	for _, s := range demo.Sites {
		for _, r := range logs[s] {
			if seen[r.Env.ID] {
				continue
			}
			switch r.Env.Type {
			case "RoleChanged":
				ev, err := events.DecodeInto[events.RoleChanged](r.Env)
				if err != nil {
					continue
				}
				out = append(out, checker.RoleChange{Site: string(r.Env.Site), At: r.Env.Time, From: string(ev.From), To: string(ev.To), Epoch: uint64(ev.Epoch)})
			case "RoleConfirmed":
				ev, err := events.DecodeInto[events.RoleConfirmed](r.Env)
				if err != nil {
					continue
				}
				out = append(out, checker.RoleChange{Site: string(r.Env.Site), At: r.Env.Time, From: string(ev.Role), To: string(ev.Role), Epoch: uint64(ev.Epoch), Resumed: true})
			default:
				continue
			}
			seen[r.Env.ID] = true
		}
	}
	return out
}
