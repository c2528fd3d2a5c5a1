// Package verdict is the device arbitration algorithm of seed 000 as pure
// functions: counts and thresholds in, an action and the rule that chose it
// out. Nothing here does I/O or reads a clock, so every verdict can be
// table-tested and re-decided from the log.
package verdict

import (
	"fmt"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Branch names, one per row of the decision table in the README. They are
// part of the ArbitrationDecided event, so operators and the orchestrator
// may match on them: never rename one.
const (
	BranchNoArbiters       = "no-arbiters"
	BranchActiveQuorum     = "active-quorum"
	BranchActiveFence      = "active-fence"
	BranchActiveAutoOff    = "active-automatic-off"
	BranchStandbyManaged   = "standby-active-manages"
	BranchStandbyIsolated  = "standby-isolated"
	BranchStandbyFailover  = "standby-failover"
	BranchStandbyAutoOff   = "standby-automatic-off"
	BranchStandbyAdjusted  = "standby-adjusted-managed"
	BranchBothStandbyGrace = "both-standby-grace"
	BranchNotArbitrating   = "not-arbitrating"
)

// Thresholds are failureDetection.threshold.
type Thresholds struct {
	Failover      float64
	AdjustManaged float64
	Warning       float64
}

// Input is everything one verdict depends on.
type Input struct {
	Role events.Role
	// N is the number of configured arbiters.
	N int
	// Reachable: active side, arbiters that answered a ping; reported,
	// not decided on.
	Reachable int
	// Managed: arbiters whose session list (sessionCommand) names the
	// active site's managing session by an address the standby matches.
	// Both sides decide on this one fact: the standby reads the lists over
	// its own logins, the active over its managing sessions, each counting
	// only lists that name the active site by its addresses.
	Managed int
	// Unreachable: standby side, arbiters this site could not log in to.
	Unreachable int
	Thresholds  Thresholds
	Automatic   bool

	// BothStandbySince is when the pair became standby on both sides; zero
	// when it is not.
	BothStandbySince time.Time
	// WasActiveLast: this site is the one that held the active role last.
	WasActiveLast bool
	WaitDuration  time.Duration
	Now           time.Time
}

// Verdict is the decision and the numbers behind it.
type Verdict struct {
	Action           events.Action
	Branch           string
	Description      string
	ReachableShare   float64
	ManagedShare     float64
	UnreachableShare float64
	// WaitUntil is set when the action is wait.
	WaitUntil *time.Time
}

// Decide applies the decision table to in.
func Decide(in Input) Verdict {
	if in.N <= 0 {
		return Verdict{
			Action: events.ActionNothing,
			Branch: BranchNoArbiters,
			Description: "no arbiter is configured (watchdog.failureDetection.arbiters): this site cannot arbitrate, " +
				"so there is no automatic failover; use manualFailover or configure arbiters",
		}
	}
	switch in.Role {
	case events.RoleActive:
		return decideActive(in)
	case events.RoleStandby:
		return decideStandby(in)
	}
	return Verdict{
		Action:      events.ActionNothing,
		Branch:      BranchNotArbitrating,
		Description: fmt.Sprintf("role %q does not arbitrate", in.Role),
	}
}

// decideActive judges the fact the standby judges: the arbiters that list
// this site's managing session. One that answers a ping but does not list
// it is, to the standby, not managed by this site.
func decideActive(in Input) Verdict {
	n := float64(in.N)
	v := Verdict{ReachableShare: float64(in.Reachable) / n, ManagedShare: float64(in.Managed) / n}
	m := v.ManagedShare
	t := in.Thresholds.Failover
	switch {
	case m >= t:
		v.Action, v.Branch = events.ActionNothing, BranchActiveQuorum
		v.Description = fmt.Sprintf("%d of %d arbiters list this site's managing session (%s >= failover %s): this site manages most arbiters and stays active",
			in.Managed, in.N, pct(m), pct(t))
	case in.Automatic:
		v.Action, v.Branch = events.ActionBeStandby, BranchActiveFence
		v.Description = fmt.Sprintf("only %d of %d arbiters list this site's managing session (%s < failover %s; %d answer a ping): "+
			"the standby sees as much and may take over, so this site becomes standby",
			in.Managed, in.N, pct(m), pct(t), in.Reachable)
	default:
		v.Action, v.Branch = events.ActionNothing, BranchActiveAutoOff
		v.Description = fmt.Sprintf("only %d of %d arbiters list this site's managing session (%s < failover %s; %d answer a ping) but automatic failover is off: "+
			"this site stays active; automatic failover is disabled by connectivity problems",
			in.Managed, in.N, pct(m), pct(t), in.Reachable)
	}
	return v
}

func decideStandby(in Input) Verdict {
	n := float64(in.N)
	m := float64(in.Managed) / n
	u := float64(in.Unreachable) / n
	// r and m+u are computed from counts in one division each, so that
	// exactly-at-threshold cases (2 of 4) are not lost to rounding.
	r := float64(in.N-in.Unreachable) / n
	mu := float64(in.Managed+in.Unreachable) / n
	v := Verdict{ReachableShare: r, ManagedShare: m, UnreachableShare: u}
	t := in.Thresholds
	switch {
	case m >= t.Failover:
		v.Action, v.Branch = events.ActionNothing, BranchStandbyManaged
		v.Description = fmt.Sprintf("the active site manages %d of %d arbiters (%s >= failover %s): no failover",
			in.Managed, in.N, pct(m), pct(t.Failover))
		return v
	case r < t.AdjustManaged:
		v.Action, v.Branch = events.ActionNothing, BranchStandbyIsolated
		v.Description = fmt.Sprintf("this site reaches only %d of %d arbiters (%s < adjustManaged %s): it may be the isolated one and stays standby",
			in.N-in.Unreachable, in.N, pct(r), pct(t.AdjustManaged))
		return v
	case mu >= t.Failover:
		v.Action, v.Branch = events.ActionNothing, BranchStandbyAdjusted
		v.Description = fmt.Sprintf("the active site manages %d and %d are unreachable (counted as managed): %s >= failover %s, no failover",
			in.Managed, in.Unreachable, pct(mu), pct(t.Failover))
		return v
	case !in.Automatic:
		v.Action, v.Branch = events.ActionNothing, BranchStandbyAutoOff
		v.Description = fmt.Sprintf("the active site manages %d and %d are unreachable (%s < failover %s): failover needed, "+
			"but automatic failover is off; run manualFailover on this site", in.Managed, in.Unreachable, pct(mu), pct(t.Failover))
		return v
	}
	if !in.BothStandbySince.IsZero() && !in.WasActiveLast {
		until := in.BothStandbySince.Add(in.WaitDuration)
		if in.Now.Before(until) {
			v.Action, v.Branch = events.ActionWait, BranchBothStandbyGrace
			v.WaitUntil = &until
			v.Description = fmt.Sprintf("failover needed (%s < failover %s), but both sites are standby since %s and "+
				"only the site that was active last may become active until %s",
				pct(mu), pct(t.Failover), in.BothStandbySince.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
			return v
		}
	}
	v.Action, v.Branch = events.ActionBeActive, BranchStandbyFailover
	v.Description = fmt.Sprintf("the active site manages %d and %d are unreachable (%s < failover %s): this site becomes active",
		in.Managed, in.Unreachable, pct(mu), pct(t.Failover))
	return v
}

// QuorumLow reports whether reachable of n arbiters is below the warning
// share (seed 000 arbiterMonitor). No arbiter configured is not a warning:
// Decide reports it.
func QuorumLow(n, reachable int, warning float64) (share float64, low bool) {
	if n <= 0 {
		return 0, false
	}
	share = float64(reachable) / float64(n)
	return share, share < warning
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
