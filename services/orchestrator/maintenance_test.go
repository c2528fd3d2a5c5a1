package orchestrator

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

func TestPauseHoldsOnlyAutomaticPromotions(t *testing.T) {
	st := pair.New("a", "b", events.RoleStandby, nil)
	tests := []struct {
		name       string
		d          decide.Decision
		mode       string
		wantPaused bool
	}{
		{"takeover while paused", decide.Decision{Action: events.ActionBeActive, Act: true, Branch: decide.BranchTakeover}, events.MaintenancePaused, true},
		{"resume while paused", decide.Decision{Action: events.ActionBeActive, Act: true, Branch: decide.BranchResume}, events.MaintenancePaused, true},
		{"takeover, not paused", decide.Decision{Action: events.ActionBeActive, Act: true, Branch: decide.BranchTakeover}, events.MaintenanceOff, false},
		{"an operator's promotion", decide.Decision{Action: events.ActionBeActive, Act: true, Branch: "request.manual", RequestID: "r1"}, events.MaintenancePaused, false},
		{"the epoch fence", decide.Decision{Action: events.ActionBeStandby, Act: true, Branch: "epoch.fence"}, events.MaintenancePaused, false},
		{"a self-fence", decide.Decision{Action: events.ActionBeStandby, Act: true, Branch: "active.arbiters-lost"}, events.MaintenancePaused, false},
		{"already blocked", decide.Decision{Action: events.ActionBeActive, Blocked: true, Branch: "guard.lag"}, events.MaintenancePaused, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, paused := pauseHold(tt.d, tt.mode, st)
			if paused != tt.wantPaused || (paused && (d.Act || !d.Blocked || d.Branch != tt.d.Branch)) || (!paused && d != tt.d) {
				t.Errorf("pauseHold = %+v, %v", d, paused)
			}
		})
	}
}

// TestPauseStopsTheTakeoverAndTheVIPMonitor: a paused standby that holds
// the VIP (found there at start) leaves it, and records its takeover as
// paused instead of running it; resumed, the VIP monitor and the takeover
// act.
func TestPauseStopsTheTakeoverAndTheVIPMonitor(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.vip.held = true
	h.opts.VIPInterval = 20 * time.Millisecond
	h.publish(events.MaintenanceChanged{Mode: events.MaintenancePaused, Reason: "network work", By: "ops"})
	h.start()
	h.waitFor("initial role", func() bool { return len(decodeAll[events.RoleChanged](h)) > 0 })
	h.peerDown()
	h.waitFor("a paused decision", func() bool {
		for _, d := range decodeAll[events.FailoverDecided](h) {
			if d.Paused && d.Blocked && d.Branch == decide.BranchTakeover && d.Action == events.ActionBeActive {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // many VIP rounds and decision ticks
	if ops := h.vip.opsSeen(); len(ops) != 0 {
		t.Errorf("the VIP monitor acted while paused: %v", ops)
	}
	if n := len(decodeAll[events.FailoverStarted](h)); n != 0 {
		t.Fatalf("a paused pair started %d sagas", n)
	}
	if n := len(decodeAll[events.FailoverDecided](h)); n != 1 {
		t.Errorf("the standing paused decision was recorded %d times, want once", n)
	}

	h.publish(events.MaintenanceChanged{Mode: events.MaintenanceOff, Reason: "done", By: "ops"})
	h.waitRole(events.RoleActive, 1)
}
