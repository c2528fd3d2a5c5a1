package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/cli"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/demo"
	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
)

// pairCLI runs drwatch commands in this process against one site of a
// running pair.
type pairCLI struct {
	t    *testing.T
	topo *demo.Topology
	cfgs map[string]string
}

func (p *pairCLI) run(site, stdin string, args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Main(ctx, append(args, "-config", p.cfgs[site]), strings.NewReader(stdin), &out, &errb)
	return result{out.String(), errb.String(), code}
}

// roles reads both sites' roles from site's log.
func (p *pairCLI) roles(site string) map[string]string {
	p.t.Helper()
	r := p.run(site, "", "status", "--json")
	var st struct {
		Sites []struct{ Name, Role string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		p.t.Fatalf("status --json on %s: %v\n%v", site, err, r)
	}
	out := map[string]string{}
	for _, s := range st.Sites {
		out[s.Name] = s.Role
	}
	return out
}

// settle waits until both sites' logs say active is the one active site
// and only its VIP is held.
func (p *pairCLI) settle(active string) {
	p.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok := p.topo.Site(active).VIP.IsHeld()
		for _, s := range demo.Sites {
			r := p.roles(s)
			for _, x := range demo.Sites {
				want := "standby"
				if x == active {
					want = "active"
				}
				ok = ok && r[x] == want
			}
			if s != active && p.topo.Site(s).VIP.IsHeld() {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the pair never settled with %s the one active site: a sees %v, b sees %v", active, p.roles("a"), p.roles("b"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *pairCLI) requests(site string) int {
	p.t.Helper()
	r := p.run(site, "", "events", "list", "--type", "FailoverRequested")
	return strings.Count(r.stdout, "FailoverRequested")
}

// TestSwitchoverRoundTrip moves the active role a→b from the standby side
// and back b→a from the active side on a running pair, each ending with
// exactly one active site holding the VIP; then a switchover refused for
// lag leaves the active site active, and a dry run or a "no" records
// nothing.
func TestSwitchoverRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole pair: skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "sites.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	topo, err := demo.NewTopology(ctx, demo.TopologyOptions{Dir: dir, Services: cli.Services(), Linger: 3 * time.Second,
		Log: slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = topo.Stop() }()
	p := &pairCLI{t: t, topo: topo, cfgs: map[string]string{}}
	for _, s := range demo.Sites {
		data, err := yaml.Marshal(topo.Site(s).Config)
		if err != nil {
			t.Fatal(err)
		}
		p.cfgs[s] = filepath.Join(dir, s+".yaml")
		if err := os.WriteFile(p.cfgs[s], data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := topo.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			kept := filepath.Join(os.TempDir(), "drwatch-switchover-test.log")
			_ = os.WriteFile(kept, b, 0o644)
			t.Logf("service logs: %s", kept)
		}
	})
	p.settle("a")

	// A dry run prints the decision and the plan and records nothing.
	before := p.requests("b")
	r := p.run("b", "", "switchover", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "switchover: active a → b") || !strings.Contains(r.stdout, "plan on b:") || !strings.Contains(r.stdout, "fence-peer") || !strings.Contains(r.stdout, "dry run: nothing recorded") {
		t.Fatalf("switchover --dry-run: %v", r)
	}
	// Asked and refused: nothing recorded.
	r = p.run("b", "n\n", "switchover")
	if r.code != 1 || !strings.Contains(r.stdout, "Make site b active (switchover)? [y/N]") || !strings.Contains(r.stderr, "not confirmed") {
		t.Errorf("switchover answered n: %v", r)
	}
	if n := p.requests("b"); n != before {
		t.Fatalf("dry run or refusal recorded %d requests", n-before)
	}

	// From the standby side: b becomes active, a stands down.
	r = p.run("b", "y\n", "switchover", "--reason", "move to b for maintenance of a", "--timeout", "90s")
	if r.code != 0 || !strings.Contains(r.stdout, "requested: site b to become active") || !strings.Contains(r.stdout, "completed") {
		t.Fatalf("switchover from the standby side: %v", r)
	}
	t.Logf("switchover from b:\n%s", r.stdout)
	p.settle("b")

	// From the active side (b again): a becomes active.
	r = p.run("b", "", "switchover", "--yes", "--to", "a", "--json", "--timeout", "90s")
	if r.code != 0 || !strings.Contains(r.stdout, `"kind":"plan"`) || !strings.Contains(r.stdout, `"kind":"event"`) {
		t.Fatalf("switchover from the active side: %v", r)
	}
	p.settle("a")

	// The history shows both moves, manual, completed, from either side.
	for _, s := range demo.Sites {
		r := p.run(s, "", "history")
		if r.code != 0 || !strings.Contains(r.stdout, "a→b") || !strings.Contains(r.stdout, "b→a") || strings.Count(r.stdout, "manual") < 2 {
			t.Errorf("history on %s: %v", s, r)
		}
	}
	// Manual moves open no block window.
	if r := p.run("a", "", "status"); strings.Contains(r.stdout, "BLOCKED") {
		t.Errorf("a switchover opened the block window:\n%s", r.stdout)
	}

	// b's replica reported far behind: the switchover is refused before
	// anything is recorded, and a stays active.
	auth, err := bus.ClientAuth(topo.Site("b").Config.NATS.Embedded.Keys(), "dbmonitor")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(topo.Site("b").NATSURL, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	db, err := bus.New(nc, bus.Options{Source: events.Source{Site: "b", Node: "test", Service: "dbmonitor"}, Peer: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(ctx, events.ReplicationLagHigh{Database: events.PgSQL, Server: "pg-b", LagSeconds: 90, LagBytes: 64 << 20, ThresholdSeconds: 30, ThresholdBytes: 1 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	before = p.requests("a")
	for {
		r = p.run("a", "", "switchover", "--yes")
		if strings.Contains(r.stderr, "guard.lag") || time.Now().After(deadline) {
			break
		}
		// The lag report reaches a's log through the source.
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "site b would refuse it now") || !strings.Contains(r.stdout, "BLOCKED") || !strings.Contains(r.stdout, "67108864 bytes") {
		t.Errorf("lagging switchover: %v", r)
	}
	if n := p.requests("a"); n != before {
		t.Errorf("a refused switchover recorded %d requests", n-before)
	}
	p.settle("a")
}
