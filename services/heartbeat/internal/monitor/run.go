package monitor

import (
	"context"
	"log/slog"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Roles tells a monitor this site's current role.
type Roles interface {
	Current() (events.Role, events.Epoch)
}

// Run checks c every interval while the site's role is in the monitor's
// scope, and hands trip and recovery events to emit, until ctx ends.
func Run(ctx context.Context, cfg Config, c Checker, roles Roles, emit func(events.Event), log *slog.Logger) {
	log = log.With("monitor", cfg.Name, "kind", cfg.Kind)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var st State
	for {
		role, _ := roles.Current()
		if InScope(cfg.Scope, role) {
			err := c.Check(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				log.Debug("check failed", "failures", st.Failures+1, "err", err)
			}
			var ev events.Event
			st, ev = Step(cfg.Spec, st, err)
			if ev != nil {
				if t, ok := ev.(*events.MonitorTripped); ok {
					log.Warn("monitor tripped", "failures", t.Failures, "detail", t.Detail, "logOnly", t.LogOnly)
				} else {
					log.Info("monitor recovered")
				}
				emit(ev)
			}
		} else if st != (State{}) {
			// Out of scope the monitor's verdict means nothing; it starts
			// counting afresh when the role brings it back.
			log.Info("monitor out of scope for role, count reset", "role", role, "scope", cfg.Scope)
			st = State{}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
