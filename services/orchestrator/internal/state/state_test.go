package state

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestPeerUnreachableCountsConfiguredLines(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	down := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}
	}
	up := func(line string) events.Event { return events.RemoteReachable{Peer: "b", Line: line, Target: "vip"} }
	tests := []struct {
		name  string
		lines []string
		log   []events.Event
		want  bool
	}{
		{"nothing heard", []string{"default"}, nil, false},
		{"the only line down", []string{"default"}, []events.Event{down("default")}, true},
		{"down then back", []string{"default"}, []events.Event{down("default"), up("default")}, false},
		{"both lines down", []string{"wan1", "wan2"}, []events.Event{down("wan1"), down("wan2")}, true},
		// A line up since the heartbeat started has announced nothing.
		{"one down, the other never heard from", []string{"wan1", "wan2"}, []events.Event{down("wan1")}, false},
		// A removed line that was up last would hold every failover back.
		{"a removed line last up is not counted", []string{"default"}, []events.Event{up("removed"), down("default")}, true},
		// A removed line that was down last must not count towards one.
		{"a removed line last down is not counted", []string{"default", "wan1"}, []events.Event{down("removed"), down("default")}, false},
		{"no line configured", nil, []events.Event{down("default")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("a", "b", events.RoleStandby, tt.lines)
			for _, ev := range tt.log {
				env, err := events.New(events.Source{Site: "a", Node: "n", Service: "heartbeat"}, ev, t0, nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Apply(env)
			}
			if got := s.PeerUnreachable(); got != tt.want {
				t.Errorf("PeerUnreachable = %v, want %v (lines %v)", got, tt.want, s.Lines)
			}
		})
	}
}
