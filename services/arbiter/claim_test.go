package arbiter_test

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// claimHarness is newHarness for site name (a or b), standby, with three
// arbiters; the peer's sessions are lines the test adds to their lists.
func claimHarness(t *testing.T, name, peer events.SiteID) *harness {
	t.Helper()
	h := newHarness(t, "standby", 3)
	if name != "a" {
		h.site = bustest.RunSite(t, name, bustest.SiteOptions{})
		h.heartbeat = h.site.Bus(t, "orchestrator", peer)
		h.cfg.Site.Name, h.cfg.Site.Peer, h.cfg.Site.Node = string(name), string(peer), string(name)+"-node"
	}
	return h
}

func (h *harness) sessionsHeld() int {
	n := 0
	for _, s := range h.servers {
		if len(s.Sessions()) > 0 {
			n++
		}
	}
	return n
}

const peerSession = "space    pts/3        2026-11-23 11:00 (127.0.0.2)"

func TestClaimClearHoldsSessionsUntilTheFailoverAborts(t *testing.T) {
	h := claimHarness(t, "a", "b")
	h.run()
	h.publish(events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Reason: "initial role from site.role"})
	h.publish(events.ArbitersClaimRequested{ClaimID: "f1", Reason: "standby.takeover"})
	ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f1" })
	if ev.Outcome != events.ClaimClear || ev.Held != 3 || ev.N != 3 || ev.Managed != 0 || ev.Looks != 1 {
		t.Fatalf("claim %+v, want clear with 3 of 3 held at the first look", ev)
	}
	if n := h.sessionsHeld(); n != 3 {
		t.Fatalf("%d arbiters hold a session of the clear claim, want 3", n)
	}
	h.publish(events.FailoverAborted{FailoverID: "f1", Step: "veto", Reason: "vetoed"})
	bustest.WaitFor(t, 10*time.Second, "the sessions let go after the abort", func() bool { return h.sessionsHeld() == 0 })
}

func TestClaimAgainstAnActivePeerFails(t *testing.T) {
	for _, site := range []struct{ name, peer events.SiteID }{{"a", "b"}, {"b", "a"}} {
		t.Run(string(site.name), func(t *testing.T) {
			h := claimHarness(t, site.name, site.peer)
			h.servers[0].SetExtra(peerSession)
			h.servers[1].SetExtra(peerSession)
			h.runOn(h.site.Bus(t, "arbiter", site.peer))
			start := time.Now()
			h.publish(events.ArbitersClaimRequested{ClaimID: "f2", Reason: "standby.takeover"})
			ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f2" })
			if ev.Outcome != events.ClaimConflict || ev.Managed != 2 || ev.Branch != "standby-active-manages" {
				t.Fatalf("claim %+v, want a conflict with 2 of 3 managed by the peer", ev)
			}
			// a wins ties, so it looks again until its time is out; b
			// lets go at the first look.
			if site.name == "a" && ev.Looks < 2 || site.name == "b" && ev.Looks != 1 {
				t.Errorf("site %s looked %d times", site.name, ev.Looks)
			}
			bustest.WaitFor(t, 10*time.Second, "the sessions let go after the conflict", func() bool { return h.sessionsHeld() == 0 })
			t.Logf("site %s: conflict after %d looks, %.2fs (answered %s after the request)", site.name, ev.Looks, ev.DurationSeconds, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClaimTieWinnerWaitsForThePeerToLetGo: both sites claimed at once;
// a, which wins ties, sees b's sessions, looks again, and claims once b
// has let go.
func TestClaimTieWinnerWaitsForThePeerToLetGo(t *testing.T) {
	h := claimHarness(t, "a", "b")
	h.cfg.Watchdog.FailureDetection.ProbeTimeout = config.Duration(time.Second)
	for _, s := range h.servers {
		s.SetExtra(peerSession)
	}
	h.run()
	h.publish(events.ArbitersClaimRequested{ClaimID: "f3", Reason: "standby.takeover"})
	time.Sleep(1500 * time.Millisecond)
	for _, s := range h.servers {
		s.SetExtra()
	}
	ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f3" })
	if ev.Outcome != events.ClaimClear || ev.Looks < 2 || ev.Held != 3 {
		t.Fatalf("claim %+v, want clear after more than one look", ev)
	}
	if n := h.sessionsHeld(); n != 3 {
		t.Errorf("%d arbiters hold a session of the clear claim, want 3", n)
	}
}

func TestClaimWithTooFewArbitersFails(t *testing.T) {
	h := claimHarness(t, "a", "b")
	h.servers[0].Close()
	h.servers[1].Close()
	h.run()
	h.publish(events.ArbitersClaimRequested{ClaimID: "f4", Reason: "restart"})
	ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f4" })
	if ev.Outcome != events.ClaimFailed || ev.Held != 1 || ev.Branch != "claim-too-few-sessions" {
		t.Fatalf("claim %+v, want failed with 1 of 3 held", ev)
	}
	bustest.WaitFor(t, 10*time.Second, "the sessions let go after the failure", func() bool { return h.sessionsHeld() == 0 })
}

// TestClaimWaitsForAFencingActive: the peer holds a minority of the
// arbiters, so the verdict lets this site take over; the claim waits one
// of the peer's rounds for it to stand down first, and proceeds after
// that round as seed 000 would even if the peer kept its session.
func TestClaimWaitsForAFencingActive(t *testing.T) {
	for _, tt := range []struct {
		name    string
		letsGo  bool
		minTime time.Duration
	}{
		{"the peer stands down", true, 0},
		{"the peer keeps its session", false, 400*time.Millisecond + 2*300*time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := claimHarness(t, "b", "a")
			h.servers[0].SetExtra(peerSession)
			h.runOn(h.site.Bus(t, "arbiter", "a"))
			h.publish(events.ArbitersClaimRequested{ClaimID: "f5", Reason: "standby.takeover"})
			if tt.letsGo {
				time.Sleep(300 * time.Millisecond)
				h.servers[0].SetExtra()
			}
			ev, _ := waitEvent(t, h.heartbeat, "ArbitersClaimed", func(e events.ArbitersClaimed) bool { return e.ClaimID == "f5" })
			if ev.Outcome != events.ClaimClear || ev.Looks < 2 {
				t.Fatalf("claim %+v, want clear after more than one look", ev)
			}
			if d := time.Duration(ev.DurationSeconds * float64(time.Second)); d < tt.minTime {
				t.Errorf("claimed after %s, before the peer's round (%s) was over", d, tt.minTime)
			}
			t.Logf("%s: clear after %d looks, %.2fs, %d managed at the last", tt.name, ev.Looks, ev.DurationSeconds, ev.Managed)
		})
	}
}
