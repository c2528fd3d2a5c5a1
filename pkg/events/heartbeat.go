package events

import "time"

// ProbeResult is one target's outcome in a heartbeat round.
type ProbeResult struct {
	Target   string `json:"target" validate:"required,max=256"`
	Kind     string `json:"kind" validate:"oneof=icmp tcp"`
	OK       bool   `json:"ok"`
	Attempts int    `json:"attempts" validate:"gte=0"`
	Error    string `json:"error,omitempty" validate:"max=1024"`
}

// RemoteUnreachable says the peer's VIP and every peer load-balancer node
// failed to answer on one heartbeat line. It is not proof the peer is down:
// arbitration decides that.
type RemoteUnreachable struct {
	Peer  SiteID    `json:"peer" validate:"required,sitename"`
	Line  string    `json:"line" validate:"required,max=64"`
	Since time.Time `json:"since" validate:"required"`
	// LastReply is when the peer last answered on this line, by this
	// site's clock; zero when the heartbeat has not heard it since it
	// started. It precedes Since by up to a heartbeat interval.
	LastReply time.Time `json:"lastReply,omitzero"`
	// DownForSeconds is how long the peer has failed to answer.
	DownForSeconds float64       `json:"downForSeconds" validate:"gte=0"`
	Failed         []ProbeResult `json:"failed" validate:"required,min=1,dive"`
}

// EventType implements Event.
func (RemoteUnreachable) EventType() Type { return "RemoteUnreachable" }

// RemoteReachable says the peer answers again on a line.
type RemoteReachable struct {
	Peer           SiteID  `json:"peer" validate:"required,sitename"`
	Line           string  `json:"line" validate:"required,max=64"`
	Target         string  `json:"target" validate:"required,max=256"`
	DownForSeconds float64 `json:"downForSeconds" validate:"gte=0"`
}

// EventType implements Event.
func (RemoteReachable) EventType() Type { return "RemoteReachable" }

// PeerVIPMovedLocally says the peer's VIP failed but one of its
// load-balancer nodes answered: the peer is up and moved its VIP inside its
// own cluster. No failover follows.
type PeerVIPMovedLocally struct {
	Peer           SiteID   `json:"peer" validate:"required,sitename"`
	Line           string   `json:"line" validate:"required,max=64"`
	VIP            string   `json:"vip" validate:"required,max=256"`
	AnsweringNodes []string `json:"answeringNodes" validate:"required,min=1"`
}

// EventType implements Event.
func (PeerVIPMovedLocally) EventType() Type { return "PeerVIPMovedLocally" }

// MonitorTripped says a local monitor (seed 004) reached its failure limit.
type MonitorTripped struct {
	Monitor  string `json:"monitor" validate:"required,max=64"`
	Kind     string `json:"kind" validate:"oneof=service process memory cpu disk script"`
	Failures int    `json:"failures" validate:"gte=1"`
	Detail   string `json:"detail" validate:"max=2048"`
	// LogOnly monitors are recorded and mailed but never move a role.
	LogOnly bool `json:"logOnly"`
}

// EventType implements Event.
func (MonitorTripped) EventType() Type { return "MonitorTripped" }

// MonitorRecovered says a tripped local monitor passes again.
type MonitorRecovered struct {
	Monitor string `json:"monitor" validate:"required,max=64"`
	Kind    string `json:"kind" validate:"oneof=service process memory cpu disk script"`
}

// EventType implements Event.
func (MonitorRecovered) EventType() Type { return "MonitorRecovered" }

// ConfigChecked records the DR configuration check a site runs after a
// restart, before it probes anything (seed 000).
type ConfigChecked struct {
	OK       bool     `json:"ok"`
	Problems []string `json:"problems,omitempty"`
}

// EventType implements Event.
func (ConfigChecked) EventType() Type { return "ConfigChecked" }
