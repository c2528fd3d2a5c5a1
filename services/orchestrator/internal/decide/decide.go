// Package decide holds the orchestrator's one decision — must this site
// become active, become standby, or stay — as a pure function of the
// projected state, the policy and the time, so it can be table-tested and
// re-decided from a replayed log.
package decide

import (
	"fmt"
	"strconv"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// Policy is the configured failover policy.
type Policy struct {
	// Automatic is failover.automatic, before any AutomaticFailoverChanged.
	Automatic bool
	// FailbackAutomatic is failover.failback == automatic.
	FailbackAutomatic bool
	// Home: this site is the configured primary (site.role active), the
	// one a failback returns to.
	Home        bool
	BlockWindow time.Duration
	// MaxLagBytes (PostgreSQL) and MaxLagTransactions (MariaDB/MySQL) are
	// the in-sync limits, each in its database's unit.
	MaxLagBytes        int64
	MaxLagTransactions int64
	// LagMaxAge is how long a lag figure blocks (0: forever); see
	// pair.LagLimits.MaxAge.
	LagMaxAge   time.Duration
	ObserveOnly bool
	// RetryAfter is the least time between an aborted automatic takeover
	// and its retry (watchdog.heartbeat.interval): a claim wakes the
	// arbiter service, whose round brings a verdict at once, and a claim
	// that keeps failing must not become a loop of sagas.
	RetryAfter time.Duration
	// ClockSkew bounds how far the sites' clocks and the sourcing of one
	// site's log into the other's may disagree; rules comparing a time
	// recorded on one site with the other's clock allow for it.
	ClockSkew time.Duration
	// WaitDuration is watchdog.failureDetection.waitDuration, used when the
	// verdict carries no waitUntil of its own.
	WaitDuration time.Duration
	// RestartYield is how long a site that stood down on restart
	// (pair.StoodDownAt) leaves the peer to take over and show its
	// arbiter sessions before a verdict may promote it again: the peer,
	// cut off too, still believes this site active and managing nothing,
	// so both would take over on verdicts reached at the same moment.
	RestartYield time.Duration
	// RequestExpiry is how long a FailoverRequested holds (pair.Expired;
	// 0: forever): as long as its issuer waits for an answer.
	RequestExpiry time.Duration
}

// LagLimits are the in-sync limits of the policy.
func (p Policy) LagLimits() pair.LagLimits {
	return pair.LagLimits{MaxBytes: p.MaxLagBytes, MaxTransactions: p.MaxLagTransactions, MaxAge: p.LagMaxAge}
}

// Input is what a decision reads besides the state.
type Input struct {
	Policy Policy
}

// Decision is the outcome with the branch that produced it.
type Decision struct {
	// Action: beActive, beStandby or nothing.
	Action events.Action
	// Act: carry Action out now. False for nothing, for a blocked action
	// and in observe-only mode.
	Act    bool
	Branch string
	Reason string
	// Blocked: a guard stopped Action.
	Blocked     bool
	ObserveOnly bool
	Manual      bool
	Force       bool
	// RequestID is the request this decision answers.
	RequestID events.ID
	// Epoch is the epoch the new role carries.
	Epoch events.Epoch
}

// Record reports whether the decision deserves a FailoverDecided event:
// everything but a plain "nothing to do" and the saga's own start.
func (d Decision) Record() bool {
	return d.RequestID != "" || d.Blocked || d.ObserveOnly
}

func nothing(branch, reason string) Decision {
	return Decision{Action: events.ActionNothing, Branch: branch, Reason: reason}
}

// Decide returns what this site must do at now.
func Decide(s *pair.State, in Input, now time.Time) Decision {
	d := decide(s, in.Policy, now)
	switch d.Action {
	case events.ActionBeActive:
		d.Epoch = NextEpoch(s.MaxEpoch, s.Site, s.Peer)
	case events.ActionBeStandby:
		d.Epoch = max(s.Epoch, s.MaxEpoch)
	}
	if d.Act && in.Policy.ObserveOnly {
		d.Act, d.ObserveOnly = false, true
		d.Reason = "observe-only: would " + string(d.Action) + ": " + d.Reason
	}
	return d
}

// NextEpoch is the epoch a site takes when it becomes active, having seen
// epochs up to seen: the next above seen of its own parity. The site whose
// name sorts first takes the odd epochs, its peer the even ones, so two
// sites cut off from each other never take the same epoch, whatever each
// has seen: every activation is told apart by its epoch alone.
func NextEpoch(seen events.Epoch, site, peer events.SiteID) events.Epoch {
	var parity events.Epoch // even
	if site < peer {
		parity = 1
	}
	e := seen + 1
	if e%2 != parity {
		e++
	}
	return e
}

func decide(s *pair.State, p Policy, now time.Time) Decision {
	if s.SagaRunning() {
		return nothing("saga.running", "failover "+s.Saga.ID+" is in progress")
	}
	// Fencing by epoch comes first: two actives that can hear each other
	// must end at once, whatever else is configured.
	// A peer already standing down (its demotion under way) is leaving
	// the role: yielding to it would leave the pair with no active, and
	// this site, still serving, may hold the newer writes (the peer
	// restarted on a role its log kept from before a takeover here).
	if s.Role == events.RoleActive && s.PeerRole == events.RoleActive && !s.PeerDemoting() {
		if s.PeerEpoch > s.Epoch || (s.PeerEpoch == s.Epoch && s.Peer < s.Site) {
			return act(events.ActionBeStandby, "epoch.fence",
				fmt.Sprintf("peer %s is active at epoch %d, this site at %d", s.Peer, s.PeerEpoch, s.Epoch))
		}
	}
	if r := s.Pending; r != nil {
		return request(s, p, r, now)
	}
	switch s.Role {
	case events.RoleActive:
		return decideActive(s, p, now)
	case events.RoleStandby:
		return decideStandby(s, p, now)
	}
	return nothing("role."+string(s.Role), "a standalone site has no peer to fail over with")
}

// Branches the orchestrator acts on by name.
const (
	// BranchTakeover is a standby's promotion on a beActive verdict.
	BranchTakeover = "standby.takeover"
	// BranchResume is the liveness rule: both sites standby and in touch,
	// the site active at the highest epoch becomes active again.
	BranchResume = "standby.resume"
	// BranchRequestStale discards a request older than the pair's epoch.
	BranchRequestStale = "request.stale"
	// BranchRequestExpired discards a request its issuer no longer waits
	// for.
	BranchRequestExpired = "request.expired"
	// BranchRequestAlready answers a request for the role the site holds.
	BranchRequestAlready = "request.already"
)

func act(a events.Action, branch, reason string) Decision {
	return Decision{Action: a, Act: true, Branch: branch, Reason: reason}
}

func blocked(a events.Action, branch, reason string) Decision {
	return Decision{Action: a, Blocked: true, Branch: branch, Reason: reason}
}

// request answers a FailoverRequested aimed at this site: from an operator
// on either side (manual), or from the peer fencing this site.
func request(s *pair.State, p Policy, r *pair.Request, now time.Time) Decision {
	var d Decision
	switch {
	case s.Stale(r):
		// A fence sent during a cut must not demote the active that took
		// over after it; an operator's request must not act on a pair
		// that changed since it was typed.
		d = nothing(BranchRequestStale, fmt.Sprintf("request %s was issued at epoch %d; epoch %d has been opened since, so it is discarded", r.ID, r.Epoch, s.MaxEpoch))
	case s.Expired(r, now, p.RequestExpiry, p.ClockSkew) != "":
		d = nothing(BranchRequestExpired, fmt.Sprintf("request %s expired: %s; it is discarded, send it again if it still holds", r.ID, s.Expired(r, now, p.RequestExpiry, p.ClockSkew)))
	case r.ToRole == s.Role:
		d = nothing(BranchRequestAlready, "already "+string(s.Role))
	case r.ToRole == events.RoleStandby:
		branch := "request.fenced"
		if r.Manual {
			branch = "request.manual"
		}
		d = act(events.ActionBeStandby, branch, r.Reason)
	case s.PeerPromoting() && !r.Force:
		// The peer's own promotion (a resume, a takeover) is under way:
		// promoting beside it would make two primaries; its outcome
		// decides what is left to do.
		d = blocked(events.ActionBeActive, "guard.peer-promoting", "the peer's failover "+s.PeerSaga.ID+" to active is in progress; repeat once it has ended, or force it if the peer's process is gone mid-failover")
	default:
		if ok, o := s.InSync(p.LagLimits(), now); !ok && !r.Force {
			d = blocked(events.ActionBeActive, "guard.lag", o.String()+"; repeat with force to promote anyway")
			break
		}
		branch := "request.manual"
		if r.Force {
			branch = "request.manual.force"
		}
		d = act(events.ActionBeActive, branch, r.Reason)
	}
	d.RequestID, d.Manual, d.Force = r.ID, r.Manual, r.Force
	return d
}

// decideActive: an active site steps down when its own verdict says so
// (it lost its arbiters), when automatic failover allows it.
func decideActive(s *pair.State, p Policy, now time.Time) Decision {
	v := s.Verdict
	if v == nil || v.Action != events.ActionBeStandby {
		return nothing("active.stay", "no verdict asks this site to stand down")
	}
	if s.AutomaticOffForTheActive(p.Automatic, now, s.LastHeard(now), p.ClockSkew) {
		return blocked(events.ActionBeStandby, "guard.automatic-off",
			"arbitration says beStandby ("+v.Branch+") but automatic failover is off; staying active")
	}
	return act(events.ActionBeStandby, "active.arbiters-lost", "arbitration says beStandby ("+v.Branch+")")
}

func decideStandby(s *pair.State, p Policy, now time.Time) Decision {
	v := s.Verdict
	peerDown := s.PeerUnreachable()
	bothStandby := s.PeerRole == events.RoleStandby
	switch {
	case v != nil && v.Action == events.ActionBeActive && (peerDown || bothStandby):
	case !peerDown && bothStandby && (s.Leader() == s.Site || s.Leader() == "" && p.Home):
		// No leader: neither site's log holds an activation or a
		// promotion (both stores lost): the home site resumes.
		return resume(s, p, now)
	case !peerDown && s.PeerRole == events.RoleActive && p.Home && s.LastActive == s.Peer:
		return failback(s, p, now)
	case v != nil && v.Action == events.ActionWait:
		return nothing("standby.wait", "arbitration says wait ("+v.Branch+")")
	case !peerDown && !bothStandby:
		return nothing("standby.peer-reachable", "the peer answers")
	default:
		return nothing("standby.no-verdict", "no verdict says beActive")
	}
	// Both sites standby: during waitDuration only the leader (the site
	// whose databases hold the newest history, the one the liveness rule
	// resumes and the arbiter's both-standby grace favours) may take over.
	if leader := s.Leader(); bothStandby && leader != "" && leader != s.Site {
		until := s.BothStandbySince.Add(p.WaitDuration)
		if v.WaitUntil != nil {
			until = *v.WaitUntil
		}
		if now.Before(until) {
			return blocked(events.ActionBeActive, "guard.wait-window",
				fmt.Sprintf("both sites standby; %s leads (its databases hold the newest history) and has until %s to come back", leader, until.UTC().Format(time.RFC3339)))
		}
	}
	// A site that stood down on restart was active last, so the window
	// above lets it through; but the peer may be taking over on a verdict
	// of the same moment. Only a verdict counted after the peer had time
	// to show its sessions promotes it.
	if !s.StoodDownAt.IsZero() {
		if until := s.StoodDownAt.Add(p.RestartYield); v.At.Before(until) {
			return blocked(events.ActionBeActive, "guard.restart-yield",
				fmt.Sprintf("this site stood down on restart at %s; the peer may be taking over, so only a verdict reached after %s promotes it",
					s.StoodDownAt.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)))
		}
	}
	// A saga that aborted is not retried on the verdict that started it:
	// the next verdict (the arbiter's next round) or an operator retries.
	// One a restart interrupted is decided again at once.
	if g := s.Saga; g != nil && g.Aborted && !g.Interrupted && g.To == events.RoleActive &&
		(!v.At.After(g.AbortedAt) || now.Before(g.AbortedAt.Add(p.RetryAfter))) {
		return blocked(events.ActionBeActive, "guard.aborted",
			"failover "+g.ID+" aborted ("+g.AbortReason+"); waiting for a new verdict, at least "+p.RetryAfter.String()+" after the abort, or a manual failover")
	}
	if d, ok := guards(s, p, now); !ok {
		return d
	}
	reason := "peer unreachable and arbitration says beActive (" + v.Branch + ")"
	if !peerDown {
		reason = "both sites standby and arbitration says beActive (" + v.Branch + ")"
	}
	return act(events.ActionBeActive, BranchTakeover, reason)
}

// guards are what an automatic promotion must pass.
func guards(s *pair.State, p Policy, now time.Time) (Decision, bool) {
	if !s.AutomaticOn(p.Automatic, now, p.ClockSkew) {
		reason := "automatic failover is off; run a manual failover to take over"
		if s.AutomaticUntil != nil {
			reason = "automatic failover is off until " + s.AutomaticUntil.UTC().Format(time.RFC3339)
		}
		return blocked(events.ActionBeActive, "guard.automatic-off", reason), false
	}
	if s.Blocked(p.BlockWindow, now) {
		return blocked(events.ActionBeActive, "guard.block-window",
			fmt.Sprintf("a failover completed at %s; automatic failovers are blocked for %s unless an operator acknowledges it",
				s.LastFailoverAt.UTC().Format(time.RFC3339), p.BlockWindow)), false
	}
	if ok, o := s.InSync(p.LagLimits(), now); !ok {
		return blocked(events.ActionBeActive, "guard.lag", o.String()+"; only a forced manual failover promotes it"), false
	}
	return Decision{}, true
}

// resume is the pair's liveness rule: both sites are standby and hear
// each other, so no verdict will ever come (the heartbeat asks the arbiters
// only when it loses the peer), and without this rule nobody would be
// active. It happens after a switchover that aborted past the fence, a
// demotion asked by an operator, or a restart stand-down. The site whose
// databases hold the newest history (pair.Leader: the higher of the
// epochs at which each became active or promoted a database) becomes
// active again: both sites compute the same answer from the same facts,
// and the takeover claims the arbiters like any other. It waits RestartYield
// after the pair became both standby, or the peer was heard again, and for
// any saga of the peer to end: "standby" may be the stale copy of a peer
// taking over behind a cut, until the source brings its log across.
//
// The block window and the lag guard do not apply (this is no failover:
// the service returns where it was); automatic failover off does, since
// then nothing automatic acts.
func resume(s *pair.State, p Policy, now time.Time) Decision {
	if s.PeerSagaRunning() {
		return nothing("standby.resume-wait", "both sites standby; the peer's failover "+s.PeerSaga.ID+" is in progress")
	}
	since := later(later(s.BothStandbySince, s.ReachableAt), s.StoodDownAt)
	if until := since.Add(p.RestartYield); now.Before(until) {
		return nothing("standby.resume-wait",
			"both sites standby and the peer answers; this site was active last and becomes active again at "+until.UTC().Format(time.RFC3339)+" unless the peer's log shows a takeover first")
	}
	if !s.AutomaticOn(p.Automatic, now, p.ClockSkew) {
		return blocked(events.ActionBeActive, "guard.automatic-off",
			"both sites standby and this site was active last, but automatic failover is off: run a manual failover to make a site active")
	}
	if g := s.Saga; g != nil && g.Aborted && !g.Interrupted && g.To == events.RoleActive && now.Sub(g.AbortedAt) < p.RestartYield {
		return blocked(events.ActionBeActive, "guard.aborted",
			"failover "+g.ID+" aborted ("+g.AbortReason+"); the liveness rule retries at "+g.AbortedAt.Add(p.RestartYield).UTC().Format(time.RFC3339))
	}
	reason := "both sites standby and the peer answers; this site was active last (epoch " + strconv.FormatUint(uint64(s.ActiveEpoch), 10) + ")"
	if !s.StoodDownAt.IsZero() {
		reason += " and stood down only because it restarted without its peer"
	}
	return act(events.ActionBeActive, BranchResume, reason)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// failback: the home site is standby while the peer, active after a
// failover, is healthy. Manual by default (seeds 001, 002).
func failback(s *pair.State, p Policy, now time.Time) Decision {
	if !p.FailbackAutomatic {
		return nothing("failback.manual", "failover.failback is manual; an operator moves the service back")
	}
	if d, ok := guards(s, p, now); !ok {
		return d
	}
	return act(events.ActionBeActive, "failback.automatic", "failover.failback is automatic and "+string(s.Peer)+" is healthy")
}
