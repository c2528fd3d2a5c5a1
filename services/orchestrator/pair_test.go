package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

func roleOf(t *testing.T, b *bus.Bus, site events.SiteID) (events.Role, events.Epoch) {
	t.Helper()
	var role events.Role
	var epoch events.Epoch
	_, err := b.Replay(context.Background(), 0, []string{events.SiteTypeFilter(site, "RoleChanged")}, func(_ uint64, env *events.Envelope) error {
		rc, err := events.DecodeInto[events.RoleChanged](env)
		role, epoch = rc.To, rc.Epoch
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return role, epoch
}

// TestManualFailoverAcrossSites runs both sites' orchestrators on real
// JetStream sites joined by a leafnode link. An operator on the active
// site asks the standby to take over: the standby fences the active (which
// runs its own m2s saga), waits for its standby announcement across the
// link, then promotes itself at a higher epoch.
func TestManualFailoverAcrossSites(t *testing.T) {
	p := bustest.RunPair(t)
	vips := map[events.SiteID]*fakeVIP{"a": {}, "b": {}}
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			<-d
		}
	})
	buses := map[events.SiteID]*bus.Bus{}
	for _, s := range []struct {
		site *bustest.Site
		peer events.SiteID
		role events.Role
	}{{p.A, "b", events.RoleActive}, {p.B, "a", events.RoleStandby}} {
		b := s.site.Bus(t, "orchestrator", s.peer)
		buses[s.site.Name] = b
		o := DefaultOptions()
		o.Site, o.Peer, o.InitialRole = s.site.Name, s.peer, s.role
		o.Lines = []string{"default"}
		o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20}
		o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
		o.VIP = vips[s.site.Name]
		o.Tick = 20 * time.Millisecond
		o.FenceTimeout = 20 * time.Second
		d := make(chan error, 1)
		done = append(done, d)
		go func() { d <- RunWith(ctx, service.Deps{Bus: b, Log: quiet(), Now: time.Now}, o) }()
	}
	bustest.WaitFor(t, 15*time.Second, "b learns that a is active and a holds the VIP", func() bool {
		r, _ := roleOf(t, buses["b"], "a")
		return r == events.RoleActive && vips["a"].holds()
	})
	op := p.A.Bus(t, "operator", "b")
	if _, err := op.Publish(ctx, events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "planned switch", RequestedBy: "root@a"}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 30*time.Second, "b active", func() bool {
		r, _ := roleOf(t, buses["b"], "b")
		return r == events.RoleActive
	})
	if r, _ := roleOf(t, buses["a"], "a"); r != events.RoleStandby {
		t.Errorf("a is %s after b took over", r)
	}
	if _, e := roleOf(t, buses["b"], "b"); e != 2 {
		t.Errorf("b active at epoch %d, want 2", e)
	}
	// a took the VIP when it started active (the VIP monitor), and its
	// fencing saga released it.
	if got := vips["a"].opsSeen(); !cmp.Equal(got, []string{"take", "release"}) || vips["a"].holds() || !vips["b"].holds() {
		t.Errorf("VIP: a ops=%v held=%v, b held=%v", got, vips["a"].holds(), vips["b"].holds())
	}
}
