package orchestrator

import (
	"context"
	"slices"
	"strings"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

// recordSettings records this site's pair-wide settings unless its log
// already holds the same ones.
func (r *runner) recordSettings(ctx context.Context) error {
	st, _ := r.snapshot()
	if len(r.opts.PairSettings) == 0 || slices.Equal(st.Settings, r.opts.PairSettings) {
		return nil
	}
	_, err := r.deps.Bus.Publish(ctx, events.PairSettings{Settings: r.opts.PairSettings}, nil)
	return err
}

// compareSettings reports, once per difference, pair-wide settings that
// differ from the peer's, and a peer clock running ahead of this one by
// more than the rules allow, as a failed ConfigChecked (mailed by the
// notifier, shown by drwatch health).
func (r *runner) compareSettings(ctx context.Context, st *pair.State) {
	diff := decide.SettingsDiffer(st.Settings, st.PeerSettings, r.opts.Peer)
	key := strings.Join(diff, "\n")
	if p := st.ClockProblem(r.opts.Policy.ClockSkew); p != "" {
		// The figure moves with every event: the report is once per
		// onset, not per figure.
		diff, key = append(diff, p), key+"\nclock"
	}
	if len(diff) == 0 || key == r.settingsReported {
		if len(diff) == 0 {
			r.settingsReported = ""
		}
		return
	}
	r.log.Warn("the pair's settings or clocks disagree", "problems", diff)
	if _, err := r.deps.Bus.Publish(ctx, events.ConfigChecked{OK: false, Problems: diff}, nil); err != nil {
		r.log.Error("report the pair-wide settings that differ; retrying next round", "err", err)
		return
	}
	r.settingsReported = key
}
