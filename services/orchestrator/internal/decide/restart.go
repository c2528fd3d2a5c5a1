package decide

import (
	"fmt"

	"github.com/drwatch/drwatch/pkg/events"
)

// PeerKnowledge is what a site restarted active has learned of its peer
// since the restart.
type PeerKnowledge int

const (
	// PeerPending: nothing yet; the startup hold goes on.
	PeerPending PeerKnowledge = iota
	// PeerLearned: the peer's latest role is in this site's log, or the
	// peer has recorded no role at all.
	PeerLearned
	// PeerUnreachable: every heartbeat line has lost the peer.
	PeerUnreachable
	// PeerUnknown: the startup hold elapsed with the peer neither heard
	// of nor declared unreachable.
	PeerUnknown
)

func (k PeerKnowledge) String() string {
	switch k {
	case PeerPending:
		return "pending"
	case PeerLearned:
		return "learned"
	case PeerUnreachable:
		return "unreachable"
	case PeerUnknown:
		return "unknown"
	}
	return fmt.Sprintf("PeerKnowledge(%d)", int(k))
}

// RestartInput is what ends the startup hold of a site whose log said
// active when its process started.
type RestartInput struct {
	Site, Peer events.SiteID
	// Role and Epoch are this site's, as its projection has them now.
	Role        events.Role
	Epoch       events.Epoch
	SagaRunning bool
	// PeerPromoting: a promotion of the peer is in this site's log,
	// started and not ended.
	PeerPromoting bool
	// PeerPromotingStuck: this site has watched that promotion run for
	// longer than RestartYield (which bounds a takeover): its process
	// likely died mid-failover.
	PeerPromotingStuck bool
	Knowledge          PeerKnowledge
	// PeerRole and PeerEpoch are the peer's last role in this site's log
	// (empty when it has none).
	PeerRole  events.Role
	PeerEpoch events.Epoch
	// Automatic: automatic failover is on now (config or
	// AutomaticFailoverChanged).
	Automatic bool
}

// RestartAction is how the startup hold ends.
type RestartAction string

const (
	// RestartHold: keep the VIP and services back; decide again later.
	RestartHold RestartAction = "hold"
	// RestartResume: lift the hold; the site carries on in the role its
	// projection has (active: the VIP and services come back).
	RestartResume RestartAction = "resume"
	// RestartStandDown: record RoleChanged active→standby
	// (state.RestartStandDownReason), then lift the hold; the VIP and
	// services are never taken back.
	RestartStandDown RestartAction = "standDown"
)

// RestartDecision is the outcome and why.
type RestartDecision struct {
	Action RestartAction
	Reason string
	// Warn: the outcome rests on this site's own authority, not on
	// anything learned of the peer.
	Warn bool
}

// Restart decides how the startup hold of a site restarted active ends.
//
// The dangerous case is a peer that cannot be heard: it may have taken
// over while this site's process was down (this site's arbiter sessions
// died with it, so arbitration let the peer through), and resuming active
// would make two actives for as long as the cut lasts. Such a site stands
// down and lets arbitration decide: a peer that took over holds the
// arbiter sessions and the standby-side rule keeps this site standby; a
// dead or standby peer holds none and this site takes over again at a new
// epoch. Without automatic failover nobody would promote it back, so it
// resumes active, as an operator configured it to.
func Restart(in RestartInput) RestartDecision {
	switch {
	case in.SagaRunning:
		// Its end settles the role (the epoch fence's demotion, or a
		// promotion resumed from before the crash); confirming the role
		// the log has now would announce an active about to stand down.
		return RestartDecision{Action: RestartHold, Reason: "a failover is in progress; waiting for it to end"}
	case in.Role != events.RoleActive:
		return RestartDecision{Action: RestartResume, Reason: "role now " + string(in.Role)}
	case in.PeerPromoting && in.Knowledge != PeerUnreachable && in.PeerPromotingStuck:
		return RestartDecision{Action: RestartResume, Warn: true,
			Reason: "the peer's promotion has run longer than a takeover may (its process died mid-failover?); resuming on this site's own authority"}
	case in.PeerPromoting && in.Knowledge != PeerUnreachable:
		// The peer took over while this site was down and is promoting
		// now: its latest RoleChanged still says standby, but resuming
		// would make two primaries. Its outcome (active at a higher epoch,
		// or aborted) decides. A promotion that outlasts any takeover
		// resumes this site claim-gated (above), so a peer that died
		// mid-failover cannot hold it forever.
		return RestartDecision{Action: RestartHold, Reason: "the peer's promotion is in progress; waiting for its outcome"}
	case in.PeerRole == events.RoleActive && (in.PeerEpoch > in.Epoch || (in.PeerEpoch == in.Epoch && in.Peer < in.Site)):
		// The decision loop's epoch fence stands this site down; the
		// hold lasts until it has.
		return RestartDecision{Action: RestartHold, Reason: fmt.Sprintf("the peer is active at epoch %d, this site at %d: waiting for the epoch fence", in.PeerEpoch, in.Epoch)}
	}
	switch in.Knowledge {
	case PeerLearned:
		return RestartDecision{Action: RestartResume, Reason: peerRoleText(in)}
	case PeerUnreachable:
		if !in.Automatic {
			return RestartDecision{Action: RestartResume, Warn: true,
				Reason: "the peer is unreachable but automatic failover is off: standing down would leave nobody to promote this site back, so it resumes active"}
		}
		return RestartDecision{Action: RestartStandDown, Reason: "the peer is unreachable and may have taken over while this site was down (" + peerRoleText(in) + ")"}
	case PeerUnknown:
		return RestartDecision{Action: RestartResume, Warn: true, Reason: "startup hold elapsed: the peer's latest role is still unknown; resuming on this site's own authority"}
	}
	return RestartDecision{Action: RestartHold, Reason: "waiting for the peer's latest role"}
}

func peerRoleText(in RestartInput) string {
	if in.PeerRole == "" {
		return "the peer has no role in this log"
	}
	return fmt.Sprintf("the peer is %s at epoch %d", in.PeerRole, in.PeerEpoch)
}
