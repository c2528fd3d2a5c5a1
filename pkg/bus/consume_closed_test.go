package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

// TestConsumeReturnsWhenItsConsumerIsDeleted: a consumer deleted on the
// server (by an operator, or by a second replica resetting it) delivers
// nothing more. Consume must say so rather than block until its context
// ends, so its service stops and is restarted instead of missing every
// event from then on in silence.
func TestConsumeReturnsWhenItsConsumerIsDeleted(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "test", "b")
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, bus.ConsumerSpec{Durable: "deleted", Handler: func(context.Context, *events.Envelope) error {
			select {
			case <-started:
			default:
				close(started)
			}
			return nil
		}})
	}()
	if _, err := b.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("nothing consumed")
	}
	if err := b.JetStream().DeleteConsumer(ctx, bus.EventsStream, "deleted"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Consume returned nil although its context is still live")
		}
		t.Logf("Consume: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Consume still blocked 30s after its consumer was deleted")
	}
}
