// Package status folds a site's event log into what an operator reads: both
// sites' roles, heartbeat, arbitration, replication, file sync and the
// automatic-failover switch (drwatch status, drwatch health), and the
// `states` section of seed 000's `api v1 config`. It is a pure projection:
// Apply every event of the log in order, then read.
package status

import (
	"context"
	"slices"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// Replayer reads the log; *bus.Bus implements it.
type Replayer interface {
	Replay(ctx context.Context, from uint64, filters []string, fn func(seq uint64, env *events.Envelope) error) (uint64, error)
}

// Load replays the whole log into a new projection.
func Load(ctx context.Context, r Replayer, cfg *config.Config) (*Projection, error) {
	p := New(cfg)
	last, err := r.Replay(ctx, 0, nil, func(_ uint64, env *events.Envelope) error {
		p.Apply(env)
		return nil
	})
	p.LastSeq = last
	return p, err
}

// Replication is one database's replication as last reported.
type Replication struct {
	// State is ok, broken, lag, diverged or unknown (never reported).
	State      string    `json:"state"`
	LagSeconds float64   `json:"lagSeconds"`
	LagBytes   int64     `json:"lagBytes"`
	Detail     string    `json:"detail,omitempty"`
	At         time.Time `json:"at,omitzero"`
}

// Line is one heartbeat line's last word on the peer.
type Line struct {
	Reachable bool      `json:"reachable"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
}

// Arbitration is the last failure-detection verdict with its numbers.
type Arbitration struct {
	Method         string    `json:"method"`
	Action         string    `json:"action"`
	Branch         string    `json:"branch"`
	N              int       `json:"n"`
	Reachable      int       `json:"reachable"`
	Managed        int       `json:"managed"`
	Unreachable    int       `json:"unreachable"`
	ReachableShare float64   `json:"reachableShare"`
	ManagedShare   float64   `json:"managedShare"`
	Failover       float64   `json:"thresholdFailover"`
	At             time.Time `json:"at"`
}

// FileSync is the last file-sync outcome.
type FileSync struct {
	LastOK      time.Time `json:"lastOk,omitzero"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	Reason      string    `json:"reason,omitempty"`
}

// Saga is the last failover a site ran.
type Saga struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Manual    bool      `json:"manual"`
	State     string    `json:"state"` // running, completed, aborted
	Step      string    `json:"step,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"startedAt"`
}

// Site is one site as its events tell it.
type Site struct {
	Name  events.SiteID `json:"name"`
	Role  events.Role   `json:"role"`
	Epoch events.Epoch  `json:"epoch"`
	// RoleFromLog: Role comes from a RoleChanged, not the configured default.
	RoleFromLog bool `json:"roleFromLog"`
	// LastEvent is when this site last recorded anything.
	LastEvent   time.Time                        `json:"lastEvent,omitzero"`
	Lines       map[string]Line                  `json:"heartbeat"`
	Arbitration *Arbitration                     `json:"arbitration,omitempty"`
	QuorumLow   string                           `json:"quorumLow,omitempty"`
	Replication map[events.Database]*Replication `json:"replication"`
	FileSync    FileSync                         `json:"fileSync"`
	// Tripped local monitors, by name, with their detail.
	Tripped      map[string]string `json:"trippedMonitors,omitempty"`
	ConfigOK     *bool             `json:"configOk,omitempty"`
	ConfigIssues []string          `json:"configProblems,omitempty"`
	LastFailover *Saga             `json:"lastFailover,omitempty"`
	// LastTransition is "active_to_standby", "standby_to_active" or "".
	LastTransition string `json:"lastTransition"`
	// Decision is the site's standing decision that held an action back,
	// nil when none stands.
	Decision *Decision `json:"heldBack,omitempty"`
	// VIP is the site's last recorded hold on the service address.
	VIP *VIPHold `json:"vip,omitempty"`

	states map[string]*state
	// quorumShare is the reachable share of the last ArbiterQuorumLow.
	quorumShare float64
}

// Automatic is the pair-wide automatic-failover switch.
type Automatic struct {
	Enabled bool `json:"enabled"`
	// Until ends a disable; nil with Enabled false means until enabled.
	Until *time.Time `json:"until,omitempty"`
	// Configured: no operator changed it; failover.automatic applies.
	Configured bool   `json:"configured"`
	By         string `json:"by,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// On reports whether automatic failover is on at now.
func (a Automatic) On(now time.Time) bool {
	return a.Enabled || (a.Until != nil && !now.Before(*a.Until))
}

// Projection is the fold of one site's log (its own events and the peer's,
// sourced).
type Projection struct {
	Self, Peer events.SiteID
	Sites      map[events.SiteID]*Site
	Automatic  Automatic
	// MaxEpoch is the highest epoch either site announced or opened a
	// failover at: an operator's request carries it, and a target that
	// knows a higher one discards the request as stale.
	MaxEpoch events.Epoch
	LastSeq  uint64
	// State is the projection every service decides on (pkg/pair), folded
	// from the same log: roles, epochs and the switch shown here are read
	// from it, not folded a second time.
	State *pair.State
	// PeerView is the same log folded from the peer's side, so a command
	// run here can tell what the peer's orchestrator would decide (drwatch
	// switchover aimed at the peer).
	PeerView *pair.State
	// LastAck is the last acknowledgement of a failover.
	LastAck *Ack
	history history
	cfg     *config.Config
}

// New returns the projection before any event: both sites in their
// configured (or unknown) roles.
func New(cfg *config.Config) *Projection {
	p := &Projection{
		Self: events.SiteID(cfg.Site.Name), Peer: events.SiteID(cfg.Site.Peer),
		Sites:     map[events.SiteID]*Site{},
		Automatic: Automatic{Enabled: cfg.Failover.Automatic, Configured: true},
		State:     pair.New(events.SiteID(cfg.Site.Name), events.SiteID(cfg.Site.Peer), events.Role(cfg.Site.Role), cfg.HeartbeatLineNames()),
		cfg:       cfg,
	}
	if p.Peer != "" {
		// The peer's configured role is unknown here; its RoleChanged
		// events set it.
		p.PeerView = pair.New(p.Peer, p.Self, "", cfg.HeartbeatLineNames())
	}
	p.site(p.Self).Role = events.Role(cfg.Site.Role)
	if p.Peer != "" {
		p.site(p.Peer).Role = "unknown"
	}
	return p
}

func (p *Projection) site(name events.SiteID) *Site {
	s, ok := p.Sites[name]
	if !ok {
		s = &Site{
			Name: name, Lines: map[string]Line{},
			Replication: map[events.Database]*Replication{
				events.MySQL: {State: "unknown"}, events.PgSQL: {State: "unknown"},
			},
			Tripped: map[string]string{},
			states:  map[string]*state{},
		}
		p.Sites[name] = s
	}
	return s
}

// Apply folds one event. Events of a third site or that do not decode are
// ignored: a projection never stops on history.
func (p *Projection) Apply(env *events.Envelope) {
	if env.Site != p.Self && env.Site != p.Peer {
		return
	}
	ev, err := events.Decode(env)
	if err != nil {
		return
	}
	p.State.Apply(env)
	if p.PeerView != nil {
		p.PeerView.Apply(env)
	}
	p.fromPair()
	s := p.site(env.Site)
	if env.Time.After(s.LastEvent) {
		s.LastEvent = env.Time
	}
	s.applyState(env, ev)
	p.applyOps(env, s, ev)
	switch e := ev.(type) {
	case events.RoleChanged:
		if t := transition(e.From, e.To); t != "" {
			s.LastTransition = t
		}
	case events.RemoteUnreachable:
		detail := ""
		if len(e.Failed) > 0 {
			detail = e.Failed[0].Target + ": " + e.Failed[0].Error
		}
		s.Lines[e.Line] = Line{Reachable: false, Detail: detail, At: env.Time}
	case events.RemoteReachable:
		s.Lines[e.Line] = Line{Reachable: true, Detail: "answers on " + e.Target, At: env.Time}
	case events.PeerVIPMovedLocally:
		s.Lines[e.Line] = Line{Reachable: true, Detail: "VIP moved locally; nodes answer", At: env.Time}
	case events.ArbitrationDecided:
		s.Arbitration = &Arbitration{
			Method: e.Method, Action: string(e.Action), Branch: e.Branch, N: e.N,
			Reachable: e.Reachable, Managed: e.Managed, Unreachable: e.Unreachable,
			ReachableShare: e.ReachableShare, ManagedShare: e.ManagedShare,
			Failover: e.Thresholds.Failover, At: env.Time,
		}
		if e.N > 0 && e.ReachableShare >= e.Thresholds.Warning && e.Method == "arbiters" {
			s.QuorumLow = ""
		}
	case events.ArbiterQuorumLow:
		s.QuorumLow, s.quorumShare = quorumText(e), e.Share
	case events.ReplicationBroken:
		r := s.Replication[e.Database]
		r.State, r.Detail, r.At = "broken", e.Check+": "+e.Error, env.Time
	case events.ReplicationRepaired:
		r := s.Replication[e.Database]
		r.State, r.Detail, r.At = "ok", "", env.Time
	case events.ReplicationLagHigh:
		r := s.Replication[e.Database]
		r.State, r.LagSeconds, r.LagBytes, r.At = "lag", e.LagSeconds, e.LagBytes, env.Time
		r.Detail = "lag above threshold"
	case events.ReplicationLagRecovered:
		r := s.Replication[e.Database]
		r.State, r.LagSeconds, r.LagBytes, r.Detail, r.At = "ok", e.LagSeconds, e.LagBytes, "", env.Time
	case events.ReplicationDiverged:
		r := s.Replication[e.Database]
		r.State, r.At = "diverged", env.Time
		r.Detail = "diverged; resync with: " + e.ResyncCommand
	case events.FileSyncCompleted:
		s.FileSync.LastOK = env.Time
		s.FileSync.Reason = ""
	case events.FileSyncFailed:
		s.FileSync.LastFailure, s.FileSync.Reason = env.Time, e.Reason
	case events.MonitorTripped:
		s.Tripped[e.Monitor] = e.Kind + ": " + e.Detail
	case events.MonitorRecovered:
		delete(s.Tripped, e.Monitor)
	case events.ConfigChecked:
		ok := e.OK
		s.ConfigOK, s.ConfigIssues = &ok, slices.Clone(e.Problems)
	case events.FailoverStarted:
		s.LastFailover = &Saga{ID: e.FailoverID, From: string(e.From), To: string(e.To), Manual: e.Manual, State: "running", Reason: e.Reason, StartedAt: env.Time}
	case events.FailoverStepDone:
		if f := s.LastFailover; f != nil && f.ID == e.FailoverID {
			f.Step = e.Step
		}
	case events.FailoverCompleted:
		if f := s.LastFailover; f != nil && f.ID == e.FailoverID {
			f.State = "completed"
		}
	case events.FailoverAborted:
		if f := s.LastFailover; f != nil && f.ID == e.FailoverID {
			f.State, f.Step, f.Reason = "aborted", e.Step, e.Reason
		}
	case events.AutomaticFailoverChanged:
		// Who and why; whether and until when come from the pair.
		if p.State.AutomaticBy == env.Site && p.State.AutomaticAt.Equal(env.Time) {
			p.Automatic.By, p.Automatic.Reason = e.By, e.Reason
		}
	}
}

// fromPair copies what the pair projection decides on into the report's
// fields: both sites' roles and epochs, the highest epoch, the switch.
func (p *Projection) fromPair() {
	st := p.State
	if st.RoleKnown {
		s := p.site(p.Self)
		s.Role, s.Epoch, s.RoleFromLog = st.Role, st.Epoch, true
	}
	if p.Peer != "" && st.PeerRole != "" {
		s := p.site(p.Peer)
		s.Role, s.Epoch, s.RoleFromLog = st.PeerRole, st.PeerEpoch, true
	}
	p.MaxEpoch = st.MaxEpoch
	if st.AutomaticSet {
		p.Automatic.Enabled, p.Automatic.Configured, p.Automatic.Until = st.Automatic, false, nil
		if st.AutomaticUntil != nil {
			u := *st.AutomaticUntil
			p.Automatic.Until = &u
		}
	}
}

func transition(from, to events.Role) string {
	switch {
	case from == events.RoleActive && to == events.RoleStandby:
		return "active_to_standby"
	case from == events.RoleStandby && to == events.RoleActive:
		return "standby_to_active"
	}
	return ""
}

func quorumText(e events.ArbiterQuorumLow) string {
	return formatShare(e.Reachable, e.N) + " arbiters reachable, below warning " + formatFloat(e.Warning)
}

// Runtime returns what APISections reports beside the configuration for
// this site: role, last failover type and the states section (nil when the
// log holds nothing from this site, as the seed omits states when the
// watchdog never ran).
func (p *Projection) Runtime(now time.Time) config.Runtime {
	s := p.Sites[p.Self]
	rt := config.Runtime{Role: string(s.Role), Failover: s.LastTransition}
	if !s.LastEvent.IsZero() {
		rt.States = p.States(now)
	}
	return rt
}
