package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/cli"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/demo"
)

// TestAckLetsASecondFailureFailOver runs a pair with the default block
// window (1 h): a is cut off and b takes over automatically; the pair
// heals; then b is cut off, and a's takeover is held back by the block
// window — shown by status and health — until `drwatch failover ack` on a
// lets it through.
func TestAckLetsASecondFailureFailOver(t *testing.T) {
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
		// The wait window must not be what holds a back.
		WaitDuration: time.Second,
		Log:          slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = topo.Stop() }()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			kept := filepath.Join(os.TempDir(), "drwatch-block-test.log")
			_ = os.WriteFile(kept, b, 0o644)
			t.Logf("service logs: %s", kept)
		}
	})
	p := &pairCLI{t: t, topo: topo, cfgs: map[string]string{}}
	for _, s := range demo.Sites {
		if got := topo.Site(s).Config.Failover.BlockWindow.D(); got != time.Hour {
			t.Fatalf("site %s's block window is %s, want the 1h default", s, got)
		}
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
	p.settle("a")

	// First disaster: b takes over automatically.
	topo.CutSite("a")
	waitFor(t, 90*time.Second, "b to take over", func() bool { return p.roles("b")["b"] == "active" && topo.Site("b").VIP.IsHeld() })
	if err := topo.HealAll(); err != nil {
		t.Fatal(err)
	}
	p.settle("b")
	if r := p.run("a", "", "status"); !strings.Contains(r.stdout, "BLOCKED automatic failover until") {
		t.Errorf("status after an automatic failover lacks the block window:\n%v", r)
	}

	// Second disaster inside the window: a holds its takeover back.
	topo.CutSite("b")
	waitFor(t, 90*time.Second, "a to hold its takeover back", func() bool {
		return strings.Contains(p.run("a", "", "status").stdout, "held back beActive (guard.block-window)")
	})
	if a := p.roles("a"); a["a"] != "standby" || topo.Site("a").VIP.IsHeld() {
		t.Fatalf("a took over inside the block window: %v", a)
	}
	r := p.run("a", "", "health")
	if r.code != 1 && r.code != 5 || !strings.Contains(r.stdout, "held back") || !strings.Contains(r.stdout, "block window") {
		t.Errorf("health while held back: %v", r)
	}

	r = p.run("a", "", "failover", "ack", "--reason", "b is gone for good")
	if r.code != 0 || !strings.Contains(r.stdout, "acknowledged") {
		t.Fatalf("failover ack: %v", r)
	}
	waitFor(t, 90*time.Second, "a to take over after the acknowledgement", func() bool {
		return p.roles("a")["a"] == "active" && topo.Site("a").VIP.IsHeld()
	})
	r = p.run("a", "", "history")
	// a fenced itself when cut off (a→none) before b took over (none→b);
	// b's own self-fence, behind the cut, has not reached a's log.
	if strings.Count(r.stdout, "automatic") < 3 || !strings.Contains(r.stdout, "a→none") || !strings.Contains(r.stdout, "none→b") || !strings.Contains(r.stdout, "b→a") {
		t.Errorf("history after two automatic failovers:\n%v", r)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
