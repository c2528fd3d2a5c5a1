package verdict

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

var seedThresholds = Thresholds{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7}

func TestDecide(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	since := now.Add(-time.Hour)
	type want struct {
		Action  events.Action
		Branch  string
		R, M, U float64
	}
	tests := []struct {
		name string
		in   Input
		want want
	}{
		// No arbiters: cannot arbitrate, whatever the role.
		{"active no arbiters", Input{Role: events.RoleActive, Automatic: true}, want{events.ActionNothing, BranchNoArbiters, 0, 0, 0}},
		{"standby no arbiters", Input{Role: events.RoleStandby, Automatic: true}, want{events.ActionNothing, BranchNoArbiters, 0, 0, 0}},
		{"standalone", Input{Role: events.RoleStandalone, N: 3}, want{events.ActionNothing, BranchNotArbitrating, 0, 0, 0}},

		// Active site: m = arbiters listing this site's managing session / N
		// against failover; pings are reported, not decided on.
		{"active all list it", Input{Role: events.RoleActive, N: 4, Reachable: 4, Managed: 4, Automatic: true}, want{events.ActionNothing, BranchActiveQuorum, 1, 1, 0}},
		{"active exactly 50%", Input{Role: events.RoleActive, N: 4, Reachable: 4, Managed: 2, Automatic: true}, want{events.ActionNothing, BranchActiveQuorum, 1, 0.5, 0}},
		{"active just below 50%", Input{Role: events.RoleActive, N: 5, Reachable: 2, Managed: 2, Automatic: true}, want{events.ActionBeStandby, BranchActiveFence, 0.4, 0.4, 0}},
		{"active none answer", Input{Role: events.RoleActive, N: 3, Reachable: 0, Automatic: true}, want{events.ActionBeStandby, BranchActiveFence, 0, 0, 0}},
		{"active all answer a ping, none lists it", Input{Role: events.RoleActive, N: 3, Reachable: 3, Automatic: true}, want{events.ActionBeStandby, BranchActiveFence, 1, 0, 0}},
		{"active all answer a ping, 1 of 3 lists it", Input{Role: events.RoleActive, N: 3, Reachable: 3, Managed: 1, Automatic: true}, want{events.ActionBeStandby, BranchActiveFence, 1, 1.0 / 3, 0}},
		{"active below, automatic off", Input{Role: events.RoleActive, N: 4, Reachable: 4, Managed: 1}, want{events.ActionNothing, BranchActiveAutoOff, 1, 0.25, 0}},
		{"active one of one", Input{Role: events.RoleActive, N: 1, Reachable: 1, Managed: 1, Automatic: true}, want{events.ActionNothing, BranchActiveQuorum, 1, 1, 0}},

		// Standby rule 1: m >= failover.
		{"standby active manages all", Input{Role: events.RoleStandby, N: 4, Managed: 4, Automatic: true}, want{events.ActionNothing, BranchStandbyManaged, 1, 1, 0}},
		{"standby active manages exactly 50%", Input{Role: events.RoleStandby, N: 4, Managed: 2, Automatic: true}, want{events.ActionNothing, BranchStandbyManaged, 1, 0.5, 0}},
		// Rule 2: r < adjustManaged.
		{"standby all unreachable", Input{Role: events.RoleStandby, N: 4, Unreachable: 4, Automatic: true}, want{events.ActionNothing, BranchStandbyIsolated, 0, 0, 1}},
		{"standby reaches 1 of 4", Input{Role: events.RoleStandby, N: 4, Unreachable: 3, Automatic: true}, want{events.ActionNothing, BranchStandbyIsolated, 0.25, 0, 0.75}},
		{"standby reaches exactly 50%, none managed", Input{Role: events.RoleStandby, N: 4, Unreachable: 2, Automatic: true}, want{events.ActionNothing, BranchStandbyAdjusted, 0.5, 0, 0.5}},
		// Rule 3: m+u < failover fails over, else not.
		{"standby m+u exactly 50%", Input{Role: events.RoleStandby, N: 4, Managed: 1, Unreachable: 1, Automatic: true}, want{events.ActionNothing, BranchStandbyAdjusted, 0.75, 0.25, 0.25}},
		{"standby m+u just below 50%", Input{Role: events.RoleStandby, N: 5, Managed: 1, Unreachable: 1, Automatic: true}, want{events.ActionBeActive, BranchStandbyFailover, 0.8, 0.2, 0.2}},
		{"standby nothing managed all reachable", Input{Role: events.RoleStandby, N: 3, Automatic: true}, want{events.ActionBeActive, BranchStandbyFailover, 1, 0, 0}},
		{"standby thirds", Input{Role: events.RoleStandby, N: 3, Managed: 1, Automatic: true}, want{events.ActionBeActive, BranchStandbyFailover, 1, 1.0 / 3, 0}},
		{"standby failover needed, automatic off", Input{Role: events.RoleStandby, N: 3}, want{events.ActionNothing, BranchStandbyAutoOff, 1, 0, 0}},
		{"standby one arbiter unreachable", Input{Role: events.RoleStandby, N: 1, Unreachable: 1, Automatic: true}, want{events.ActionNothing, BranchStandbyIsolated, 0, 0, 1}},

		// Both standby: only the site that was active last during waitDuration.
		{"both standby, not last active, in grace", Input{Role: events.RoleStandby, N: 2, Automatic: true,
			BothStandbySince: since, WaitDuration: 8 * time.Hour, Now: now}, want{events.ActionWait, BranchBothStandbyGrace, 1, 0, 0}},
		{"both standby, last active, in grace", Input{Role: events.RoleStandby, N: 2, Automatic: true,
			BothStandbySince: since, WasActiveLast: true, WaitDuration: 8 * time.Hour, Now: now}, want{events.ActionBeActive, BranchStandbyFailover, 1, 0, 0}},
		{"both standby, grace over exactly", Input{Role: events.RoleStandby, N: 2, Automatic: true,
			BothStandbySince: since, WaitDuration: time.Hour, Now: now}, want{events.ActionBeActive, BranchStandbyFailover, 1, 0, 0}},
		{"both standby, in grace, but active manages", Input{Role: events.RoleStandby, N: 2, Managed: 1, Automatic: true,
			BothStandbySince: since, WaitDuration: 8 * time.Hour, Now: now}, want{events.ActionNothing, BranchStandbyManaged, 1, 0.5, 0}},
		{"both standby, zero waitDuration", Input{Role: events.RoleStandby, N: 2, Automatic: true,
			BothStandbySince: now, Now: now}, want{events.ActionBeActive, BranchStandbyFailover, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Thresholds = seedThresholds
			v := Decide(tt.in)
			got := want{v.Action, v.Branch, v.ReachableShare, v.ManagedShare, v.UnreachableShare}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide(%+v) (-want +got):\n%s\ndescription: %s", tt.in, diff, v.Description)
			}
			if v.Description == "" {
				t.Error("verdict without description")
			}
			if (v.Action == events.ActionWait) != (v.WaitUntil != nil) {
				t.Errorf("action %s with waitUntil %v", v.Action, v.WaitUntil)
			}
		})
	}
}

func TestDecideWaitUntil(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	v := Decide(Input{Role: events.RoleStandby, N: 1, Automatic: true, Thresholds: seedThresholds,
		BothStandbySince: now.Add(-time.Hour), WaitDuration: 8 * time.Hour, Now: now})
	if want := now.Add(7 * time.Hour); v.WaitUntil == nil || !v.WaitUntil.Equal(want) {
		t.Fatalf("waitUntil = %v, want %v", v.WaitUntil, want)
	}
}

func TestDecideDescriptionsSayWhy(t *testing.T) {
	v := Decide(Input{Role: events.RoleActive, N: 4, Reachable: 1, Thresholds: seedThresholds})
	if !strings.Contains(v.Description, "automatic failover is disabled by connectivity problems") {
		t.Errorf("description %q does not tell the operator automatic failover is disabled by connectivity", v.Description)
	}
	v = Decide(Input{Role: events.RoleStandby, Thresholds: seedThresholds})
	if !strings.Contains(v.Description, "no automatic failover") {
		t.Errorf("description %q does not say there is no automatic failover", v.Description)
	}
}

func TestQuorumLow(t *testing.T) {
	tests := []struct {
		n, reachable int
		share        float64
		low          bool
	}{
		{0, 0, 0, false},
		{10, 10, 1, false},
		{10, 7, 0.7, false}, // exactly warning is not below it
		{10, 6, 0.6, true},
		{4, 0, 0, true}, // all unreachable
		{3, 2, 2.0 / 3, true},
	}
	for _, tt := range tests {
		share, low := QuorumLow(tt.n, tt.reachable, 0.7)
		if share != tt.share || low != tt.low {
			t.Errorf("QuorumLow(%d, %d, 0.7) = %v, %v; want %v, %v", tt.n, tt.reachable, share, low, tt.share, tt.low)
		}
	}
}
