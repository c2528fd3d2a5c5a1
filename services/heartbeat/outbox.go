package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
)

// outbox publishes the service's events in order, one at a time, retrying
// an event the bus refuses (NATS down, JetStream leaderless) with the same
// envelope, so that a retry after a lost ack is de-duplicated by the stream
// and nothing is published twice or dropped while the service runs.
type outbox struct {
	bus   *bus.Bus
	now   func() time.Time
	retry time.Duration
	log   *slog.Logger
	queue chan events.Event
}

func newOutbox(b *bus.Bus, now func() time.Time, retry time.Duration, log *slog.Logger) *outbox {
	if retry <= 0 {
		retry = time.Second
	}
	return &outbox{bus: b, now: now, retry: retry, log: log, queue: make(chan events.Event, 1024)}
}

// emitter returns a func that queues an event. It blocks when the queue is
// full, which slows the probes down rather than dropping a transition, and
// gives up when ctx ends.
func (o *outbox) emitter(ctx context.Context) func(events.Event) {
	return func(ev events.Event) {
		select {
		case o.queue <- ev:
		case <-ctx.Done():
		}
	}
}

// run publishes queued events until ctx ends.
func (o *outbox) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			if n := len(o.queue); n > 0 {
				o.log.Warn("stopping with events not yet published", "count", n)
			}
			return
		case ev := <-o.queue:
			if err := o.publishNow(ctx, ev); err != nil && ctx.Err() == nil {
				o.log.Error("event dropped", "type", ev.EventType(), "err", err)
			}
		}
	}
}

// publishNow publishes ev, retrying until it is stored or ctx ends. An
// event that fails validation is a bug and is not retried.
func (o *outbox) publishNow(ctx context.Context, ev events.Event) error {
	env, err := events.New(o.bus.Source(), ev, o.now(), nil)
	if err != nil {
		return fmt.Errorf("heartbeat: build %s: %w", ev.EventType(), err)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := o.bus.PublishEnvelope(pctx, env)
		cancel()
		if err == nil {
			return nil
		}
		o.log.Warn("publish failed, retrying", "type", env.Type, "id", env.ID, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("heartbeat: publish %s: %w", env.Type, ctx.Err())
		case <-time.After(o.retry):
		}
	}
}
