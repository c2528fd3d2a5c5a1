package watchdog

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

func env(t *testing.T, site events.SiteID, at time.Time, ev events.Event) *events.Envelope {
	t.Helper()
	e, err := events.New(events.Source{Site: site, Node: "n", Service: "test"}, ev, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestState(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	lost := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}
	}
	back := func(line string) events.Event {
		return events.RemoteReachable{Peer: "b", Line: line, Target: "x"}
	}
	s := NewState("a", "b", []string{"vip", "backup"}, true)
	apply := func(site events.SiteID, at time.Time, ev events.Event) bool {
		t.Helper()
		wake, err := s.Apply(env(t, site, at, ev))
		if err != nil {
			t.Fatal(err)
		}
		return wake
	}
	// Two heartbeat lines: one down is not a lost peer.
	if !apply("a", t0, lost("vip")) {
		t.Error("RemoteUnreachable did not wake the loop")
	}
	if _, down := s.PeerUnreachable(); down {
		t.Error("peer unreachable with one of two lines down")
	}
	// The peer's own heartbeat verdicts (sourced into our log) are not ours.
	apply("b", t0, lost("backup"))
	if _, down := s.PeerUnreachable(); down {
		t.Error("the peer's RemoteUnreachable counted as ours")
	}
	apply("a", t0.Add(time.Second), lost("backup"))
	if _, down := s.PeerUnreachable(); !down {
		t.Error("peer reachable with every line down")
	}
	apply("a", t0, back("vip"))
	if _, down := s.PeerUnreachable(); down {
		t.Error("peer unreachable after a line recovered")
	}

	// Automatic failover: off for an hour lapses by itself.
	until := t0.Add(time.Hour)
	apply("a", t0, events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "r", By: "op"})
	if s.Automatic(t0.Add(time.Minute)) || !s.Automatic(until) {
		t.Error("automatic failover disable with an end time")
	}
	// The setting is pair-wide (seed 000 runs it on the active site to
	// stop the standby's failover), as the orchestrator reads it.
	apply("b", t0, events.AutomaticFailoverChanged{Enabled: true, Reason: "r", By: "op"})
	if !s.Automatic(t0) {
		t.Error("the peer's operator enabled automatic failover; this site ignored it")
	}
	apply("b", t0, events.AutomaticFailoverChanged{Enabled: false, Reason: "r", By: "op"})
	if s.Automatic(t0) {
		t.Error("the peer's operator disabled automatic failover; this site ignored it")
	}
	apply("c", t0, events.AutomaticFailoverChanged{Enabled: true, Reason: "r", By: "op"})
	if s.Automatic(t0) {
		t.Error("a third site's setting changed ours")
	}

	// Roles: a was active, fenced itself; b became standby earlier.
	if !s.BothStandby(events.RoleStandby).IsZero() {
		t.Error("both standby with the peer's role unknown")
	}
	apply("a", t0, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "r"})
	apply("b", t0.Add(time.Minute), events.RoleChanged{From: events.RoleActive, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if s.WasActiveLast() {
		t.Error("b left active after a became active: b held it last")
	}
	apply("a", t0.Add(2*time.Minute), events.RoleChanged{From: events.RoleActive, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if !s.WasActiveLast() {
		t.Error("a left active last")
	}
	if got := s.BothStandby(events.RoleStandby); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("both standby since %v, want the later change", got)
	}
	if !s.BothStandby(events.RoleActive).IsZero() {
		t.Error("both standby while this site is active")
	}
}

// TestStateCountsOnlyConfiguredLines: a line removed from the configuration
// while it was down keeps its last RemoteUnreachable in the log, and nobody
// will ever announce it back. Counting it would start arbitration — and a
// failover — while the one line still probed answers.
func TestStateCountsOnlyConfiguredLines(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	lost := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}
	}
	s := NewState("a", "b", []string{"default"}, true)
	wake, err := s.Apply(env(t, "a", t0, lost("removed")))
	if err != nil {
		t.Fatal(err)
	}
	if wake {
		t.Error("a line no longer configured woke the loop")
	}
	if _, down := s.PeerUnreachable(); down {
		t.Error("peer unreachable from a line no longer configured while the configured line answers")
	}
	if _, err := s.Apply(env(t, "a", t0, lost("default"))); err != nil {
		t.Fatal(err)
	}
	if cause, down := s.PeerUnreachable(); !down || cause == nil {
		t.Errorf("peer reachable with its only configured line down (cause %v)", cause)
	}

	if _, down := NewState("a", "b", nil, true).PeerUnreachable(); down {
		t.Error("no line configured: the peer cannot be lost")
	}
}

func TestHoldSessions(t *testing.T) {
	started := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const timeout = 2 * time.Minute
	tests := []struct {
		name        string
		role        events.Role
		confirmedAt time.Time
		now         time.Time
		want        bool
	}{
		{"standby never holds", events.RoleStandby, started.Add(time.Second), started.Add(time.Second), false},
		{"standby never holds, even after the timeout", events.RoleStandby, time.Time{}, started.Add(time.Hour), false},
		{"active confirmed after the start", events.RoleActive, started.Add(3 * time.Second), started.Add(3 * time.Second), true},
		{"active confirmed by the same process just before the start", events.RoleActive, started.Add(-500 * time.Millisecond), started, true},
		{"active from before a restart: waits", events.RoleActive, started.Add(-time.Minute), started.Add(10 * time.Second), false},
		{"active never confirmed: waits", events.RoleActive, time.Time{}, started.Add(10 * time.Second), false},
		{"active never confirmed: trusted after the timeout", events.RoleActive, time.Time{}, started.Add(timeout), true},
	}
	for _, tt := range tests {
		if got := HoldSessions(tt.role, tt.confirmedAt, started, tt.now, timeout); got != tt.want {
			t.Errorf("%s: HoldSessions = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !HoldSessions(events.RoleActive, time.Time{}, started, started, 0) {
		t.Error("a zero timeout must hold the sessions at once")
	}
}
