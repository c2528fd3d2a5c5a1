package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// TestSwitchoverRefusedLeavesAnActive: an operator asks b to take over
// while b's MariaDB is behind. Before, b fenced a first and then refused
// for lag: both sites standby, and nothing ever made either active again
// while they heard each other (safety-core path 6). Now the position is
// checked before anything moves, so a stays active; and when the refusal
// comes after the fence (the fenced primary's last writes never arrive),
// the liveness rule makes a — active at the highest epoch — active again.
func TestSwitchoverRefusedLeavesAnActive(t *testing.T) {
	for _, tt := range []struct {
		name string
		// lag is b's answer to a position command, by its FailoverID.
		lag        func(id string) int64
		wantFenced bool
	}{
		{name: "refused at check-position: a never moves", lag: func(string) int64 { return 5 }},
		{name: "refused after the fence: a becomes active again", wantFenced: true, lag: func(id string) int64 {
			if strings.Contains(id, "/"+saga.StepCatchUp) {
				return 5
			}
			return 0
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := bustest.RunPair(t)
			ctx := t.Context()
			vips := map[events.SiteID]*fakeVIP{"a": {}, "b": {}}
			answerDBCommands(ctx, p.A.Bus(t, "dbmonitor", "b"), "a", nil, nil)
			answerDBCommands(ctx, p.B.Bus(t, "dbmonitor", "a"), "b", nil, tt.lag)
			buses := runPairSites(t, p, func(o *Options) {
				o.Policy.RestartYield = time.Second
				o.Databases = []events.Database{events.MySQL}
				o.VIP = vips[o.Site]
			})
			bustest.WaitFor(t, 15*time.Second, "b learns that a is active", func() bool {
				r, _ := roleOf(t, buses["b"], "a")
				return r == events.RoleActive && vips["a"].holds()
			})
			op := p.B.Bus(t, "operator", "a")
			if _, err := op.Publish(ctx, events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "planned switch", RequestedBy: "root@b", Epoch: maxEpoch(t, op)}, nil); err != nil {
				t.Fatal(err)
			}
			bustest.WaitFor(t, 30*time.Second, "b's switchover aborted", func() bool {
				n := 0
				_, _ = buses["b"].Replay(ctx, 0, []string{events.SiteTypeFilter("b", "FailoverAborted")}, func(uint64, *events.Envelope) error { n++; return nil })
				return n == 1
			})
			if r, _ := roleOf(t, buses["a"], "b"); r == events.RoleActive {
				t.Fatalf("b active after its refused switchover")
			}
			if !tt.wantFenced {
				// Nothing moved: a stays active, the VIP where it was.
				for i := 0; i < 20; i++ {
					if r, e := roleOf(t, buses["a"], "a"); r != events.RoleActive || e != 1 || !vips["a"].holds() || vips["b"].holds() {
						t.Fatalf("a %s at epoch %d, VIP on a %v, on b %v: want a active at epoch 1 holding the VIP", r, e, vips["a"].holds(), vips["b"].holds())
					}
					time.Sleep(50 * time.Millisecond)
				}
				return
			}
			var epoch events.Epoch
			bustest.WaitFor(t, 30*time.Second, "a active again (the liveness rule)", func() bool {
				var r events.Role
				r, epoch = roleOf(t, buses["a"], "a")
				return r == events.RoleActive && epoch > 1 && vips["a"].holds()
			})
			if r, _ := roleOf(t, buses["b"], "b"); r != events.RoleStandby || vips["b"].holds() {
				t.Errorf("b is %s, VIP held %v; want standby without the VIP", r, vips["b"].holds())
			}
			var branch string
			_, _ = buses["a"].Replay(ctx, 0, []string{events.SiteTypeFilter("a", "FailoverStarted")}, func(_ uint64, env *events.Envelope) error {
				fs, err := events.DecodeInto[events.FailoverStarted](env)
				branch = fs.Reason
				return err
			})
			if !strings.HasPrefix(branch, decide.BranchResume) {
				t.Errorf("a's last saga says %q, want the liveness rule (%s)", branch, decide.BranchResume)
			}
		})
	}
}
