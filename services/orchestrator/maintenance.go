package orchestrator

import (
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

// pauseHold holds back what a paused pair (drwatch pause) must not do on
// its own: an automatic promotion — a takeover, the liveness rule's
// resume, an automatic failback. Demotions still act (the epoch fence, an
// active standing down when it lost its arbiters, a restart stand-down):
// they are what keeps the pair from two actives, and a pause must never
// buy one. Operators' requests act too: a pause stops the machine, not the
// operator. paused reports that the pause held d back.
func pauseHold(d decide.Decision, mode string, st *pair.State) (_ decide.Decision, paused bool) {
	if mode != events.MaintenancePaused || !d.Act || d.Action != events.ActionBeActive || d.RequestID != "" {
		return d, false
	}
	until := "until drwatch resume"
	if m := st.Maintenance; m != nil && m.Until != nil {
		until = "until " + m.Until.UTC().Format(time.RFC3339)
	}
	d.Act, d.Blocked = false, true
	d.Reason = "paused " + until + ": would " + string(d.Action) + ": " + d.Reason
	return d, true
}
