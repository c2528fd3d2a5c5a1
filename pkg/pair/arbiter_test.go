package pair

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

func envAt(t *testing.T, site events.SiteID, at time.Time, ev events.Event) *events.Envelope {
	t.Helper()
	e, err := events.New(events.Source{Site: site, Node: "n", Service: "test"}, ev, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestFactsTheArbiterReads: the heartbeat's lines and the loss that
// completes them, the pair-wide switch, the both-standby moment and the
// leader, as the arbiter's verdict reads them.
func TestFactsTheArbiterReads(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	lost := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}
	}
	back := func(line string) events.Event {
		return events.RemoteReachable{Peer: "b", Line: line, Target: "x"}
	}
	s := New("a", "b", "", []string{"vip", "backup"})
	apply := func(site events.SiteID, at time.Time, ev events.Event) *events.Envelope {
		t.Helper()
		env := envAt(t, site, at, ev)
		s.Apply(env)
		return env
	}
	// Two heartbeat lines: one down is not a lost peer.
	apply("a", t0, lost("vip"))
	if s.PeerUnreachable() || s.Cause() != nil {
		t.Error("peer unreachable with one of two lines down")
	}
	// The peer's own heartbeat verdicts (sourced into our log) are not ours.
	apply("b", t0, lost("backup"))
	if s.PeerUnreachable() {
		t.Error("the peer's RemoteUnreachable counted as ours")
	}
	last := apply("a", t0.Add(time.Second), lost("backup"))
	if !s.PeerUnreachable() || s.Cause() == nil || s.Cause().ID != last.ID {
		t.Errorf("every line down: unreachable %v, cause %v, want the last loss %s", s.PeerUnreachable(), s.Cause(), last.ID)
	}
	apply("a", t0, back("vip"))
	if s.PeerUnreachable() || s.Cause() != nil {
		t.Error("peer unreachable after a line recovered")
	}

	// Automatic failover: off for an hour lapses by itself (read late by
	// the clock skew, as every promotion reads it).
	until := t0.Add(time.Hour)
	apply("a", t0, events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "r", By: "op"})
	if s.AutomaticOn(true, t0.Add(time.Minute), 0) || !s.AutomaticOn(true, until, 0) || s.AutomaticOn(true, until, ClockSkew) {
		t.Error("automatic failover disable with an end time")
	}
	// The setting is pair-wide (seed 000 runs it on the active site to
	// stop the standby's failover).
	apply("b", t0, events.AutomaticFailoverChanged{Enabled: true, Reason: "r", By: "op"})
	if !s.AutomaticOn(false, t0, 0) {
		t.Error("the peer's operator enabled automatic failover; this site ignored it")
	}
	apply("b", t0, events.AutomaticFailoverChanged{Enabled: false, Reason: "r", By: "op"})
	if s.AutomaticOn(true, t0, 0) {
		t.Error("the peer's operator disabled automatic failover; this site ignored it")
	}
	apply("c", t0, events.AutomaticFailoverChanged{Enabled: true, Reason: "r", By: "op"})
	if s.AutomaticOn(false, t0, 0) {
		t.Error("a third site's setting changed ours")
	}

	// Roles: a became active at epoch 1, b had been active at none; both
	// then stand down. The leader is a in whatever order the log has them.
	if !s.BothStandbySince.IsZero() {
		t.Error("both standby with the peer's role unknown")
	}
	apply("a", t0, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "r"})
	apply("b", t0.Add(time.Minute), events.RoleChanged{From: events.RoleActive, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if s.Leader() != "a" {
		t.Errorf("leader %q: a became active at the highest epoch", s.Leader())
	}
	apply("a", t0.Add(2*time.Minute), events.RoleChanged{From: events.RoleActive, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if s.Leader() != "a" {
		t.Errorf("leader %q after a left active: nobody became active since", s.Leader())
	}
	if got := s.BothStandbySince; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("both standby since %v, want the later change", got)
	}
	if !s.ConfirmedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("ConfirmedAt %v, want this site's last RoleChanged", s.ConfirmedAt)
	}
	apply("a", t0.Add(3*time.Minute), events.RoleConfirmed{Role: events.RoleStandby, Epoch: 1, Reason: "r"})
	if !s.ConfirmedAt.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("ConfirmedAt %v, want the RoleConfirmed", s.ConfirmedAt)
	}
}

// TestClaim: a claim is open from its request until it fails, its
// failover aborts or the site leaves active after it.
func TestClaim(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := New("a", "b", "", []string{"default"})
	apply := func(site events.SiteID, at time.Time, ev events.Event) {
		t.Helper()
		s.Apply(envAt(t, site, at, ev))
	}
	apply("b", t0, events.ArbitersClaimRequested{ClaimID: "f1"})
	if s.OpenClaim() != nil {
		t.Fatal("the peer's claim opened one of ours")
	}
	apply("a", t0, events.ArbitersClaimRequested{ClaimID: "f1"})
	if c := s.OpenClaim(); c == nil || c.ID != "f1" || c.Answered {
		t.Fatalf("open claim %+v, want f1 unanswered", c)
	}
	apply("a", t0.Add(time.Second), events.ArbitersClaimed{ClaimID: "f1", Outcome: events.ClaimClear, N: 3})
	if c := s.OpenClaim(); c == nil || !c.Answered {
		t.Fatalf("a clear claim holds the sessions until the saga ends: %+v", c)
	}
	apply("a", t0.Add(2*time.Second), events.FailoverAborted{FailoverID: "f1", Step: "claim", Reason: "x"})
	if s.OpenClaim() != nil {
		t.Error("the claim's failover aborted: the claim is over")
	}
	apply("a", t0.Add(3*time.Second), events.ArbitersClaimRequested{ClaimID: "f2"})
	s.NoteClaimAnswer("f2", events.ClaimFailed)
	if s.OpenClaim() != nil {
		t.Error("a failed claim lets go at once")
	}
	apply("a", t0.Add(4*time.Second), events.ArbitersClaimRequested{ClaimID: "f3"})
	apply("a", t0.Add(3*time.Second), events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if s.OpenClaim() == nil {
		t.Error("a RoleChanged recorded before the claim ended it")
	}
	apply("a", t0.Add(5*time.Second), events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Epoch: 1, Reason: "r"})
	if s.OpenClaim() != nil {
		t.Error("standby recorded after the claim: the claim is over")
	}
}

// TestLineDetail: each line's last announcement, as the heartbeat restores
// it after a restart.
func TestLineDetail(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := New("a", "b", "", []string{"vip", "wan"})
	s.Apply(envAt(t, "a", t0, events.RemoteUnreachable{Peer: "b", Line: "wan", Since: t0.Add(-3 * time.Second), Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}))
	s.Apply(envAt(t, "a", t0, events.PeerVIPMovedLocally{Peer: "b", Line: "vip", VIP: "10.0.0.1", AnsweringNodes: []string{"n1"}}))
	if l := s.Lines["wan"]; l.Up || !l.Since.Equal(t0.Add(-3*time.Second)) {
		t.Errorf("wan %+v, want down since its Since", l)
	}
	if l := s.Lines["vip"]; !l.Moved || !l.Up {
		t.Errorf("vip %+v, want moved and (never lost) up", l)
	}
	if !s.UnreachableSince.IsZero() && s.PeerUnreachable() {
		t.Error("a moved VIP is not a lost peer")
	}
	s.Apply(envAt(t, "a", t0, events.RemoteReachable{Peer: "b", Line: "vip", Target: "x"}))
	if l := s.Lines["vip"]; l.Moved || !l.Up {
		t.Errorf("vip %+v after RemoteReachable, want up, not moved", l)
	}
}

// TestPeerClock: the largest lead of the peer's stamps over this log's
// store times stands for ClockWindow, so one event delayed on the way does
// not hide a clock running ahead; this site's own events measure nothing.
func TestPeerClock(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := New("a", "b", "", []string{"default"})
	at := func(site events.SiteID, stamped, stored time.Time) {
		env := envAt(t, site, stamped, events.RemoteReachable{Peer: "a", Line: "default", Target: "x"})
		env.Stored = stored
		s.Apply(env)
	}
	at("a", t0.Add(time.Hour), t0)
	if s.ClockProblem(10*time.Second) != "" {
		t.Error("this site's own events measured the peer's clock")
	}
	at("b", t0.Add(30*time.Second), t0)
	if p := s.ClockProblem(10 * time.Second); !strings.Contains(p, "site b's clock runs at least 30s ahead of site a's") {
		t.Errorf("problem %q", p)
	}
	at("b", t0.Add(time.Minute), t0.Add(2*time.Minute)) // delayed on the way
	if s.ClockProblem(10*time.Second) == "" {
		t.Error("a delayed event hid the clock running ahead")
	}
	at("b", t0.Add(20*time.Minute), t0.Add(20*time.Minute)) // NTP fixed
	if p := s.ClockProblem(10 * time.Second); p != "" {
		t.Errorf("still reported past the window: %q", p)
	}
}
