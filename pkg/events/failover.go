package events

import "time"

// FailoverRequested asks the orchestrator of Target to take ToRole. Manual
// requests come from an operator (seed 000 manualFailover); Force skips the
// replication-in-sync guard (seed 004).
type FailoverRequested struct {
	Target      SiteID `json:"target" validate:"required,sitename"`
	ToRole      Role   `json:"toRole" validate:"oneof=active standby"`
	Manual      bool   `json:"manual"`
	Force       bool   `json:"force"`
	Reason      string `json:"reason" validate:"required,max=1024"`
	RequestedBy string `json:"requestedBy" validate:"required,max=128"`
	// Epoch is the highest epoch the issuer had seen when it asked. A
	// request that reaches its target after a higher epoch was opened
	// answers a pair that no longer exists (a fence sent during a cut
	// arriving after the next takeover) and is discarded as stale.
	Epoch Epoch `json:"epoch"`
}

// EventType implements Event.
func (FailoverRequested) EventType() Type { return "FailoverRequested" }

// FailoverStarted opens a failover saga; its steps follow as
// FailoverStepDone with the same FailoverID.
type FailoverStarted struct {
	FailoverID string `json:"failoverId" validate:"required,max=64"`
	From       Role   `json:"from" validate:"oneof=active standby standalone"`
	To         Role   `json:"to" validate:"oneof=active standby standalone"`
	Epoch      Epoch  `json:"epoch"`
	Manual     bool   `json:"manual"`
	Force      bool   `json:"force"`
	Reason     string `json:"reason" validate:"required,max=1024"`
	// RequestID is the FailoverRequested this saga answers, if any.
	RequestID ID `json:"requestId,omitempty" validate:"max=64"`
	// StandDown: a site restarted active without its peer demotes itself
	// (decide.Restart); arbitration decides whether it takes over again.
	StandDown bool `json:"standDown,omitempty"`
	// Steps is the plan, in order.
	Steps []string `json:"steps" validate:"required,min=1"`
}

// EventType implements Event.
func (FailoverStarted) EventType() Type { return "FailoverStarted" }

// FailoverStepDone records one finished (or failed) step of a saga.
type FailoverStepDone struct {
	FailoverID      string  `json:"failoverId" validate:"required,max=64"`
	Step            string  `json:"step" validate:"required,max=64"`
	OK              bool    `json:"ok"`
	Error           string  `json:"error,omitempty" validate:"max=4096"`
	Output          string  `json:"output,omitempty" validate:"max=4096"`
	DurationSeconds float64 `json:"durationSeconds" validate:"gte=0"`
}

// EventType implements Event.
func (FailoverStepDone) EventType() Type { return "FailoverStepDone" }

// FailoverCompleted closes a saga that reached its goal.
type FailoverCompleted struct {
	FailoverID      string  `json:"failoverId" validate:"required,max=64"`
	Role            Role    `json:"role" validate:"oneof=active standby standalone"`
	Epoch           Epoch   `json:"epoch"`
	DurationSeconds float64 `json:"durationSeconds" validate:"gte=0"`
}

// EventType implements Event.
func (FailoverCompleted) EventType() Type { return "FailoverCompleted" }

// FailoverAborted closes a saga that stopped before its goal.
type FailoverAborted struct {
	FailoverID string `json:"failoverId" validate:"required,max=64"`
	Step       string `json:"step,omitempty" validate:"max=64"`
	Reason     string `json:"reason" validate:"required,max=4096"`
	// Interrupted: a restart cut the promotion short; nothing refused it.
	// The decision is taken again at once (with a fresh claim and
	// position) instead of waiting for a new verdict.
	Interrupted bool `json:"interrupted,omitempty"`
	// Undone lists the steps whose effect was reversed before the abort
	// (a promoted database demoted again, the VIP released, services
	// stopped), so a standby never keeps what a promotion took.
	Undone []string `json:"undone,omitempty" validate:"max=32,dive,max=64"`
}

// EventType implements Event.
func (FailoverAborted) EventType() Type { return "FailoverAborted" }

// RoleChanged announces a site's new role and fencing epoch.
type RoleChanged struct {
	From       Role   `json:"from" validate:"oneof=active standby standalone"`
	To         Role   `json:"to" validate:"oneof=active standby standalone"`
	Epoch      Epoch  `json:"epoch"`
	Reason     string `json:"reason" validate:"required,max=1024"`
	FailoverID string `json:"failoverId,omitempty" validate:"max=64"`
	// Lineage is the highest epoch at which this site had become active or
	// promoted a database when it recorded the change: the age of the
	// history its databases hold. The latest RoleChanged of a site, which
	// outlives the log's retention, carries it, so a store that lost the
	// rest still knows which site leads.
	Lineage Epoch `json:"lineage,omitempty"`
}

// EventType implements Event.
func (RoleChanged) EventType() Type { return "RoleChanged" }

// RoleConfirmed records the end of a restarted site's startup hold: the
// role its log said is now acted on (VIP, services, the arbiter's managing
// sessions), or the role it stood down to. A site that restarts as active
// holds everything back until it knows the peer's latest role; nothing
// may act on "active" read from its log before this event or a newer
// RoleChanged says so.
type RoleConfirmed struct {
	Role   Role   `json:"role" validate:"oneof=active standby standalone"`
	Epoch  Epoch  `json:"epoch"`
	Reason string `json:"reason" validate:"required,max=1024"`
}

// EventType implements Event.
func (RoleConfirmed) EventType() Type { return "RoleConfirmed" }

// AutomaticFailoverChanged records automatic failover switched on or off,
// by an operator (toolkit watchdog status) or by the watchdog itself.
type AutomaticFailoverChanged struct {
	Enabled bool `json:"enabled"`
	// Until is when a disable ends; nil means until enabled again.
	Until  *time.Time `json:"until,omitempty"`
	Reason string     `json:"reason" validate:"required,max=1024"`
	By     string     `json:"by" validate:"required,max=128"`
}

// EventType implements Event.
func (AutomaticFailoverChanged) EventType() Type { return "AutomaticFailoverChanged" }

// FailoverDecided records a decision of the orchestrator that did not
// simply start a saga: a guard that blocked a failover (lag, veto window,
// automatic failover off, failback policy), a request refused, or what an
// observe-only site would have done. It answers RequestID when set.
type FailoverDecided struct {
	// Action is what the decision wanted: beActive, beStandby or nothing.
	Action Action `json:"action" validate:"oneof=beActive beStandby nothing"`
	Branch string `json:"branch" validate:"required,max=128"`
	Reason string `json:"reason" validate:"required,max=1024"`
	// Blocked: a guard stopped the action.
	Blocked bool `json:"blocked"`
	// ObserveOnly: the site decided Action but never acts (failover.observeOnly).
	ObserveOnly bool `json:"observeOnly"`
	Manual      bool `json:"manual"`
	Force       bool `json:"force"`
	RequestID   ID   `json:"requestId,omitempty" validate:"max=64"`
	// Paused: maintenance (MaintenanceChanged, drwatch pause) held the
	// action back; Blocked is set too.
	Paused bool `json:"paused,omitempty"`
}

// EventType implements Event.
func (FailoverDecided) EventType() Type { return "FailoverDecided" }

// Maintenance modes of the pair (MaintenanceChanged.Mode).
const (
	// MaintenanceOff: everything automatic acts.
	MaintenanceOff = "off"
	// MaintenancePaused: no automatic promotion (takeover, resume,
	// failback), and the VIP and service monitors stand back. What keeps
	// the pair from two actives still acts (the epoch fence, an active
	// standing down when it lost its arbiters), and so do operators'
	// requests.
	MaintenancePaused = "paused"
	// MaintenanceObserveOnly: failover.observeOnly switched on at run
	// time: decisions are recorded, never carried out, and the VIP
	// monitor only reports.
	MaintenanceObserveOnly = "observe-only"
)

// MaintenanceChanged puts the pair into or out of maintenance (drwatch
// pause / resume). It is pair-wide: honoured whichever site recorded it.
type MaintenanceChanged struct {
	Mode string `json:"mode" validate:"oneof=off paused observe-only"`
	// Until ends the mode; nil: until changed again.
	Until  *time.Time `json:"until,omitempty"`
	Reason string     `json:"reason" validate:"required,max=1024"`
	By     string     `json:"by" validate:"required,max=128"`
}

// EventType implements Event.
func (MaintenanceChanged) EventType() Type { return "MaintenanceChanged" }

// FailoverAcknowledged is an operator's acknowledgement of the last
// failover; it lifts the block window (failover.blockWindow) early.
type FailoverAcknowledged struct {
	By     string `json:"by" validate:"required,max=128"`
	Reason string `json:"reason" validate:"required,max=1024"`
}

// EventType implements Event.
func (FailoverAcknowledged) EventType() Type { return "FailoverAcknowledged" }

// VIPChanged records the orchestrator's VIP reconciler putting the service
// address where the role wants it outside a saga: added on an active site
// that did not hold it (a restart, an operator's `ip addr del`), removed
// from a standby or standalone site that did (a fence: a standby must never
// answer on the VIP).
type VIPChanged struct {
	Address   string `json:"address" validate:"required,max=64"`
	Interface string `json:"interface" validate:"required,max=64"`
	// Held: the address is now on the interface.
	Held bool `json:"held"`
	// Role is the role the change follows.
	Role   Role   `json:"role" validate:"oneof=active standby standalone"`
	Reason string `json:"reason" validate:"required,max=1024"`
}

// EventType implements Event.
func (VIPChanged) EventType() Type { return "VIPChanged" }

// PairSettings records one site's values of the settings both sites of the
// pair must share — timers, thresholds, the automatic switch's default,
// the lag limits — so each orchestrator can compare them with the peer's
// and report any difference (ConfigChecked): two sites reading one
// failure with different thresholds or timers decide apart.
type PairSettings struct {
	Settings []Setting `json:"settings" validate:"required,min=1,max=64,dive"`
}

// Setting is one configuration key and its value as written in the site
// file's terms.
type Setting struct {
	Key   string `json:"key" validate:"required,max=128"`
	Value string `json:"value" validate:"max=256"`
}

// EventType implements Event.
func (PairSettings) EventType() Type { return "PairSettings" }
