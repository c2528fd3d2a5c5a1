package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collector records handled envelopes.
type collector struct {
	mu   sync.Mutex
	envs []*events.Envelope
}

func (c *collector) handle(_ context.Context, env *events.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.envs = append(c.envs, env)
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.envs)
}

func (c *collector) snapshot() []*events.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*events.Envelope(nil), c.envs...)
}

func consume(t *testing.T, ctx context.Context, b *bus.Bus, spec bus.ConsumerSpec) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, spec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consume %s: %v", spec.Durable, err)
		}
	})
}

func TestEveryEventTypeRoundTripsThroughJetStream(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "test", "")

	var sent []*events.Envelope
	before := time.Now()
	for _, ev := range events.Examples() {
		env, err := b.Publish(ctx, ev, nil)
		if err != nil {
			t.Fatalf("publish %s: %v", ev.EventType(), err)
		}
		sent = append(sent, env)
	}
	got := &collector{}
	consume(t, ctx, b, bus.ConsumerSpec{Durable: "all", Handler: got.handle})
	bustest.WaitFor(t, 10*time.Second, "every event", func() bool { return got.len() == len(sent) })

	after := time.Now()
	// Stored is this log's own timestamp, set on delivery, never sent.
	stored := func(what string, env *events.Envelope) {
		t.Helper()
		if env.Stored.Before(before.Add(-time.Second)) || env.Stored.After(after.Add(time.Second)) {
			t.Errorf("%s %s: Stored %v, want the time this log stored it (between %v and %v)", what, env.Type, env.Stored, before, after)
		}
	}
	if _, err := b.Replay(ctx, 0, nil, func(_ uint64, env *events.Envelope) error { stored("replayed", env); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, env := range got.snapshot() {
		stored("consumed", env)
		if diff := cmp.Diff(sent[i], env, cmpopts.IgnoreFields(events.Envelope{}, "Stored")); diff != "" {
			t.Errorf("event %d (%s) changed in transit (-sent +got):\n%s", i, sent[i].Type, diff)
		}
		ev, err := events.Decode(env)
		if err != nil {
			t.Errorf("decode %s: %v", env.Type, err)
			continue
		}
		if diff := cmp.Diff(events.Examples()[i], ev); diff != "" {
			t.Errorf("%s payload changed (-sent +got):\n%s", env.Type, diff)
		}
	}
}

func TestInvalidEventRejectedOnPublish(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	_, err := b.Publish(ctx, events.RoleChanged{From: "king", To: events.RoleActive, Reason: "x"}, nil)
	if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), "from: must be one of") {
		t.Fatalf("err = %v, want ErrInvalid naming the field", err)
	}
	info, err := b.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("stream holds %d messages after a rejected publish, want 0", n)
	}
}

func TestPoisonMessagesAreParkedAndDoNotBlock(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "test", "")
	nc := b.Conn()

	good := func(epoch events.Epoch) {
		t.Helper()
		if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: epoch, Reason: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	valid, err := events.New(b.Source(), events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 9, Reason: "x"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := valid.Marshal()
	rawInvalidPayload := strings.Replace(string(data), `"to":"active"`, `"to":"emperor"`, 1)

	good(1)
	// Raw publishes bypass the bus's own validation, as a foreign or
	// broken producer would.
	for _, raw := range []string{"not json at all", `{"id":"x"}`, rawInvalidPayload} {
		if err := nc.Publish("drwatch.a.evt.rogue.RoleChanged", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	good(2)

	got := &collector{}
	consume(t, ctx, b, bus.ConsumerSpec{Durable: "roles", Filters: []string{events.TypeFilter("RoleChanged")}, Handler: got.handle})
	bustest.WaitFor(t, 10*time.Second, "both good events", func() bool { return got.len() == 2 })

	poison, err := b.JetStream().Stream(ctx, bus.PoisonStream)
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "3 parked messages", func() bool {
		info, err := poison.Info(ctx)
		return err == nil && info.State.Msgs == 3
	})
	m, err := poison.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "not json at all" || m.Header.Get(bus.HeaderPoisonReason) == "" || m.Header.Get(bus.HeaderPoisonConsumer) != "roles" {
		t.Errorf("parked message = %q headers %v, want the original bytes with a reason", m.Data, m.Header)
	}
	m3, err := poison.GetMsg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r := m3.Header.Get(bus.HeaderPoisonReason); !strings.Contains(r, "to: must be one of") {
		t.Errorf("reason for the invalid payload = %q, want it to name the field", r)
	}
}

func TestHandlerErrorsRetryWithBackOffThenPark(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	var mu sync.Mutex
	attempts := map[events.Epoch][]time.Time{}
	handler := func(_ context.Context, env *events.Envelope) error {
		ev, err := events.DecodeInto[events.RoleChanged](env)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[ev.Epoch] = append(attempts[ev.Epoch], time.Now())
		switch {
		case ev.Epoch == 1 && len(attempts[1]) < 3:
			return errors.New("database busy")
		case ev.Epoch == 2:
			panic("handler bug")
		}
		return nil
	}
	for epoch := events.Epoch(1); epoch <= 3; epoch++ {
		if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: epoch, Reason: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	consume(t, ctx, b, bus.ConsumerSpec{
		Durable: "flaky", Handler: handler,
		BackOff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, MaxDeliver: 3,
	})
	bustest.WaitFor(t, 10*time.Second, "epoch 3 handled after the failing ones", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts[3]) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if n := len(attempts[1]); n != 3 {
		t.Errorf("epoch 1 tried %d times, want 3 (two failures then success)", n)
	}
	if gap := attempts[1][1].Sub(attempts[1][0]); gap < 40*time.Millisecond {
		t.Errorf("first retry after %s, want the 50ms back-off", gap)
	}
	if gap := attempts[1][2].Sub(attempts[1][1]); gap < 90*time.Millisecond {
		t.Errorf("second retry after %s, want the 100ms back-off", gap)
	}
	if n := len(attempts[2]); n != 3 {
		t.Errorf("panicking handler tried %d times, want MaxDeliver=3", n)
	}
	poison, err := b.JetStream().Stream(ctx, bus.PoisonStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := poison.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("panicking message not parked: %v", err)
	}
	if r := m.Header.Get(bus.HeaderPoisonReason); !strings.Contains(r, "handler panicked: handler bug") {
		t.Errorf("reason = %q", r)
	}
}

func TestConsumerRestartResumesWhereItStopped(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: events.Epoch(i), Reason: "x"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 50)

	var mu sync.Mutex
	var seen []events.Epoch
	stopAt := make(chan struct{})
	handler := func(_ context.Context, env *events.Envelope) error {
		ev, err := events.DecodeInto[events.RoleChanged](env)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev.Epoch)
		if len(seen) == 20 {
			close(stopAt)
		}
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Consume(cctx, bus.ConsumerSpec{Durable: "resume", Handler: handler}) }()
	<-stopAt
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	stopped := len(seen)
	mu.Unlock()

	publish(50, 100)
	consume(t, ctx, b, bus.ConsumerSpec{Durable: "resume", Handler: handler})
	bustest.WaitFor(t, 10*time.Second, "all 100 events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 100
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := make([]events.Epoch, 100)
	for i := range want {
		want[i] = events.Epoch(i)
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("restarted after %d: events seen (-want +got):\n%s", stopped, diff)
	}
}

func TestDuplicatePublishIsStoredOnce(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	env, err := b.Publish(ctx, events.ConfigChecked{OK: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishEnvelope(ctx, env); err != nil {
		t.Fatal(err)
	}
	s, _ := b.JetStream().Stream(ctx, bus.EventsStream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestReplayRebuildsFromTheLog(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	for i := 1; i <= 300; i++ {
		var ev events.Event = events.ConfigChecked{OK: true}
		if i%3 == 0 {
			ev = events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: events.Epoch(i), Reason: "x"}
		}
		if _, err := b.Publish(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	var epochs []events.Epoch
	last, err := b.Replay(ctx, 0, []string{events.TypeFilter("RoleChanged")}, func(_ uint64, env *events.Envelope) error {
		ev, err := events.DecodeInto[events.RoleChanged](env)
		epochs = append(epochs, ev.Epoch)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != 300 || len(epochs) != 100 || epochs[99] != 300 {
		t.Errorf("replay: last=%d, %d role changes, final epoch %v; want 300, 100, 300", last, len(epochs), epochs[len(epochs)-1])
	}
}

// TestReplayLeavesNoConsumer: each Replay deletes its consumer, so a
// loop of replays (a status poll, a test waiting for an event) does not
// pile them up until the server refuses new ones (its limit per stream).
func TestReplayLeavesNoConsumer(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	if _, err := b.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := b.Replay(ctx, 0, nil, func(uint64, *events.Envelope) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ROLES sources EVENTS through a consumer of its own.
	if n := info.State.Consumers; n > 1 {
		t.Errorf("%d consumers left on %s after 30 replays, want at most ROLES' source", n, bus.EventsStream)
	}
}

func TestTraceContextTravelsFromPublisherToConsumer(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunJetStream(t)
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	mk := func(service string) *bus.Bus {
		b, err := bus.New(site.Connect(t), bus.Options{Source: events.Source{Site: "a", Node: "n", Service: service}, TracerProvider: tp})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}
	pub, sub := mk("heartbeat"), mk("orchestrator")
	got := &collector{}
	consume(t, ctx, sub, bus.ConsumerSpec{Durable: "traced", Handler: got.handle})
	if _, err := pub.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "delivery", func() bool { return got.len() == 1 })
	bustest.WaitFor(t, 5*time.Second, "two ended spans", func() bool { return len(rec.Ended()) == 2 })
	spans := rec.Ended()
	var pubSpan, subSpan = spans[0], spans[1]
	if !strings.HasPrefix(pubSpan.Name(), "publish") {
		pubSpan, subSpan = subSpan, pubSpan
	}
	if pubSpan.SpanContext().TraceID() != subSpan.SpanContext().TraceID() {
		t.Errorf("trace ids differ: publish %s, handle %s", pubSpan.SpanContext().TraceID(), subSpan.SpanContext().TraceID())
	}
	if subSpan.Parent().SpanID() != pubSpan.SpanContext().SpanID() {
		t.Errorf("handle span's parent is %s, want the publish span %s", subSpan.Parent().SpanID(), pubSpan.SpanContext().SpanID())
	}
}

// TestPeerEventsArriveOnceInOrderAcrossCutAndHeal is the two-site proof:
// 10 000 events published on site a while the link to b is cut and healed
// reach b's log exactly once, in order, and b catches up within 2 s of the
// last heal.
func TestPeerEventsArriveOnceInOrderAcrossCutAndHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("two-site link test runs without -short")
	}
	ctx := ctxT(t)
	pair := bustest.RunPair(t)
	ba := pair.A.Bus(t, "heartbeat", "b")
	bb := pair.B.Bus(t, "heartbeat", "a")
	for _, b := range []*bus.Bus{ba, bb} {
		kctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.KeepPeerSource(kctx, bus.SourceKeeperOptions{})
		}()
		t.Cleanup(func() { cancel(); <-done })
	}

	const total = 10000
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := ba.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: events.Epoch(i), Reason: "seq"}, nil); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	peerCount := func() uint64 { return siteEventCount(ctx, bb, "a") }
	publish(0, 3000)
	pair.Link.Cut()
	publish(3000, 6000)
	pair.Link.Heal()
	publish(6000, 8000)
	pair.Link.Cut()
	publish(8000, total)
	// A cut longer than a few seconds is when nats-server's own source
	// retry back-off would leave the healed link idle.
	time.Sleep(6 * time.Second)
	pair.Link.Heal()
	healed := time.Now()
	bustest.WaitFor(t, 30*time.Second, "b's copy of a's log to catch up", func() bool { return peerCount() >= total })
	catchUp := time.Since(healed)
	t.Logf("caught up %s after the heal", catchUp)
	if catchUp > 2*time.Second {
		t.Errorf("catch-up took %s after the heal, want within 2s", catchUp)
	}

	var epochs []events.Epoch
	if _, err := bb.Replay(ctx, 0, []string{events.SiteEvents("a")}, func(_ uint64, env *events.Envelope) error {
		ev, err := events.DecodeInto[events.RoleChanged](env)
		epochs = append(epochs, ev.Epoch)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(epochs) != total {
		t.Fatalf("b holds %d of a's events, want exactly %d", len(epochs), total)
	}
	for i, e := range epochs {
		if e != events.Epoch(i) {
			t.Fatalf("b's copy out of order or duplicated at %d: epoch %d", i, e)
		}
	}
	// b's own events never echo back into b through a.
	if _, err := bb.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "a to source b's event", func() bool {
		s, _ := ba.JetStream().Stream(ctx, bus.EventsStream)
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == total+1
	})
	time.Sleep(time.Second)
	s, _ := bb.JetStream().Stream(ctx, bus.EventsStream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != total+1 {
		t.Errorf("b holds %d messages, want %d (a's %d plus its own one)", info.State.Msgs, total+1, total)
	}
}

func TestFollowDeliversFromASequenceThenLive(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	publish := func(epoch events.Epoch) {
		t.Helper()
		if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: epoch, Reason: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for e := events.Epoch(1); e <= 5; e++ {
		publish(e)
	}
	var mu sync.Mutex
	var got []events.Epoch
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Follow(fctx, 3, nil, func(_ uint64, env *events.Envelope) {
			ev, err := events.DecodeInto[events.RoleChanged](env)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, ev.Epoch)
			mu.Unlock()
		})
	}()
	publish(6)
	bustest.WaitFor(t, 5*time.Second, "epochs 3..6", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 4
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]events.Epoch{3, 4, 5, 6}, got); diff != "" {
		t.Errorf("followed (-want +got):\n%s", diff)
	}
}

// siteEventCount is how many of site's events b's log holds (0 while the
// stream cannot be read).
func siteEventCount(ctx context.Context, b *bus.Bus, site events.SiteID) uint64 {
	s, err := b.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.SiteEvents(site)))
	if err != nil {
		return 0
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}
