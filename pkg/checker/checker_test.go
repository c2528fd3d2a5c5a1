package checker

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestActiveIntervals(t *testing.T) {
	tests := []struct {
		name    string
		changes []RoleChange
		downs   []Down
		want    []Interval
	}{
		{
			name: "clean failover",
			changes: []RoleChange{
				{Site: "a", At: at(10), From: "active", To: "standby", Epoch: 1},
				{Site: "b", At: at(12), From: "standby", To: "active", Epoch: 1},
			},
			want: []Interval{{Site: "a", Start: at(0), End: at(10)}, {Site: "b", Epoch: 1, Start: at(12)}},
		},
		{
			name:    "power-off ends the active span",
			downs:   []Down{{Site: "a", At: at(5)}},
			changes: []RoleChange{{Site: "b", At: at(40), From: "standby", To: "active", Epoch: 1}},
			want:    []Interval{{Site: "a", Start: at(0), End: at(5)}, {Site: "b", Epoch: 1, Start: at(40)}},
		},
		{
			name:  "a killed site resumes its epoch after a restart",
			downs: []Down{{Site: "a", At: at(5)}},
			changes: []RoleChange{
				{Site: "a", At: at(1), From: "standby", To: "active", Epoch: 1},
				{Site: "a", At: at(8), From: "active", To: "active", Epoch: 1, Resumed: true},
			},
			want: []Interval{{Site: "a", Start: at(0), End: at(5)}, {Site: "a", Epoch: 1, Start: at(8), Resumed: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ActiveIntervals("a", at(0), tt.changes, tt.downs)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("intervals (-want +got):\n%s", d)
			}
		})
	}
}

func TestNeverTwoActive(t *testing.T) {
	tests := []struct {
		name    string
		ivs     []Interval
		samples []VIPSample
		wantBad int
	}{
		{name: "disjoint", ivs: []Interval{{Site: "a", Start: at(0), End: at(10)}, {Site: "b", Epoch: 1, Start: at(10)}}},
		{name: "overlap", ivs: []Interval{{Site: "a", Start: at(0), End: at(11)}, {Site: "b", Epoch: 1, Start: at(10)}}, wantBad: 1},
		{name: "still-open overlap", ivs: []Interval{{Site: "a", Start: at(0)}, {Site: "b", Epoch: 1, Start: at(10)}}, wantBad: 1},
		{name: "one epoch taken by both sites", ivs: []Interval{{Site: "a", Epoch: 2, Start: at(0), End: at(1)}, {Site: "b", Epoch: 2, Start: at(3)}}, wantBad: 1},
		{name: "a lower epoch later, taken behind a cut", ivs: []Interval{{Site: "a", Epoch: 3, Start: at(0), End: at(1)}, {Site: "b", Epoch: 2, Start: at(3)}}},
		{name: "a site's own epoch not rising", ivs: []Interval{{Site: "a", Epoch: 3, Start: at(0), End: at(1)}, {Site: "b", Epoch: 4, Start: at(2), End: at(3)}, {Site: "a", Epoch: 1, Start: at(5)}}, wantBad: 1},
		{name: "a restarted site resumes its own epoch", ivs: []Interval{{Site: "a", Epoch: 1, Start: at(0), End: at(5)}, {Site: "a", Epoch: 1, Start: at(8), Resumed: true}}},
		{name: "resuming an epoch after the peer's span ended", ivs: []Interval{{Site: "a", Epoch: 1, Start: at(0), End: at(5)}, {Site: "b", Epoch: 2, Start: at(6), End: at(7)},
			{Site: "a", Epoch: 1, Start: at(8), Resumed: true}}},
		{name: "resumed overlapping the peer", ivs: []Interval{{Site: "a", Epoch: 1, Start: at(0), End: at(5)}, {Site: "b", Epoch: 2, Start: at(6)},
			{Site: "a", Epoch: 1, Start: at(8), Resumed: true}}, wantBad: 1},
		{name: "two VIP holders", samples: []VIPSample{{At: at(1), Holders: []string{"a"}}, {At: at(2), Holders: []string{"a", "b"}}}, wantBad: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeverTwoActive(tt.ivs, tt.samples); len(got) != tt.wantBad {
				t.Errorf("got %d violations %q, want %d", len(got), got, tt.wantBad)
			}
		})
	}
}

func TestNothingLost(t *testing.T) {
	tests := []struct {
		name      string
		own, peer []string
		want      []string
	}{
		{name: "complete", own: []string{"1", "2", "3"}, peer: []string{"1", "2", "3"}},
		{name: "missing", own: []string{"1", "2", "3"}, peer: []string{"1", "3"}, want: []string{"1 of site a's 3 events never reached the peer (first: 2)"}},
		{name: "duplicate", own: []string{"1", "2"}, peer: []string{"1", "2", "2"}, want: []string{"site a's event 2 is in the peer's copy 2 times"}},
		{name: "reordered", own: []string{"1", "2"}, peer: []string{"2", "1"}, want: []string{"the peer's copy of site a is out of order"}},
		{name: "invented", own: []string{"1"}, peer: []string{"1", "9"}, want: []string{"the peer's copy of site a holds 9, which site a never logged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, NothingLost("a", tt.own, tt.peer)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestStartAtWritable(t *testing.T) {
	ivs := []Interval{
		{Site: "a", Start: at(0), End: at(5)},
		{Site: "b", Epoch: 1, Start: at(10)},
	}
	obs := []Observation{
		{At: at(4), Writable: []string{"a"}},
		{At: at(7)},
		{At: at(8), Writable: []string{"b"}},
		{At: at(9), Writable: []string{"b"}, VIP: []string{"b"}},
	}
	want := []Interval{
		{Site: "a", Start: at(0), End: at(5)},
		{Site: "b", Epoch: 1, Start: at(8)},
	}
	if d := cmp.Diff(want, StartAtWritable(ivs, obs)); d != "" {
		t.Errorf("spans (-want +got):\n%s", d)
	}
}

func TestNeverTwoActiveObserved(t *testing.T) {
	clean := []Interval{{Site: "a", Start: at(0), End: at(5)}, {Site: "b", Epoch: 1, Start: at(10)}}
	tests := []struct {
		name string
		ivs  []Interval
		obs  []Observation
		want []string
	}{
		{
			name: "writable only inside its own span",
			ivs:  clean,
			obs:  []Observation{{At: at(1), Writable: []string{"a"}, VIP: []string{"a"}}, {At: at(7)}, {At: at(11), Writable: []string{"b"}, VIP: []string{"b"}}},
		},
		{
			// b's database was promoted at 4 s, before a's span ended:
			// RoleChanged at 10 s alone would have hidden the overlap.
			name: "promoted before the peer stood down",
			ivs:  clean,
			obs:  []Observation{{At: at(4), Writable: []string{"b"}}},
			want: []string{
				"a (epoch 0, 12:00:00.000–12:00:05.000) and b (epoch 1, 12:00:04.000–now) were active at the same time",
				"site b's database was writable while a was active (epoch 0) from 2026-01-01T12:00:04Z to 2026-01-01T12:00:04Z (1 observations)",
			},
		},
		{
			name: "two writable databases, one episode",
			ivs:  []Interval{{Site: "b", Epoch: 1, Start: at(0)}},
			obs: []Observation{
				{At: ms(10), Writable: []string{"b"}},
				{At: ms(20), Writable: []string{"a", "b"}},
				{At: ms(30), Writable: []string{"a", "b"}},
				{At: ms(40), Writable: []string{"b"}},
			},
			want: []string{
				"site a's database was writable while b was active (epoch 1) from 2026-01-01T12:00:00.02Z to 2026-01-01T12:00:00.03Z (2 observations)",
				"the databases of a and b were writable at once from 2026-01-01T12:00:00.02Z to 2026-01-01T12:00:00.03Z (2 observations)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, NeverTwoActiveObserved(tt.ivs, tt.obs)); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
		})
	}
}
