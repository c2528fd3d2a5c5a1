package watchdog

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// TestWakes: a fresh loss of the peer on a configured line, a new claim and
// a role confirmation start a round at once; the rest waits for the tick.
func TestWakes(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	env := func(site events.SiteID, ev events.Event) *events.Envelope {
		e, err := events.New(events.Source{Site: site, Node: "n", Service: "test"}, ev, t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	lost := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}
	}
	st := pair.New("a", "b", "", []string{"default"})
	for _, tt := range []struct {
		name string
		env  *events.Envelope
		want bool
	}{
		{"loss on a configured line", env("a", lost("default")), true},
		{"loss on a line no longer configured", env("a", lost("removed")), false},
		{"the peer's own loss", env("b", lost("default")), false},
		{"role confirmed", env("a", events.RoleConfirmed{Role: events.RoleActive, Epoch: 1, Reason: "r"}), true},
		{"a new claim", env("a", events.ArbitersClaimRequested{ClaimID: "f1"}), true},
		{"the peer back", env("a", events.RemoteReachable{Peer: "b", Line: "default", Target: "x"}), false},
	} {
		if got := wakes(st, tt.env); got != tt.want {
			t.Errorf("%s: wakes = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A claim answered clear is not asked anew by the same request seen
	// again (a replay after the answer).
	st.Apply(env("a", events.ArbitersClaimRequested{ClaimID: "f1"}))
	st.Apply(env("a", events.ArbitersClaimed{ClaimID: "f1", Outcome: events.ClaimClear, N: 1}))
	if wakes(st, env("a", events.ArbitersClaimRequested{ClaimID: "f1"})) {
		t.Error("an answered claim woke the loop again")
	}
}
