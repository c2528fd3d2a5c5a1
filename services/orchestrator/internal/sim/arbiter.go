package sim

import (
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// arbiter is one arbiter host as the sites' sshd sessions leave it: per
// site, whether a managing session is open and when sshd last heard it.
type arbiter struct {
	open [2]bool
	last [2]time.Duration
}

// Thresholds of the seed (failureDetection.threshold).
const (
	thFailover      = 0.5
	thAdjustManaged = 0.5
)

// listed reports whether arbiter a's session list (who) names site i:
// a session is open and sshd has heard it within its keepalive window
// (ClientAliveInterval × ClientAliveCountMax), so a session of a site
// that went silent is listed until the window passes.
func (w *world) listed(a, i int) bool {
	ar := w.arbs[a]
	return ar.open[i] && w.now-ar.last[i] < w.tm.SessionTimeout
}

// holding: the arbiter service holds its managing sessions — a
// confirmed active (watchdog.HoldSessions), or a claim in progress or
// clear.
func (s *site) holding() bool {
	return s.running() && ((s.st.Role == events.RoleActive && s.confirmed && !s.held) || s.claimHold)
}

// syncSessions dials the sessions a holding site lacks and closes those
// a site no longer holds; a close reaches only an arbiter that hears it.
func (s *site) syncSessions() {
	h := s.holding()
	for a := range nArbiters {
		ar := s.w.arbs[a]
		if !s.w.reach(s.idx, 2+a) {
			continue
		}
		switch {
		case h:
			ar.open[s.idx], ar.last[s.idx] = true, s.w.now
		case ar.open[s.idx]:
			ar.open[s.idx] = false
		}
	}
}

func (s *site) closeSessions() {
	for a := range nArbiters {
		if s.w.reach(s.idx, 2+a) {
			s.w.arbs[a].open[s.idx] = false
		}
	}
}

// keepalive is the sessions' keepalive, every probeTimeout.
func (s *site) keepalive() {
	s.syncSessions()
	s.after(s.w.tm.ProbeTimeout, s.keepalive)
}

// counts are one look at the arbiters from site s: its own sessions
// listed where it can see them, the peer's listed, those it cannot reach.
func (s *site) counts() (held, managed, unreachable int) {
	for a := range nArbiters {
		if !s.w.reach(s.idx, 2+a) {
			unreachable++
			continue
		}
		if s.w.listed(a, s.idx) {
			held++
		}
		if s.w.listed(a, 1-s.idx) {
			managed++
		}
	}
	return held, managed, unreachable
}

// verdict models seed 000's decision table (services/arbiter/internal/
// verdict.Decide), which this package cannot import; it is to be replaced
// by the real function when the rules move to a package both can reach.
func verdict(role events.Role, managed, unreachable int, automatic bool, grace bool) (events.Action, string) {
	n := float64(nArbiters)
	m := float64(managed) / n
	if role == events.RoleActive {
		switch {
		case m >= thFailover:
			return events.ActionNothing, "active-quorum"
		case automatic:
			return events.ActionBeStandby, "active-fence"
		}
		return events.ActionNothing, "active-automatic-off"
	}
	r := float64(nArbiters-unreachable) / n
	mu := float64(managed+unreachable) / n
	switch {
	case m >= thFailover:
		return events.ActionNothing, "standby-active-manages"
	case r < thAdjustManaged:
		return events.ActionNothing, "standby-isolated"
	case mu >= thFailover:
		return events.ActionNothing, "standby-adjusted-managed"
	case !automatic:
		return events.ActionNothing, "standby-automatic-off"
	case grace:
		return events.ActionWait, "both-standby-grace"
	}
	return events.ActionBeActive, "standby-failover"
}

func (s *site) arbiterTick() {
	s.after(s.w.tm.Interval, s.arbiterTick)
	s.arbiterRound()
}

// arbiterRound arbitrates while the heartbeat has lost the peer: at once
// on RemoteUnreachable, then every interval. A round pings and lists for
// up to a probeTimeout before it decides.
func (s *site) arbiterRound() {
	if !s.st.PeerUnreachable() {
		return
	}
	s.after(s.w.tm.ProbeTimeout, func() {
		st := s.st
		if !st.PeerUnreachable() {
			return
		}
		held, managed, unreachable := s.counts()
		auto := st.AutomaticOn(s.policy.Automatic, s.clock(), s.policy.ClockSkew)
		role := st.Role
		if role == events.RoleActive && !(s.confirmed && !s.held) {
			held = 0 // an unconfirmed active holds no sessions
		}
		var action events.Action
		var branch string
		var waitUntil *time.Time
		if role == events.RoleActive {
			action, branch = verdict(role, held, 0, auto, false)
			managed = held
		} else {
			grace := false
			if leader := st.Leader(); !st.BothStandbySince.IsZero() && leader != "" && leader != s.id {
				until := st.BothStandbySince.Add(s.policy.WaitDuration)
				if s.clock().Before(until) {
					grace, waitUntil = true, &until
				}
			}
			action, branch = verdict(role, managed, unreachable, auto, grace)
		}
		s.publish(&events.ArbitrationDecided{Role: role, Method: "arbiters", Action: action, Branch: branch,
			N: nArbiters, Reachable: nArbiters - unreachable, Managed: managed, Unreachable: unreachable,
			Thresholds:        events.Thresholds{Failover: thFailover, AdjustManaged: thAdjustManaged, Warning: 0.7},
			AutomaticFailover: auto, WaitUntil: waitUntil})
	})
}

// claim models the arbiter service's claim (verdict.JudgeClaim): hold
// the sessions, look after the first dials, look again every
// probeTimeout/4 while the peer still shows sessions, up to interval +
// 4 × probeTimeout.
func (s *site) claim(id string) {
	s.claimHold = true
	s.syncSessions()
	tm := s.w.tm
	start := s.w.now
	deadline := start + tm.Interval + 4*tm.ProbeTimeout
	every := max(tm.ProbeTimeout/4, 100*time.Millisecond)
	var look func(n int)
	look = func(n int) {
		held, managed, unreachable := s.counts()
		last := s.w.now >= deadline
		peerRound := s.w.now-start >= tm.Interval+2*tm.ProbeTimeout
		outcome, done := events.ClaimConflict, true
		action, branch := verdict(events.RoleStandby, managed, unreachable, true, false)
		switch {
		case float64(held)/nArbiters < thFailover:
			outcome, branch = events.ClaimFailed, "claim-too-few-sessions"
		case action == events.ActionBeActive && managed > 0 && !peerRound && !last:
			done = false
		case action == events.ActionBeActive:
			outcome = events.ClaimClear
		case s.id < s.peer && !last && managed > 0:
			done = false
		}
		if !done {
			s.after(every, func() { look(n + 1) })
			return
		}
		if outcome != events.ClaimClear {
			s.claimHold = false
		}
		s.publish(&events.ArbitersClaimed{ClaimID: id, Outcome: outcome, N: nArbiters, Held: held, Managed: managed,
			Unreachable: unreachable, Looks: n, Branch: branch, DurationSeconds: (s.w.now - start).Seconds()})
	}
	s.after(time.Second, func() { look(1) })
}

// heartbeatRound is one round of the line machine
// (services/heartbeat/internal/line): the peer's VIP tried retries + 1
// times a timeout apart; a round that got no answer declares the peer
// unreachable since the round's start, the first answer after that
// reachable again. Only transitions are published.
func (s *site) heartbeatRound() {
	tm := s.w.tm
	start, since := s.w.now, s.clock()
	s.after(tm.Interval, s.heartbeatRound)
	var attempt func(k int)
	attempt = func(k int) {
		if s.w.reach(s.idx, 1-s.idx) {
			s.hbLastReply = s.clock()
			if s.hbDown {
				s.hbDown = false
				s.publish(&events.RemoteReachable{Peer: s.peer, Line: line, Target: "peer-vip",
					DownForSeconds: max(s.clock().Sub(s.hbDownSince).Seconds(), 0)})
			}
			return
		}
		if k < tm.Retries {
			s.after(tm.Timeout, func() { attempt(k + 1) })
			return
		}
		s.after(tm.Timeout, func() {
			if s.hbDown {
				return
			}
			s.hbDown, s.hbDownSince = true, since
			s.publish(&events.RemoteUnreachable{Peer: s.peer, Line: line, Since: since, LastReply: s.hbLastReply,
				DownForSeconds: (s.w.now - start).Seconds(),
				Failed:         []events.ProbeResult{{Target: "peer-vip", Kind: "icmp", Attempts: tm.Retries + 1, Error: "timeout"}}})
		})
	}
	attempt(0)
}
