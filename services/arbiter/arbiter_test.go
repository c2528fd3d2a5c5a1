package arbiter_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/arbiter"
	"github.com/drwatch/drwatch/services/arbiter/internal/sshtest"
)

type harness struct {
	t         *testing.T
	site      *bustest.Site
	heartbeat *bus.Bus
	cfg       *config.Config
	servers   []*sshtest.Server
}

// newHarness starts site a's JetStream and n arbiters; cfg is ready for
// Run with the arbiters probed over TCP and the peer at 127.0.0.2.
func newHarness(t *testing.T, role string, n int) *harness {
	t.Helper()
	site := bustest.RunJetStream(t)
	h := &harness{t: t, site: site, heartbeat: site.Bus(t, "heartbeat", "b")}
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Peer, cfg.Site.Node, cfg.Site.Role = "a", "b", "a-node", role
	cfg.Site.PeerAddresses = config.List{"127.0.0.2"}
	cfg.Core.PeerVIP = "10.0.0.10"
	cfg.Watchdog.Heartbeat.Interval = config.Duration(400 * time.Millisecond)
	fd := &cfg.Watchdog.FailureDetection
	fd.ProbeTimeout = config.Duration(300 * time.Millisecond)
	fd.ArbiterProbe = "tcp"
	for range n {
		h.servers = append(h.servers, sshtest.New(t, sshtest.Options{Password: "s3cret"}))
	}
	kh := sshtest.KnownHosts(t, nil, h.servers...)
	for _, s := range h.servers {
		fd.Arbiters = append(fd.Arbiters, config.Arbiter{Username: "arbiter", Password: config.NewSecret("s3cret"), Host: s.Host, Port: s.Port, KnownHosts: kh})
	}
	h.cfg = &cfg
	return h
}

// run starts the service until the test ends.
func (h *harness) run() {
	h.t.Helper()
	h.runOn(h.site.Bus(h.t, "arbiter", "b"))
}

// runOn starts the service on b until the test ends.
func (h *harness) runOn(b *bus.Bus) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	deps := service.Deps{Config: h.cfg, Bus: b, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	go func() { done <- arbiter.Run(ctx, deps) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run returned %v on a clean stop", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not stop within 10s of its context ending")
		}
	})
}

func (h *harness) publish(ev events.Event) *events.Envelope {
	h.t.Helper()
	env, err := h.heartbeat.Publish(context.Background(), ev, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

func (h *harness) peerLost() *events.Envelope {
	return h.publish(events.RemoteUnreachable{Peer: "b", Line: "default", Since: time.Now().Add(-time.Minute), DownForSeconds: 60,
		Failed: []events.ProbeResult{{Target: "10.0.0.10", Kind: "icmp", Attempts: 5, Error: "timeout"}}})
}

// eventsOf returns every event of type E in the log with its envelope.
func eventsOf[E events.Event](t *testing.T, b *bus.Bus) ([]E, []*events.Envelope) {
	t.Helper()
	var zero E
	var out []E
	var envs []*events.Envelope
	_, err := b.Replay(context.Background(), 0, []string{events.TypeFilter(zero.EventType())}, func(_ uint64, env *events.Envelope) error {
		ev, err := events.DecodeInto[E](env)
		if err != nil {
			return err
		}
		out = append(out, ev)
		envs = append(envs, env)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, envs
}

func waitEvent[E events.Event](t *testing.T, b *bus.Bus, what string, match func(E) bool) (E, *events.Envelope) {
	t.Helper()
	var found E
	var env *events.Envelope
	bustest.WaitFor(t, 15*time.Second, what, func() bool {
		evs, envs := eventsOf[E](t, b)
		for i, ev := range evs {
			if match(ev) {
				found, env = ev, envs[i]
				return true
			}
		}
		return false
	})
	return found, env
}

func TestRunActiveStaysActiveAndHoldsSessions(t *testing.T) {
	h := newHarness(t, "active", 3)
	h.run()
	// The orchestrator announces the configured role on a first start.
	h.publish(events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial role from site.role"})
	// The active site holds one managing session per arbiter.
	bustest.WaitFor(t, 10*time.Second, "managing sessions on every arbiter", func() bool {
		for _, s := range h.servers {
			if len(s.Sessions()) == 0 {
				return false
			}
		}
		return true
	})
	// No verdict while the heartbeat has the peer.
	time.Sleep(600 * time.Millisecond)
	if evs, _ := eventsOf[events.ArbitrationDecided](t, h.heartbeat); len(evs) != 0 {
		t.Fatalf("verdicts without a lost peer: %+v", evs)
	}
	cause := h.peerLost()
	ev, env := waitEvent(t, h.heartbeat, "ArbitrationDecided", func(events.ArbitrationDecided) bool { return true })
	if ev.Role != events.RoleActive || ev.Action != events.ActionNothing || ev.Branch != "active-quorum" ||
		ev.N != 3 || ev.Reachable != 3 || ev.ReachableShare != 1 || ev.Managed != 3 || ev.ManagedShare != 1 ||
		ev.Thresholds.Failover != 0.5 || len(ev.Arbiters) != 3 {
		t.Errorf("verdict %+v, want active-quorum with 3 of 3 answering and listing this site's session", ev)
	}
	if env.CausationID != cause.ID {
		t.Errorf("verdict caused by %s, want the RemoteUnreachable %s", env.CausationID, cause.ID)
	}
}

func TestRunActiveFencesWhenArbitersGone(t *testing.T) {
	h := newHarness(t, "active", 4)
	h.servers[0].Close()
	h.servers[1].Close()
	h.servers[2].Close()
	h.run()
	// The warning check runs without a lost peer: 1 of 4 < 70 %.
	low, _ := waitEvent(t, h.heartbeat, "ArbiterQuorumLow", func(events.ArbiterQuorumLow) bool { return true })
	if low.N != 4 || low.Reachable != 1 || low.Share != 0.25 || len(low.Unreachable) != 3 {
		t.Errorf("quorum low %+v", low)
	}
	h.publish(events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial role from site.role"})
	bustest.WaitFor(t, 10*time.Second, "the managing session on the arbiter left", func() bool { return len(h.servers[3].Sessions()) > 0 })
	h.peerLost()
	ev, _ := waitEvent(t, h.heartbeat, "beStandby", func(e events.ArbitrationDecided) bool { return true })
	if ev.Action != events.ActionBeStandby || ev.Branch != "active-fence" || ev.Reachable != 1 || ev.Managed != 1 {
		t.Errorf("verdict %+v, want active-fence", ev)
	}
	// Automatic failover switched off by the operator: the verdict still
	// says what the arbiters show, with the switch beside it; whether the
	// site may stay active is the orchestrator's rule, which knows whether
	// the peer has the switch too (one turned off during a cut must not
	// keep it active while the peer takes over).
	h.publish(events.AutomaticFailoverChanged{Enabled: false, Reason: "maintenance", By: "operator"})
	ev, _ = waitEvent(t, h.heartbeat, "verdict with automatic off", func(e events.ArbitrationDecided) bool { return !e.AutomaticFailover })
	if ev.Action != events.ActionBeStandby || ev.Branch != "active-fence" {
		t.Errorf("verdict %+v, want active-fence with automaticFailover false", ev)
	}
	// The warning is not repeated every interval while nothing changes.
	if lows, _ := eventsOf[events.ArbiterQuorumLow](t, h.heartbeat); len(lows) != 1 {
		t.Errorf("%d ArbiterQuorumLow events for one unchanged condition", len(lows))
	}
}

func TestRunStandbyFailsOverOverSSH(t *testing.T) {
	h := newHarness(t, "standby", 4)
	// One arbiter lists a session from site a: m = 1/4, u = 0.
	h.servers[0].SetExtra("space    pts/3        2025-03-01 11:00 (127.0.0.2)")
	h.run()
	h.peerLost()
	ev, _ := waitEvent(t, h.heartbeat, "ArbitrationDecided", func(events.ArbitrationDecided) bool { return true })
	if ev.Role != events.RoleStandby || ev.Action != events.ActionBeActive || ev.Branch != "standby-failover" ||
		ev.N != 4 || ev.Managed != 1 || ev.Unreachable != 0 || ev.ManagedShare != 0.25 {
		t.Errorf("verdict %+v, want standby-failover with 1 of 4 managed", ev)
	}
	for _, s := range h.servers {
		if cmds := s.Commands(); len(cmds) == 0 || cmds[0] != "who" {
			t.Errorf("arbiter %s ran %q, want who", s.Addr, cmds)
		}
	}
	// A second arbiter now managed: 2 of 4 = exactly failover, no failover.
	h.servers[1].SetExtra("space    pts/4        2025-03-01 11:00 (127.0.0.2)")
	ev, _ = waitEvent(t, h.heartbeat, "no failover at exactly 50%", func(e events.ArbitrationDecided) bool { return e.Branch == "standby-active-manages" })
	if ev.Action != events.ActionNothing || ev.Managed != 2 {
		t.Errorf("verdict %+v", ev)
	}
}

func TestRunStandbyWrongHostKeyCountsUnreachable(t *testing.T) {
	h := newHarness(t, "standby", 2)
	bad := sshtest.KnownHosts(t, sshtest.NewSigner(t).PublicKey(), h.servers...)
	h.cfg.Watchdog.FailureDetection.Arbiters[1].KnownHosts = bad
	h.run()
	h.peerLost()
	ev, _ := waitEvent(t, h.heartbeat, "ArbitrationDecided", func(events.ArbitrationDecided) bool { return true })
	// 1 of 2 unreachable counts as managed by the active: m+u = 50 %.
	if ev.Unreachable != 1 || ev.Action != events.ActionNothing || ev.Branch != "standby-adjusted-managed" {
		t.Errorf("verdict %+v", ev)
	}
	if e := ev.Arbiters[1].Error; !strings.Contains(e, "does not match knownHosts") {
		t.Errorf("arbiter error %q does not explain the host key mismatch", e)
	}
}

func TestRunNoArbiters(t *testing.T) {
	h := newHarness(t, "standby", 0)
	h.run()
	h.peerLost()
	ev, _ := waitEvent(t, h.heartbeat, "ArbitrationDecided", func(events.ArbitrationDecided) bool { return true })
	if ev.Branch != "no-arbiters" || ev.Action != events.ActionNothing || ev.N != 0 {
		t.Errorf("verdict %+v", ev)
	}
	waitEvent(t, h.heartbeat, "FailureDetectionFailed", func(e events.FailureDetectionFailed) bool {
		return strings.Contains(e.Reason, "no automatic failover")
	})
}

func TestRunCustomScript(t *testing.T) {
	writeScript := func(body string) string {
		p := filepath.Join(t.TempDir(), "arbitration")
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("verdict", func(t *testing.T) {
		h := newHarness(t, "standby", 0)
		fd := &h.cfg.Watchdog.FailureDetection
		fd.IsCustom = true
		fd.Script = writeScript(`#!/bin/sh
grep -q '"isCustom":true' "$DRWATCH_CONFIG_JSON" || exit 9
echo '{"state":"standby","action":"beActive","description":"peer gone","payload":{"waitTime":"","details":{"seen":3}}}'
`)
		h.run()
		h.peerLost()
		ev, _ := waitEvent(t, h.heartbeat, "ArbitrationDecided", func(events.ArbitrationDecided) bool { return true })
		if ev.Method != "script" || ev.Action != events.ActionBeActive || ev.Description != "peer gone" || string(ev.Details) != `{"seen":3}` {
			t.Errorf("verdict %+v", ev)
		}
	})
	t.Run("garbage is an error, never a verdict", func(t *testing.T) {
		h := newHarness(t, "standby", 0)
		fd := &h.cfg.Watchdog.FailureDetection
		fd.IsCustom = true
		fd.Script = writeScript("#!/bin/sh\necho 'failover? yes!'\n")
		h.run()
		h.peerLost()
		ev, _ := waitEvent(t, h.heartbeat, "FailureDetectionFailed", func(events.FailureDetectionFailed) bool { return true })
		if ev.Method != "script" || !strings.Contains(ev.Reason, "not the failure-detection contract") || !strings.Contains(ev.Output, "failover? yes!") {
			t.Errorf("error event %+v", ev)
		}
		if evs, _ := eventsOf[events.ArbitrationDecided](t, h.heartbeat); len(evs) != 0 {
			t.Errorf("a broken script produced verdicts: %+v", evs)
		}
	})
}

func TestRunRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   string
	}{
		{"hostname peer address", func(c *config.Config) { c.Site.PeerAddresses = config.List{"site-a"} }, "site.peerAddresses[0]"},
		{"no peer addresses", func(c *config.Config) { c.Site.PeerAddresses = nil }, "site.peerAddresses: is required with arbiters"},
		{"hostname own address", func(c *config.Config) { c.Site.Addresses = config.List{"site-b"} }, "site.addresses"},
		{"missing known hosts", func(c *config.Config) { c.Watchdog.FailureDetection.Arbiters[0].KnownHosts = "/nonexistent/kh" }, "arbiters[0].knownHosts"},
		{"custom without script", func(c *config.Config) {
			c.Watchdog.FailureDetection.IsCustom = true
			c.Watchdog.FailureDetection.Script = ""
		}, "watchdog.failureDetection.script"},
		{"no peer", func(c *config.Config) { c.Site.Peer = "" }, "site.peer: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "standby", 1)
			tt.modify(h.cfg)
			deps := service.Deps{Config: h.cfg, Bus: h.site.Bus(t, "arbiter", "b"), Log: slog.New(slog.DiscardHandler), Now: time.Now}
			err := arbiter.Run(context.Background(), deps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// TestRestartedActiveHoldsSessionsOnceConfirmed: the log says active from
// before a restart; the sessions wait until the orchestrator ends its
// startup hold (RoleConfirmed), or a site that stands down on restart
// would look, to the peer's arbitration, like an active that manages the
// arbiters.
func TestRestartedActiveHoldsSessionsOnceConfirmed(t *testing.T) {
	h := newHarness(t, "active", 2)
	h.publish(events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "before the restart"})
	time.Sleep(1500 * time.Millisecond) // older than the confirmation grace
	h.run()
	time.Sleep(time.Second)
	for i, s := range h.servers {
		if n := len(s.Sessions()); n != 0 {
			t.Fatalf("arbiter %d holds %d managing sessions before the role was confirmed", i, n)
		}
	}
	h.publish(events.RoleConfirmed{Role: events.RoleActive, Epoch: 1, Reason: "the peer is standby at epoch 0"})
	bustest.WaitFor(t, 10*time.Second, "managing sessions on every arbiter", func() bool {
		for _, s := range h.servers {
			if len(s.Sessions()) == 0 {
				return false
			}
		}
		return true
	})
}
