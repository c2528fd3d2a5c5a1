package status

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// Decision is a site's latest recorded decision that held an action back
// (a guard, observe-only) or answered a request without a saga. It stands
// until the site starts a saga or changes role.
type Decision struct {
	Action      events.Action `json:"action"`
	Branch      string        `json:"branch"`
	Reason      string        `json:"reason"`
	Blocked     bool          `json:"blocked"`
	ObserveOnly bool          `json:"observeOnly"`
	Paused      bool          `json:"paused,omitempty"`
	RequestID   events.ID     `json:"requestId,omitempty"`
	At          time.Time     `json:"at"`
	// Until is when the guard that held it back lifts by itself, when
	// the log tells (block window, a timed disable); nil otherwise.
	Until *time.Time `json:"until,omitempty"`
}

// VIPHold is what the log last said of a site's hold on the service
// address: a saga's take-vip/release-vip step or the VIP monitor's
// VIPChanged.
type VIPHold struct {
	Held bool      `json:"held"`
	At   time.Time `json:"at"`
	// By: the saga step or "vip monitor" that moved it.
	By string `json:"by"`
}

// BlockWindow is the block window after the last automatic failover
// (failover.blockWindow), nil in Pair when none holds.
type BlockWindow struct {
	// Since is when the failover that opened it completed.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Failover is that failover's id, when the log holds its start.
	Failover string `json:"failover,omitempty"`
}

// Ack is the last FailoverAcknowledged.
type Ack struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// applyOps folds what the operator's day after a failover reads: held-back
// decisions, the VIP, acknowledgements and the history of role moves.
func (p *Projection) applyOps(env *events.Envelope, s *Site, ev events.Event) {
	switch e := ev.(type) {
	case events.FailoverDecided:
		s.Decision = &Decision{Action: e.Action, Branch: e.Branch, Reason: e.Reason, Blocked: e.Blocked,
			ObserveOnly: e.ObserveOnly, Paused: e.Paused, RequestID: e.RequestID, At: env.Time}
	case events.FailoverStarted:
		s.Decision = nil
	case events.RoleChanged:
		s.Decision = nil
	case events.VIPChanged:
		s.VIP = &VIPHold{Held: e.Held, At: env.Time, By: "vip monitor"}
	case events.FailoverStepDone:
		if e.OK && (e.Step == stepTakeVIP || e.Step == stepReleaseVIP) {
			s.VIP = &VIPHold{Held: e.Step == stepTakeVIP, At: env.Time, By: "failover " + e.FailoverID + " " + e.Step}
		}
	case events.FailoverAcknowledged:
		p.LastAck = &Ack{By: e.By, Reason: e.Reason, At: env.Time}
	}
	p.history.apply(env, ev)
}

// The saga's VIP steps (services/orchestrator/internal/saga), named here
// as they appear in the log.
const (
	stepTakeVIP    = "take-vip"
	stepReleaseVIP = "release-vip"
)

// Block returns the block window in force at now, nil when none: no
// automatic failover completed within failover.blockWindow, or it was
// acknowledged (or asked for by an operator).
func (p *Projection) Block(now time.Time) *BlockWindow {
	w := p.cfg.Failover.BlockWindow.D()
	if !p.State.Blocked(w, now) {
		return nil
	}
	b := &BlockWindow{Since: p.State.LastFailoverAt, Until: p.State.LastFailoverAt.Add(w)}
	for _, e := range p.history.entries {
		if e.End.Equal(b.Since) && e.Outcome == OutcomeCompleted {
			b.Failover = e.ID
		}
	}
	return b
}

// heldUntil is when the guard of d lifts by itself, nil when the log does
// not say.
func (p *Projection) heldUntil(d *Decision, now time.Time) *time.Time {
	switch d.Branch {
	case "guard.block-window":
		if b := p.Block(now); b != nil {
			u := b.Until
			return &u
		}
	case "guard.automatic-off":
		if u := p.Automatic.Until; u != nil {
			v := *u
			return &v
		}
	}
	return nil
}

// decisions returns each site's standing held-back decision with its
// Until evaluated at now.
func (p *Projection) decisions(now time.Time) {
	for _, s := range p.Sites {
		if s.Decision != nil && (s.Decision.Blocked || s.Decision.ObserveOnly) {
			s.Decision.Until = p.heldUntil(s.Decision, now)
		}
	}
}

// DescribeDecision is one line on a held-back decision.
func DescribeDecision(d *Decision) string {
	what := "held back"
	if d.Paused {
		what = "paused"
	}
	if d.ObserveOnly {
		what = "observe-only"
	}
	out := fmt.Sprintf("%s %s (%s): %s", what, d.Action, d.Branch, d.Reason)
	if d.Until != nil {
		out += "; lifts at " + d.Until.UTC().Format(time.RFC3339)
	}
	return strings.TrimSpace(out)
}

// ActiveSites are the sites whose latest role is active.
func (p *Projection) ActiveSites() []events.SiteID {
	var out []events.SiteID
	for _, name := range []events.SiteID{p.Self, p.Peer} {
		if s := p.Sites[name]; s != nil && s.Role == events.RoleActive {
			out = append(out, name)
		}
	}
	return out
}

// ViewOf is the pair as site's orchestrator folds it from this log: this
// site's projection or the peer's (PeerView).
func (p *Projection) ViewOf(site events.SiteID) *pair.State {
	if site == p.Peer && p.PeerView != nil {
		return p.PeerView
	}
	return p.State
}

// SwitchoverTarget checks that a planned switchover can be asked for and
// returns the site that must become active: to when given, else the site
// that is not active. A switchover moves the active role between two
// running sites; when none or both are active, or the active site does not
// answer, it refuses and names the command that fits.
func (p *Projection) SwitchoverTarget(to events.SiteID) (events.SiteID, error) {
	if p.Peer == "" {
		return "", fmt.Errorf("site %s has no peer (site.peer): nothing to switch over to", p.Self)
	}
	if to != "" && to != p.Self && to != p.Peer {
		return "", fmt.Errorf("%w: --to %q: the pair is %s and %s", ErrBadTarget, to, p.Self, p.Peer)
	}
	active := p.ActiveSites()
	switch len(active) {
	case 0:
		return "", fmt.Errorf("no site is active (%s %s, %s %s): a switchover moves the active role; make a site active with drwatch failover --to SITE",
			p.Self, p.Sites[p.Self].Role, p.Peer, p.Sites[p.Peer].Role)
	case 2:
		return "", fmt.Errorf("both %s and %s report active: the epoch fence resolves that; see drwatch status before moving anything", p.Self, p.Peer)
	}
	from := active[0]
	target := p.Peer
	if from == p.Peer {
		target = p.Self
	}
	if to != "" && to != target {
		return "", fmt.Errorf("site %s is already active: nothing to switch over (--to %s)", to, to)
	}
	if r := p.Sites[target].Role; r != events.RoleStandby {
		return "", fmt.Errorf("site %s is %s here, not standby: its role has not reached this log (is it running, and is the peer log link up? see drwatch health); if site %s is down, use drwatch failover --to %s --force", target, r, target, target)
	}
	if p.State.PeerUnreachable() {
		return "", fmt.Errorf("site %s does not answer the heartbeat here: a switchover needs both sites; if the active site is down, use drwatch failover --to %s --force", p.Peer, target)
	}
	return target, nil
}

// ErrBadTarget: a site name that is neither site of the pair.
var ErrBadTarget = errors.New("not a site of the pair")

// Maintenance is the pair's maintenance mode in force (drwatch pause).
type Maintenance struct {
	Mode   string        `json:"mode"`
	Until  *time.Time    `json:"until,omitempty"`
	By     string        `json:"by"`
	Reason string        `json:"reason"`
	Site   events.SiteID `json:"site"`
	At     time.Time     `json:"at"`
}

// MaintenanceAt returns the maintenance in force at now, nil when none.
func (p *Projection) MaintenanceAt(now time.Time) *Maintenance {
	m := p.State.Maintenance
	if p.State.Mode(now) == events.MaintenanceOff || m == nil {
		return nil
	}
	return &Maintenance{Mode: m.Mode, Until: m.Until, By: m.By, Reason: m.Reason, Site: p.State.MaintenanceBy, At: p.State.MaintenanceAt}
}

func timeOr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
