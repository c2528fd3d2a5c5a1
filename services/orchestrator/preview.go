package orchestrator

import (
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// Preview is what a site's orchestrator would decide on a request at a
// given moment, and the plan its saga would run, with nothing recorded:
// `drwatch switchover` shows it before asking for confirmation, and
// `--dry-run` prints only it.
type Preview struct {
	Action events.Action `json:"action"`
	// Act: the orchestrator would start a saga; false when a guard
	// blocks it (Blocked) or nothing is to be done.
	Act     bool   `json:"act"`
	Blocked bool   `json:"blocked"`
	Branch  string `json:"branch"`
	Reason  string `json:"reason"`
	// Epoch is the epoch the new role would carry.
	Epoch events.Epoch `json:"epoch,omitempty"`
	// Steps is the saga's plan (empty when it would not act).
	Steps []string `json:"steps,omitempty"`
}

// PreviewRequest decides req as the orchestrator of st.Site would at now,
// st being that site's view of the log (status.Projection folds one for
// either site). The policy and the plan are read from cfg: the pair-wide
// settings are the same on both sites (PairSettings reports a difference),
// while hooks, VIP and databases are this file's and may differ on the
// peer.
func PreviewRequest(cfg *config.Config, st *pair.State, req events.FailoverRequested, now time.Time) (Preview, error) {
	o, err := OptionsFromConfig(cfg)
	if err != nil {
		return Preview{}, err
	}
	s := st.Clone()
	s.Pending = &pair.Request{ID: "preview", FailoverRequested: req, At: now, Received: now}
	d := decide.Decide(s, decide.Input{Policy: o.Policy}, now)
	p := Preview{Action: d.Action, Act: d.Act, Blocked: d.Blocked, Branch: d.Branch, Reason: d.Reason, Epoch: d.Epoch}
	if d.Act {
		to := events.RoleActive
		if d.Action == events.ActionBeStandby {
			to = events.RoleStandby
		}
		x := &saga.Executor{Site: st.Site, Peer: st.Peer, VIP: sagaVIPOf(o), Services: o.Services, Hooks: o.Hooks,
			Databases: o.Databases, ClaimTimeout: o.ClaimTimeout}
		p.Steps = x.Plan(to, claims(d))
	}
	return p, nil
}

func sagaVIPOf(o Options) saga.VIP {
	if o.VIP == nil {
		return nil
	}
	return o.VIP
}
