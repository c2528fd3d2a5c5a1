package orchestrator

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// runSite runs an orchestrator for site on b until the returned stop is
// called or the test ends.
func runSite(t *testing.T, b *bus.Bus, site, peer events.SiteID, role events.Role, vip *fakeVIP, tweaks ...func(*Options)) (stop func()) {
	t.Helper()
	o := DefaultOptions()
	o.Site, o.Peer, o.InitialRole = site, peer, role
	o.Lines = []string{"default"}
	o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, Home: role == events.RoleActive}
	o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
	o.VIP = vip
	o.Tick = 20 * time.Millisecond
	o.VIPInterval = 20 * time.Millisecond
	o.FenceTimeout = 20 * time.Second
	for _, f := range tweaks {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWith(ctx, service.Deps{Bus: b, Log: quiet(), Now: time.Now}, o) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("orchestrator %s: %v", site, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// roleChanges is every RoleChanged of site in b's log, in order.
func roleChanges(t *testing.T, b *bus.Bus, site events.SiteID) []events.RoleChanged {
	t.Helper()
	var out []events.RoleChanged
	_, err := b.Replay(context.Background(), 0, []string{events.SiteTypeFilter(site, "RoleChanged")}, func(_ uint64, env *events.Envelope) error {
		rc, err := events.DecodeInto[events.RoleChanged](env)
		out = append(out, rc)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// latestRole is site's latest RoleChanged in b's store, whether the log
// still holds it or only ROLES does. It reads the last message of a
// subject and leaves no consumer behind, so a test may poll it.
func latestRole(t *testing.T, b *bus.Bus, site events.SiteID) (events.RoleChanged, bool) {
	t.Helper()
	facts, err := b.Facts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range facts {
		if f.Env.Site == site && f.Env.Type == "RoleChanged" {
			rc, err := events.DecodeInto[events.RoleChanged](f.Env)
			if err != nil {
				t.Fatal(err)
			}
			return rc, true
		}
	}
	return events.RoleChanged{}, false
}

// switchToB runs a pair a (active) / b (standby) until an operator's
// failover made b active at epoch 2, then stops a's orchestrator. b's
// keeps running.
func switchToB(t *testing.T, p *bustest.Pair, vips map[events.SiteID]*fakeVIP) (aBus, bBus *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	aBus, bBus = p.A.Bus(t, "orchestrator", "b"), p.B.Bus(t, "orchestrator", "a")
	stopA := runSite(t, aBus, "a", "b", events.RoleActive, vips["a"])
	runSite(t, bBus, "b", "a", events.RoleStandby, vips["b"])
	bustest.WaitFor(t, 15*time.Second, "b learns that a is active", func() bool {
		rc, _ := latestRole(t, bBus, "a")
		return rc.To == events.RoleActive
	})
	op := p.B.Bus(t, "operator", "a")
	if _, err := op.Publish(ctx, events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "planned switch", RequestedBy: "root@b", Epoch: maxEpoch(t, op)}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 30*time.Second, "b active at epoch 2, a standby", func() bool {
		b, _ := latestRole(t, bBus, "b")
		a, _ := latestRole(t, aBus, "a")
		ab, _ := latestRole(t, aBus, "b")
		return b.To == events.RoleActive && b.Epoch == 2 && a.To == events.RoleStandby && ab.To == events.RoleActive && vips["b"].holds()
	})
	stopA()
	return aBus, bBus
}

// ageOut lets site's log lose every event, as 90 days of retention do:
// its EVENTS stream is shortened to a second until it holds no
// RoleChanged, then given its retention back.
func ageOut(t *testing.T, s *bustest.Site, peer events.SiteID) {
	t.Helper()
	ctx := context.Background()
	short := s.BusWith(t, bus.Options{Source: events.Source{Service: "retention"}, Peer: peer, MaxAge: time.Second})
	bustest.WaitFor(t, 15*time.Second, "site "+string(s.Name)+"'s log to age out", func() bool {
		st, err := short.JetStream().Stream(ctx, bus.EventsStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.TypeFilter("RoleChanged")))
		return err == nil && len(info.State.Subjects) == 0
	})
	s.Bus(t, "retention", peer) // the default retention again
}

// assertNeverActive watches a for d: it never takes the VIP nor records
// itself active, and b stays active holding the VIP.
func assertNeverActive(t *testing.T, aBus, bBus *bus.Bus, vips map[events.SiteID]*fakeVIP, vipA *fakeVIP, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, op := range vipA.opsSeen() {
			if op == "take" {
				t.Fatalf("a took the VIP while b is active: %v", vipA.opsSeen())
			}
		}
		if rc, _ := latestRole(t, aBus, "a"); rc.To == events.RoleActive {
			t.Fatalf("a announced itself active while b is active: %+v", rc)
		}
		if rc, _ := latestRole(t, bBus, "b"); rc.To != events.RoleActive || !vips["b"].holds() {
			t.Fatalf("b is %s (VIP held %v), want active with the VIP", rc.To, vips["b"].holds())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRoleOutlivesTheLog is the scenario: b took over at epoch
// 2, a stood by; a's process stopped and both logs aged out every
// RoleChanged. a, restarted with site.role active, must stay standby:
// its role survives the log's retention.
func TestRoleOutlivesTheLog(t *testing.T) {
	p := bustest.RunPair(t)
	vips := map[events.SiteID]*fakeVIP{"a": {}, "b": {}}
	aBus, bBus := switchToB(t, p, vips)
	ageOut(t, p.A, "b")
	ageOut(t, p.B, "a")
	vipA := &fakeVIP{}
	runSite(t, aBus, "a", "b", events.RoleActive, vipA)
	assertNeverActive(t, aBus, bBus, vips, vipA, 3*time.Second)
	// a stood down when b fenced it, at the epoch it had then.
	if rc, ok := latestRole(t, aBus, "a"); !ok || rc.To != events.RoleStandby || rc.FailoverID == "" {
		t.Errorf("a's durable role %+v, want the standby its fencing recorded", rc)
	}
}

// TestWipedStoreStartsStandby: a's store is lost (a new disk) while b is
// active at epoch 2. a, configured active, starts with no role of its
// own; b answers and its store records the pair's roles, so this is not
// the pair's first start: a announces standby at b's epoch, and why.
func TestWipedStoreStartsStandby(t *testing.T) {
	p := bustest.RunPair(t)
	vips := map[events.SiteID]*fakeVIP{"a": {}, "b": {}}
	_, bBus := switchToB(t, p, vips)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	p.A.Server.Shutdown(ctx)
	cancel()
	a := bustest.RunSite(t, "a", bustest.SiteOptions{LeafListen: true, LeafAddr: p.A.LeafAddr, Peer: "b"})
	bustest.WaitFor(t, 15*time.Second, "the link to the new a", func() bool { return a.Server.LeafConnected() > 0 })
	aBus := a.Bus(t, "orchestrator", "b")
	vipA := &fakeVIP{}
	runSite(t, aBus, "a", "b", events.RoleActive, vipA)
	bustest.WaitFor(t, 10*time.Second, "a announces its role", func() bool {
		_, ok := latestRole(t, aBus, "a")
		return ok
	})
	assertNeverActive(t, aBus, bBus, vips, vipA, 2*time.Second)
	got := roleChanges(t, aBus, "a")
	if len(got) != 1 || got[0].To != events.RoleStandby || got[0].Epoch < 2 || !strings.Contains(got[0].Reason, "not the pair's first start") {
		t.Errorf("a announced %+v, want one standby at epoch 2 or more saying it is not the pair's first start", got)
	}
}

// TestFirstStartOfAPairTakesTheConfiguredRoles: neither store nor peer
// knows a role, so site.role applies.
func TestFirstStartOfAPairTakesTheConfiguredRoles(t *testing.T) {
	p := bustest.RunPair(t)
	aBus, bBus := p.A.Bus(t, "orchestrator", "b"), p.B.Bus(t, "orchestrator", "a")
	vipA, vipB := &fakeVIP{}, &fakeVIP{}
	runSite(t, aBus, "a", "b", events.RoleActive, vipA)
	runSite(t, bBus, "b", "a", events.RoleStandby, vipB)
	bustest.WaitFor(t, 15*time.Second, "both roles in both logs", func() bool {
		_, ab := latestRole(t, aBus, "b")
		_, ba := latestRole(t, bBus, "a")
		return ab && ba && vipA.holds()
	})
	if got := roleChanges(t, aBus, "a"); len(got) != 1 || got[0].To != events.RoleActive || got[0].Epoch != 1 || !strings.Contains(got[0].Reason, "site.role") {
		t.Errorf("a announced %+v, want active at epoch 1 from site.role", got)
	}
	// b asks a's store too: before a announced itself, it is the pair's
	// first start; after, a is active and b stands by at its epoch.
	if got := roleChanges(t, bBus, "b"); len(got) != 1 || got[0].To != events.RoleStandby {
		t.Errorf("b announced %+v, want standby", got)
	}
	if vipB.holds() {
		t.Error("b holds the VIP")
	}
}

// TestNoRoleAndNoPeerStartsStandby: a starts with an empty store while b
// cannot be reached. It starts standby without the VIP; then either the
// peer answers with no role recorded (the pair's first start after all:
// site.role applies) or arbitration promotes it.
func TestNoRoleAndNoPeerStartsStandby(t *testing.T) {
	for _, then := range []string{"peer answers", "arbitration"} {
		t.Run(then, func(t *testing.T) {
			p := bustest.RunPair(t)
			p.Link.Cut()
			ctx := context.Background()
			aBus := p.A.Bus(t, "orchestrator", "b")
			vipA := &fakeVIP{}
			// The arbiters are clear: a takeover's claim holds them.
			clearArbiters(ctx, t, p.A.Bus(t, "arbiter", "b"))
			runSite(t, aBus, "a", "b", events.RoleActive, vipA, func(o *Options) { o.ClaimTimeout = 10 * time.Second })
			bustest.WaitFor(t, 15*time.Second, "a announces its role", func() bool {
				_, ok := latestRole(t, aBus, "a")
				return ok
			})
			time.Sleep(300 * time.Millisecond) // VIP rounds
			got := roleChanges(t, aBus, "a")
			if len(got) != 1 || got[0].To != events.RoleStandby || !strings.Contains(got[0].Reason, "does not answer") {
				t.Fatalf("a announced %+v, want standby because the peer does not answer", got)
			}
			// The stand-down before "standby" releases the VIP (a site
			// with no role of its own may have held it); it never takes it.
			if ops := vipA.opsSeen(); slices.Contains(ops, "take") {
				t.Fatalf("a took the VIP: %v", ops)
			}
			switch then {
			case "peer answers":
				p.Link.Heal()
			case "arbitration":
				hb := p.A.Bus(t, "heartbeat", "b")
				if _, err := hb.Publish(ctx, events.RemoteUnreachable{Peer: "b", Line: "default", Since: time.Now(), Failed: []events.ProbeResult{{Target: "b", Kind: "icmp"}}}, nil); err != nil {
					t.Fatal(err)
				}
				arb := p.A.Bus(t, "arbiter", "b")
				if _, err := arb.Publish(ctx, events.ArbitrationDecided{Role: events.RoleStandby, Method: "arbiters", Action: events.ActionBeActive, Branch: "standby.unmanaged", N: 3}, nil); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				if t.Failed() {
					aBus.Replay(ctx, 0, nil, func(_ uint64, env *events.Envelope) error {
						t.Logf("%s %s %s", env.Site, env.Type, env.Payload)
						return nil
					})
				}
			}()
			bustest.WaitFor(t, 20*time.Second, "a active with the VIP", func() bool {
				rc, _ := latestRole(t, aBus, "a")
				return rc.To == events.RoleActive && rc.Epoch == 1 && vipA.holds()
			})
		})
	}
}

// clearArbiters answers every claim of the arbiters in b's log as the
// arbiter service does when no site manages them: clear.
func clearArbiters(ctx context.Context, t *testing.T, b *bus.Bus) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Follow(ctx, 0, []string{events.TypeFilter("ArbitersClaimRequested")}, func(_ uint64, env *events.Envelope) {
			req, err := events.DecodeInto[events.ArbitersClaimRequested](env)
			if err != nil || env.Site != b.Source().Site {
				return
			}
			ans := events.ArbitersClaimed{ClaimID: req.ClaimID, Outcome: events.ClaimClear, N: 3, Held: 3, Branch: "standby-failover"}
			if _, err := b.Publish(ctx, ans, env); err != nil && ctx.Err() == nil {
				t.Errorf("answer claim %s: %v", req.ClaimID, err)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fake arbiter: %v", err)
		}
	})
}

// TestRestoredActiveLearnsThePeersDurableRole: a's store is an old copy
// saying active at epoch 1; b took over at epoch 2 long ago, and its log
// aged that RoleChanged out. The startup hold must read b's role from
// b's durable store and stand a down, not take b's silence for "no role".
func TestRestoredActiveLearnsThePeersDurableRole(t *testing.T) {
	p := bustest.RunPair(t)
	ctx := context.Background()
	aBus, bBus := p.A.Bus(t, "orchestrator", "b"), p.B.Bus(t, "orchestrator", "a")
	if _, err := aBus.Publish(ctx, events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial"}, nil); err != nil {
		t.Fatal(err)
	}
	p.Link.Cut()
	if _, err := bBus.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Reason: "a lost", FailoverID: "f1"}, nil); err != nil {
		t.Fatal(err)
	}
	// b's durable store has its role before its log loses it.
	bustest.WaitFor(t, 10*time.Second, "b's role in its durable store", func() bool {
		_, ok := latestRole(t, bBus, "b")
		return ok
	})
	ageOut(t, p.B, "a")
	p.Link.Heal()
	vipA := &fakeVIP{}
	runSite(t, aBus, "a", "b", events.RoleActive, vipA)
	bustest.WaitFor(t, 20*time.Second, "a standby", func() bool {
		rc, _ := latestRole(t, aBus, "a")
		return rc.To == events.RoleStandby
	})
	time.Sleep(300 * time.Millisecond)
	for _, op := range vipA.opsSeen() {
		if op == "take" {
			t.Errorf("a took the VIP while b was active at a higher epoch: %v", vipA.opsSeen())
		}
	}
}

// TestNoRoleOfItsOwnFencesItsDatabasesFirst: a site whose store lost its
// role may have been the active one, its database still writable (the
// real-process chaos harness's seed 2001: a's store wiped while it was
// active; it restarted standby and never made its MariaDB read-only, so
// b's promotion left two writable primaries). Standby is recorded only
// after its databases were demoted.
func TestNoRoleOfItsOwnFencesItsDatabasesFirst(t *testing.T) {
	p := bustest.RunPair(t)
	p.Link.Cut()
	ctx := t.Context()
	aBus := p.A.Bus(t, "orchestrator", "b")
	seen := make(chan events.DatabaseCommand, 16)
	answerDBCommands(ctx, p.A.Bus(t, "dbmonitor", "b"), "a", seen, nil)
	runSite(t, aBus, "a", "b", events.RoleActive, &fakeVIP{}, func(o *Options) {
		o.Databases = []events.Database{events.MySQL}
	})
	bustest.WaitFor(t, 15*time.Second, "a announces its role", func() bool {
		_, ok := latestRole(t, aBus, "a")
		return ok
	})
	var order []string
	_, err := aBus.Replay(ctx, 0, []string{events.SiteTypeFilter("a", "DatabaseCommandDone"), events.SiteTypeFilter("a", "RoleChanged")}, func(_ uint64, env *events.Envelope) error {
		switch ev, _ := events.Decode(env); ev := ev.(type) {
		case events.DatabaseCommandDone:
			order = append(order, ev.Command+":"+strconv.FormatBool(ev.OK))
		case events.RoleChanged:
			order = append(order, "RoleChanged:"+string(ev.To))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"demote:true", "RoleChanged:standby"}) {
		t.Fatalf("a's log: %v, want its database demoted, then standby recorded", order)
	}
}
