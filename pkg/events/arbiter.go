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
	// ManagedByActive: the active site holds a session to this arbiter
	// (standby side only).
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
