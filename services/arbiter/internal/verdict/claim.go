package verdict

import (
	"fmt"

	"github.com/drwatch/drwatch/pkg/events"
)

// ClaimInput is one look at the arbiters while this site claims them: its
// own sessions are up, and the standby-side counts are taken again.
type ClaimInput struct {
	N int
	// Held is how many arbiters list a session of this site by an
	// address the peer matches: sessions the peer cannot see do not count.
	Held        int
	Managed     int
	Unreachable int
	Thresholds  Thresholds
	// WinsTie: this site keeps its claim when both sites claim at once
	// (its name sorts first).
	WinsTie bool
	// LastLook: no time is left to look again.
	LastLook bool
	// PeerHadItsRound: the peer, if alive and holding some sessions, has
	// had one arbitration round (a heartbeat interval and its probes)
	// since the claim began to see it lost its arbiters and stand down.
	PeerHadItsRound bool
}

// Claim is the outcome of one look. Done false: look again.
type Claim struct {
	Outcome     string
	Done        bool
	Branch      string
	Description string
}

// JudgeClaim decides a claim from one look.
//
// Two sites that each claim hold their sessions before they look, so the
// later look sees the earlier claim. A claim needs sessions on at least
// the failover share of the arbiters: the peer then counts each of them as
// managed or unreachable, reaches at least the failover share, and stays
// standby. When both looks see the other's sessions, the site that wins the
// tie looks again until the peer has let go, and the other lets go. A peer
// that holds sessions on fewer than the failover share is an active about
// to fence itself: the claim waits one of the peer's rounds for it to let
// go, and proceeds after that as seed 000 would.
func JudgeClaim(in ClaimInput) Claim {
	if in.N <= 0 {
		return Claim{Outcome: events.ClaimFailed, Done: true, Branch: BranchNoArbiters, Description: "no arbiter is configured: nothing to claim"}
	}
	t := in.Thresholds
	if held := float64(in.Held) / float64(in.N); held < t.Failover {
		return Claim{Outcome: events.ClaimFailed, Done: true, Branch: "claim-too-few-sessions",
			Description: fmt.Sprintf("%d of %d arbiters list this site's session (%s < failover %s): the peer could miss the claim",
				in.Held, in.N, pct(held), pct(t.Failover))}
	}
	// The look is a standby verdict on fresh counts; the policy (automatic
	// failover, the both-standby grace) was applied before the claim.
	v := Decide(Input{Role: events.RoleStandby, N: in.N, Managed: in.Managed, Unreachable: in.Unreachable,
		Reachable: in.N - in.Unreachable, Thresholds: t, Automatic: true})
	if v.Action == events.ActionBeActive && in.Managed > 0 && !in.PeerHadItsRound && !in.LastLook {
		// An active that lost most of its arbiters fences itself on its
		// own next round; until then it still serves. Taking over
		// beside it would make two actives for that moment.
		return Claim{Outcome: events.ClaimConflict, Branch: v.Branch,
			Description: fmt.Sprintf("the peer still holds %d session(s); waiting one of its arbitration rounds for it to stand down: %s", in.Managed, v.Description)}
	}
	if v.Action == events.ActionBeActive {
		return Claim{Outcome: events.ClaimClear, Done: true, Branch: v.Branch,
			Description: fmt.Sprintf("this site holds %d of %d arbiters and the peer manages %d: %s", in.Held, in.N, in.Managed, v.Description)}
	}
	if in.WinsTie && !in.LastLook && in.Managed > 0 {
		return Claim{Outcome: events.ClaimConflict, Branch: v.Branch,
			Description: "the peer holds sessions too; this site wins a tie and looks again: " + v.Description}
	}
	if in.Unreachable > 0 && !in.LastLook {
		// An SSH login that timed out under load says little: look
		// again while the claim has time, rather than fail a takeover
		// the next look would clear.
		return Claim{Outcome: events.ClaimConflict, Branch: v.Branch,
			Description: fmt.Sprintf("%d arbiter(s) did not answer over SSH; looking again: %s", in.Unreachable, v.Description)}
	}
	return Claim{Outcome: events.ClaimConflict, Done: true, Branch: v.Branch, Description: v.Description}
}
