package line

import (
	"context"
	"log/slog"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Prober sends one probe to target and waits at most timeout for its answer.
type Prober interface {
	Probe(ctx context.Context, target string, timeout time.Duration) error
}

// Run drives m until ctx ends: it starts the probes the machine asks for,
// wakes it when it asked to be woken, and hands every event to emit in
// order. now is the clock.
func Run(ctx context.Context, m *Machine, p Prober, now func() time.Time, emit func(events.Event), log *slog.Logger) {
	results := make(chan Result)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	handle := func(out Output) {
		for _, pr := range out.Probes {
			go func() {
				pctx, cancel := context.WithTimeout(ctx, pr.Timeout)
				err := p.Probe(pctx, pr.Target, pr.Timeout)
				cancel()
				select {
				case results <- Result{ID: pr.ID, Target: pr.Target, Err: err}:
				case <-ctx.Done():
				}
			}()
		}
		for _, ev := range out.Events {
			log.Info("peer status changed", "line", m.cfg.Name, "event", ev.EventType())
			emit(ev)
		}
		if !out.Wake.IsZero() {
			timer.Stop()
			timer.Reset(max(out.Wake.Sub(now()), 0))
		}
	}

	handle(m.Start(now()))
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-results:
			if r.Err != nil {
				log.Debug("probe failed", "line", m.cfg.Name, "target", r.Target, "err", r.Err)
			}
			handle(m.Done(now(), r))
		case <-timer.C:
			handle(m.Tick(now()))
		}
	}
}
