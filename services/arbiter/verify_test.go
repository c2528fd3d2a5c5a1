package arbiter_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/pkg/sshsim"
	"github.com/drwatch/drwatch/services/arbiter"
	"github.com/drwatch/drwatch/services/arbiter/internal/probe"
	"github.com/drwatch/drwatch/services/arbiter/internal/sshtest"
)

// runWith starts the service on b with cfg's options as modify changes
// them, until the test ends.
func runWith(t *testing.T, cfg *config.Config, b *bus.Bus, modify func(*arbiter.Options)) {
	t.Helper()
	opts := arbiter.OptionsFromConfig(cfg)
	modify(&opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	deps := service.Deps{Config: cfg, Bus: b, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	go func() { done <- arbiter.RunWith(ctx, deps, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunWith returned %v on a clean stop", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunWith did not stop within 10s of its context ending")
		}
	})
}

// TestActiveCountsOnlyArbitersListingItsSession: the active site (a,
// sessions from 127.0.0.1) and the standby (b, logging in from 127.0.0.3
// and matching a by site.peerAddresses 127.0.0.1) look at the same six
// arbiters. Every arbiter answers a TCP connect, but only two list a's
// managing session by a's address: one account gets no terminal, so `who`
// lists nothing; one sits behind NAT and lists a as 10.20.0.1; one records
// host names (UseDNS); one rejects a's key. The standby counts 2 of 6
// managed and takes over; the active must judge the same fact — 2 of 6 —
// and stand down, and report the four arbiters.
func TestActiveCountsOnlyArbitersListingItsSession(t *testing.T) {
	keyPath, _ := sshtest.WritePrivateKey(t)
	_, otherPub := sshtest.WritePrivateKey(t)
	good1 := sshtest.New(t, sshtest.Options{Password: "s3cret"})
	good2 := sshtest.New(t, sshtest.Options{Password: "s3cret"})
	noTerminal := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", NoTerminal: true})
	nat := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", Origin: func(ip string) string {
		if ip == "127.0.0.1" {
			return "10.20.0.1"
		}
		return ip
	}})
	useDNS := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", Origin: func(string) string { return "site-a.example" }})
	keyRejected := sshtest.New(t, sshtest.Options{Password: "s3cret", AuthorizedKey: otherPub})
	kh := sshtest.KnownHostsOf(t, []sshsim.HostEntry{good1.HostEntry(), good2.HostEntry(), noTerminal.HostEntry(),
		nat.HostEntry(), useDNS.HostEntry(), keyRejected.HostEntry()}...)
	arbiters := func(keyRejectedAuth config.Arbiter) []config.Arbiter {
		pw := config.Arbiter{Username: "arbiter", Password: config.NewSecret("s3cret"), KnownHosts: kh}
		at := func(a config.Arbiter, host string, port int) config.Arbiter { a.Host, a.Port = host, port; return a }
		return []config.Arbiter{at(pw, good1.Host, good1.Port), at(pw, good2.Host, good2.Port), at(pw, noTerminal.Host, noTerminal.Port),
			at(pw, nat.Host, nat.Port), at(pw, useDNS.Host, useDNS.Port), at(keyRejectedAuth, keyRejected.Host, keyRejected.Port)}
	}
	siteConfig := func(name, peer, role string, arbs []config.Arbiter) *config.Config {
		cfg := config.Defaults()
		cfg.Site.Name, cfg.Site.Peer, cfg.Site.Node, cfg.Site.Role = name, peer, name+"-node", role
		cfg.Core.PeerVIP = "10.0.0.10"
		cfg.Watchdog.Heartbeat.Interval = config.Duration(400 * time.Millisecond)
		fd := &cfg.Watchdog.FailureDetection
		fd.ProbeTimeout = config.Duration(300 * time.Millisecond)
		fd.ArbiterProbe = "tcp"
		fd.Arbiters = arbs
		return &cfg
	}

	// Site a, active: logs in to the last arbiter with a key it does not
	// accept.
	a := bustest.RunSite(t, "a", bustest.SiteOptions{})
	aCfg := siteConfig("a", "b", "active", arbiters(config.Arbiter{Username: "arbiter", PrivateKey: keyPath, KnownHosts: kh}))
	aCfg.Site.PeerAddresses = config.List{"127.0.0.3"}
	aLog := a.Bus(t, "heartbeat", "b")
	runWith(t, aCfg, a.Bus(t, "arbiter", "b"), func(*arbiter.Options) {})
	if _, err := aLog.Publish(context.Background(), events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial role from site.role"}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "a's managing sessions", func() bool {
		return len(good1.Sessions()) > 0 && len(good2.Sessions()) > 0 && len(noTerminal.Sessions()) > 0 && len(nat.Sessions()) > 0 && len(useDNS.Sessions()) > 0
	})

	// Site b, standby, from 127.0.0.3.
	b := bustest.RunSite(t, "b", bustest.SiteOptions{})
	bCfg := siteConfig("b", "a", "standby", arbiters(config.Arbiter{Username: "arbiter", Password: config.NewSecret("s3cret"), KnownHosts: kh}))
	bCfg.Site.PeerAddresses = config.List{"127.0.0.1"}
	bLog := b.Bus(t, "heartbeat", "a")
	runWith(t, bCfg, b.Bus(t, "arbiter", "a"), func(o *arbiter.Options) {
		o.Dialer = probe.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	})

	lost := events.RemoteUnreachable{Line: "default", Since: time.Now().Add(-time.Minute), DownForSeconds: 60,
		Failed: []events.ProbeResult{{Target: "10.0.0.10", Kind: "icmp", Attempts: 5, Error: "timeout"}}}
	lost.Peer = "a"
	if _, err := bLog.Publish(context.Background(), lost, nil); err != nil {
		t.Fatal(err)
	}
	lost.Peer = "b"
	if _, err := aLog.Publish(context.Background(), lost, nil); err != nil {
		t.Fatal(err)
	}

	standby, _ := waitEvent(t, bLog, "b's verdict", func(events.ArbitrationDecided) bool { return true })
	if standby.Action != events.ActionBeActive || standby.Managed != 2 || standby.Unreachable != 0 {
		t.Fatalf("standby verdict %+v, want beActive with 2 of 6 managed", standby)
	}
	active, _ := waitEvent(t, aLog, "a's verdict", func(events.ArbitrationDecided) bool { return true })
	if active.Action != events.ActionBeStandby || active.Branch != "active-fence" || active.Managed != 2 || active.N != 6 {
		t.Errorf("active verdict %+v, want beStandby (active-fence) with 2 of 6 arbiters listing a's session", active)
	}
	for i, r := range active.Arbiters {
		if want := i < 2; r.ManagedByActive != want {
			t.Errorf("active verdict: arbiter %d %s managed = %v, want %v (%s)", i, r.Host, r.ManagedByActive, want, r.Error)
		}
	}

	checked, _ := waitEvent(t, aLog, "a's ConfigChecked", func(e events.ConfigChecked) bool { return !e.OK })
	t.Logf("active: %s\nproblems:\n%s", active.Description, strings.Join(checked.Problems, "\n"))
	if len(checked.Problems) != 4 {
		t.Fatalf("ConfigChecked problems %q, want one for each of the 4 arbiters that do not list a's session", checked.Problems)
	}
	for i, want := range []struct {
		addr string
		says []string
	}{
		{noTerminal.Addr, []string{"lists no session"}},
		{nat.Addr, []string{"10.20.0.1"}},
		{useDNS.Addr, []string{"site-a.example"}},
		{keyRejected.Addr, []string{"unable to authenticate"}},
	} {
		p := checked.Problems[i]
		for _, s := range append(want.says, want.addr) {
			if !strings.Contains(p, s) {
				t.Errorf("problem %d %q does not say %q", i, p, s)
			}
		}
	}
}

// TestClaimCountsOnlyListedSessions: a claim needs sessions the peer will
// see. Two of three arbiters give site a's account no terminal, so `who`
// lists none of its sessions: the claim holds 3 sessions but only 1 is
// listed, fewer than threshold.failover, and fails.
func TestClaimCountsOnlyListedSessions(t *testing.T) {
	h := newHarness(t, "standby", 1)
	fd := &h.cfg.Watchdog.FailureDetection
	entries := []sshsim.HostEntry{h.servers[0].HostEntry()}
	var unlisting []*sshtest.Who
	for range 2 {
		w := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", NoTerminal: true})
		unlisting = append(unlisting, w)
		entries = append(entries, w.HostEntry())
		fd.Arbiters = append(fd.Arbiters, config.Arbiter{Username: "arbiter", Password: config.NewSecret("s3cret"), Host: w.Host, Port: w.Port})
	}
	kh := sshtest.KnownHostsOf(t, entries...)
	for i := range fd.Arbiters {
		fd.Arbiters[i].KnownHosts = kh
	}
	h.run()
	h.publish(events.ArbitersClaimRequested{ClaimID: "f6", Reason: "standby.takeover"})
	ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f6" })
	if ev.Outcome != events.ClaimFailed || ev.Held != 1 || ev.Branch != "claim-too-few-sessions" {
		t.Fatalf("claim %+v, want failed with 1 of 3 sessions listed", ev)
	}
	for _, w := range unlisting {
		if cmds := w.Commands(); len(cmds) == 0 {
			t.Errorf("arbiter %s was never asked for its session list", w.Addr)
		}
	}
}
