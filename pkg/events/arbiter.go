package events

import (
	"encoding/json"
	"time"
)

// Action is what a failure-detection verdict asks of the site; the values
// are those of seed 000's custom-script contract.
type Action string

// The actions of seed 000's failure-detection contract.
const (
	ActionBeActive  Action = "beActive"
	ActionBeStandby Action = "beStandby"
	ActionNothing   Action = "nothing"
	ActionWait      Action = "wait"
)

// Thresholds are the shares of seed 000's failureDetection.threshold.
type Thresholds struct {
	Failover      float64 `json:"failover" validate:"gte=0,lte=1"`
	AdjustManaged float64 `json:"adjustManaged" validate:"gte=0,lte=1"`
	Warning       float64 `json:"warning" validate:"gte=0,lte=1"`
}

// ArbiterResult is one arbiter's outcome in an arbitration round.
type ArbiterResult struct {
	Host      string `json:"host" validate:"required,max=256"`
	Reachable bool   `json:"reachable"`
	// ManagedByActive: the arbiter's session list names the active site's
	// managing session by an address the standby matches, as the standby
	// read it over its own login or the active over that session.
	ManagedByActive bool   `json:"managedByActive"`
	Error           string `json:"error,omitempty" validate:"max=1024"`
}

// ArbitrationDecided is one failure-detection verdict with every number
// behind it, so an operator can see why.
type ArbitrationDecided struct {
	Role   Role   `json:"role" validate:"oneof=active standby standalone"`
	Method string `json:"method" validate:"oneof=arbiters script"`
	Action Action `json:"action" validate:"oneof=beActive beStandby nothing wait"`
	// Branch names the rule of the decision table that was taken.
	Branch      string `json:"branch" validate:"required,max=128"`
	Description string `json:"description" validate:"max=2048"`

	N           int        `json:"n" validate:"gte=0"`
	Reachable   int        `json:"reachable" validate:"gte=0"`
	Managed     int        `json:"managed" validate:"gte=0"`
	Unreachable int        `json:"unreachable" validate:"gte=0"`
	Thresholds  Thresholds `json:"thresholds"`
	// Shares as computed: r = reachable/N, m = managed/N, u = unreachable/N.
	// Both roles decide on m; the active reports r (pings) beside it.
	ReachableShare   float64 `json:"reachableShare"`
	ManagedShare     float64 `json:"managedShare"`
	UnreachableShare float64 `json:"unreachableShare"`

	AutomaticFailover bool            `json:"automaticFailover"`
	WaitUntil         *time.Time      `json:"waitUntil,omitempty"`
	Arbiters          []ArbiterResult `json:"arbiters,omitempty" validate:"dive"`
	// Details is the custom script's payload.details, verbatim.
	Details json.RawMessage `json:"details,omitempty"`
}

// EventType implements Event.
func (ArbitrationDecided) EventType() Type { return "ArbitrationDecided" }

// ArbiterQuorumLow says the share of reachable arbiters fell below
// threshold.warning (seed 000 arbiterMonitor).
type ArbiterQuorumLow struct {
	N         int     `json:"n" validate:"gte=0"`
	Reachable int     `json:"reachable" validate:"gte=0"`
	Share     float64 `json:"share"`
	Warning   float64 `json:"warning" validate:"gte=0,lte=1"`
	// Unreachable lists the arbiters that did not answer.
	Unreachable []string `json:"unreachable,omitempty"`
}

// EventType implements Event.
func (ArbiterQuorumLow) EventType() Type { return "ArbiterQuorumLow" }

// FailureDetectionFailed says a verdict could not be reached: the custom
// script hung, failed or printed something that is not the contract, or no
// arbiter is configured. It never changes a role.
type FailureDetectionFailed struct {
	Method string `json:"method" validate:"oneof=arbiters script"`
	Script string `json:"script,omitempty" validate:"max=1024"`
	Reason string `json:"reason" validate:"required,max=2048"`
	// Output is the start of what the script printed.
	Output string `json:"output,omitempty" validate:"max=4096"`
}

// EventType implements Event.
func (FailureDetectionFailed) EventType() Type { return "FailureDetectionFailed" }

// ArbitersClaimRequested asks this site's arbiter service to claim the
// arbiters before the site becomes active on its own authority (a takeover
// while the peer is unreachable, or a restart that could not learn the
// peer's role): hold the managing sessions, then look again whether the
// peer holds them too. ClaimID is the failover's id, or the restart's.
type ArbitersClaimRequested struct {
	ClaimID string `json:"claimId" validate:"required,max=128"`
	Reason  string `json:"reason" validate:"max=1024"`
}

// EventType implements Event.
func (ArbitersClaimRequested) EventType() Type { return "ArbitersClaimRequested" }

// Claim outcomes.
const (
	// ClaimClear: this site holds sessions to at least the failover share
	// of the arbiters and the peer manages too few of them: it may become
	// active. The sessions stay held until the site stands down or the
	// failover aborts.
	ClaimClear = "clear"
	// ClaimConflict: the peer holds the arbiters (it is active, or it
	// claimed at the same moment and this site wins no tie-break); the
	// sessions are released.
	ClaimConflict = "conflict"
	// ClaimFailed: this site could not hold enough sessions to claim.
	ClaimFailed = "failed"
)

// ArbitersClaimed answers an ArbitersClaimRequested with what the
// arbiters showed after this site's sessions were up. When both sites
// claim at once each sees the other's sessions; the site whose name sorts
// first keeps its sessions and looks again until the peer has let go, the
// other lets go at once.
type ArbitersClaimed struct {
	ClaimID string `json:"claimId" validate:"required,max=128"`
	Outcome string `json:"outcome" validate:"oneof=clear conflict failed"`
	// N arbiters configured; Held: sessions this site held when it looked.
	N    int `json:"n" validate:"gte=0"`
	Held int `json:"held" validate:"gte=0"`
	// Managed and Unreachable are the last look's counts, as in a standby
	// verdict; Looks is how many looks it took.
	Managed         int             `json:"managed" validate:"gte=0"`
	Unreachable     int             `json:"unreachable" validate:"gte=0"`
	Looks           int             `json:"looks" validate:"gte=0"`
	Branch          string          `json:"branch" validate:"max=128"`
	Description     string          `json:"description" validate:"max=2048"`
	DurationSeconds float64         `json:"durationSeconds" validate:"gte=0"`
	Arbiters        []ArbiterResult `json:"arbiters,omitempty" validate:"dive"`
}

// EventType implements Event.
func (ArbitersClaimed) EventType() Type { return "ArbitersClaimed" }
