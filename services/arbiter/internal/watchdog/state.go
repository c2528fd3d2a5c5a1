package watchdog

import (
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// State is what arbitration needs from the log, rebuilt by applying events
// in log order: whether the heartbeat has lost the peer, whether automatic
// failover is on, and the pair's role history for the both-standby grace.
type State struct {
	site, peer events.SiteID
	// lines are the configured heartbeat lines; every one must be down
	// before the peer counts as unreachable: one line down while another
	// still answers is not a lost peer. A line no longer configured is
	// never counted: its last RemoteUnreachable stays in the log with
	// nobody left to announce its return.
	lines map[string]bool

	linesDown map[string]*events.Envelope

	automatic      bool
	automaticUntil *time.Time

	roles      map[events.SiteID]roleAt
	lastActive events.SiteID
	// confirmedAt is when this site's orchestrator last settled its role:
	// its latest RoleConfirmed or RoleChanged.
	confirmedAt time.Time
	// claim is this site's open claim of the arbiters, nil when none.
	claim *Claim
}

// Claim is an open ArbitersClaimRequested of this site: the managing
// sessions are held from the request until the claim fails, its failover
// aborts or the site stands down.
type Claim struct {
	ID string
	// At is when it was (last) requested.
	At       time.Time
	Answered bool
}

type roleAt struct {
	role events.Role
	at   time.Time
}

// NewState starts from the configured defaults: peer reachable, automatic
// failover as configured, no role history. lines are the heartbeat lines
// the heartbeat probes (config.HeartbeatLineNames).
func NewState(site, peer events.SiteID, lines []string, automatic bool) *State {
	configured := make(map[string]bool, len(lines))
	for _, l := range lines {
		configured[l] = true
	}
	return &State{
		site: site, peer: peer,
		lines:     configured,
		linesDown: map[string]*events.Envelope{},
		automatic: automatic,
		roles:     map[events.SiteID]roleAt{},
	}
}

// Apply folds one event in. It returns true when the event should trigger
// a round at once (the heartbeat just lost the peer on a line).
func (s *State) Apply(env *events.Envelope) (bool, error) {
	ev, err := events.Decode(env)
	if err != nil {
		return false, err
	}
	switch ev := ev.(type) {
	case events.RemoteUnreachable:
		if env.Site != s.site || ev.Peer != s.peer || !s.lines[ev.Line] {
			return false, nil
		}
		s.linesDown[ev.Line] = env
		return true, nil
	case events.RemoteReachable:
		if env.Site == s.site && ev.Peer == s.peer {
			delete(s.linesDown, ev.Line)
		}
	case events.AutomaticFailoverChanged:
		if env.Site == s.site || env.Site == s.peer {
			s.automatic, s.automaticUntil = ev.Enabled, nil
			if !ev.Enabled && ev.Until != nil {
				u := *ev.Until
				s.automaticUntil = &u
			}
		}
	case events.ArbitersClaimRequested:
		if env.Site != s.site {
			return false, nil
		}
		if c := s.claim; c == nil || c.ID != ev.ClaimID || !c.Answered {
			s.claim = &Claim{ID: ev.ClaimID, At: env.Time}
			return true, nil
		}
	case events.ArbitersClaimed:
		if c := s.claim; env.Site == s.site && c != nil && c.ID == ev.ClaimID {
			c.Answered = true
			if ev.Outcome != events.ClaimClear {
				s.claim = nil
			}
		}
	case events.FailoverAborted:
		if c := s.claim; env.Site == s.site && c != nil && c.ID == ev.FailoverID {
			s.claim = nil
		}
	case events.RoleConfirmed:
		if env.Site == s.site {
			s.confirmedAt = env.Time
			return true, nil
		}
	case events.RoleChanged:
		if env.Site != s.site && env.Site != s.peer {
			return false, nil
		}
		if env.Site == s.site {
			s.confirmedAt = env.Time
			if c := s.claim; c != nil && ev.To != events.RoleActive && env.Time.After(c.At) {
				s.claim = nil
			}
		}
		s.roles[env.Site] = roleAt{ev.To, env.Time}
		// The site that held the active role last: it became active, or
		// it left the active role and nobody took it since.
		if ev.To == events.RoleActive || ev.From == events.RoleActive {
			s.lastActive = env.Site
		}
	}
	return false, nil
}

// PeerUnreachable reports whether every heartbeat line has lost the peer,
// and the RemoteUnreachable that completed the loss (the verdict's parent).
func (s *State) PeerUnreachable() (*events.Envelope, bool) {
	if len(s.lines) == 0 || len(s.linesDown) < len(s.lines) {
		return nil, false
	}
	var last *events.Envelope
	for _, env := range s.linesDown {
		if last == nil || env.Time.After(last.Time) {
			last = env
		}
	}
	return last, true
}

// Automatic reports whether automatic failover is on at now: a disable
// with an end time lapses by itself.
func (s *State) Automatic(now time.Time) bool {
	if s.automatic {
		return true
	}
	return s.automaticUntil != nil && !now.Before(*s.automaticUntil)
}

// BothStandby returns when the pair became standby on both sides, given
// this site's current role, or zero when it is not (or the peer's role is
// unknown).
func (s *State) BothStandby(own events.Role) time.Time {
	peer, ok := s.roles[s.peer]
	if own != events.RoleStandby || !ok || peer.role != events.RoleStandby {
		return time.Time{}
	}
	since := peer.at
	if mine, ok := s.roles[s.site]; ok && mine.at.After(since) {
		since = mine.at
	}
	return since
}

// OpenClaim returns this site's open claim, nil when none.
func (s *State) OpenClaim() *Claim {
	if s.claim == nil {
		return nil
	}
	c := *s.claim
	return &c
}

// answerClaim notes an answer given by this process before the event
// comes back from the log, so a failed claim lets go at once.
func (s *State) answerClaim(id, outcome string) {
	if c := s.claim; c != nil && c.ID == id {
		c.Answered = true
		if outcome != events.ClaimClear {
			s.claim = nil
		}
	}
}

// WasActiveLast reports whether this site held the active role last.
func (s *State) WasActiveLast() bool { return s.lastActive == s.site }

// ConfirmedAt is when this site's orchestrator last recorded its role
// (RoleChanged or RoleConfirmed), zero when never.
func (s *State) ConfirmedAt() time.Time { return s.confirmedAt }

// confirmGrace allows for the orchestrator of the same drwatch process
// recording its role a moment before the arbiter noted its own start.
const confirmGrace = time.Second

// HoldSessions decides whether the managing sessions may be held: only by
// an active site whose orchestrator has settled that role since this
// arbiter started. A site restarted active first waits to learn the
// peer's role and may stand down (orchestrator decide.Restart); sessions
// opened on the stale "active" of its log would tell the peer's arbiter
// that it manages the arbiters. If no confirmation comes within timeout
// (an arbiter restarted alone beside a running orchestrator, which
// records nothing new), the role is trusted as it stands.
func HoldSessions(role events.Role, confirmedAt, started, now time.Time, timeout time.Duration) bool {
	if role != events.RoleActive {
		return false
	}
	return !confirmedAt.Before(started.Add(-confirmGrace)) || !now.Before(started.Add(timeout))
}
