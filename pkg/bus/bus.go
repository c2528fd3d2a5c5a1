// Package bus is drwatch's event log on NATS JetStream: the site's streams,
// publishing typed events with de-duplication and trace context, durable
// consumers with back-off and poison-message parking, the embedded server,
// and the keeper that re-establishes the peer's source after a link heal.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/drwatch/drwatch/pkg/events"
)

// Stream names. Every site has streams of these names in its own domain.
const (
	// EventsStream is the site's log: its own events and, sourced, the
	// peer's.
	EventsStream = "EVENTS"
	// PoisonStream keeps messages consumers could not decode or validate.
	PoisonStream = "POISON"
	// RolesStream keeps, with no age limit, the latest event of each
	// subject whose loss with the log would be unsafe: each site's
	// RoleChanged (its role and epoch) and AutomaticFailoverChanged (the
	// pair-wide switch). It is sourced from the site's own EVENTS — its
	// own events and the peer's sourced ones, whoever published them —
	// and keeps one message per subject, as a KV bucket does.
	RolesStream = "ROLES"
)

// Headers set on every event message besides trace context.
const (
	HeaderType = "Drwatch-Type"
	// Poison headers describe why a message was parked.
	HeaderPoisonReason   = "Drwatch-Poison-Reason"
	HeaderPoisonSubject  = "Drwatch-Poison-Subject"
	HeaderPoisonSequence = "Drwatch-Poison-Sequence"
	HeaderPoisonConsumer = "Drwatch-Poison-Consumer"
)

// Options configure a Bus.
type Options struct {
	// Source is stamped on every published envelope.
	Source events.Source
	// Peer is the other site; its events are sourced into this site's log.
	Peer events.SiteID
	// MaxAge bounds how long the log keeps events (0: 90 days). The ROLES
	// stream keeps what must outlive it.
	MaxAge time.Duration
	// Replicas of each stream (1 for a single-server site).
	Replicas       int
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	Metrics        *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bus publishes and consumes one site's events.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	src     events.Source
	peer    events.SiteID
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	metrics *Metrics
	now     func() time.Time
	maxAge  time.Duration
	repl    int
}

// New returns a Bus over nc. Call EnsureStreams before publishing.
func New(nc *nats.Conn, opts Options) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if !events.ValidSiteName(string(opts.Source.Site)) {
		return nil, fmt.Errorf("bus: source site %q is not a valid site name", opts.Source.Site)
	}
	b := &Bus{
		nc:      nc,
		js:      js,
		src:     opts.Source,
		peer:    opts.Peer,
		log:     opts.Logger,
		metrics: opts.Metrics,
		now:     opts.Now,
		maxAge:  opts.MaxAge,
		repl:    opts.Replicas,
		prop:    propagation.TraceContext{},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "bus", "service", opts.Source.Service)
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	b.tracer = tp.Tracer("github.com/drwatch/drwatch/pkg/bus")
	if b.metrics == nil {
		b.metrics = NewMetrics(nil)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.maxAge == 0 {
		b.maxAge = 90 * 24 * time.Hour
	}
	if b.repl == 0 {
		b.repl = 1
	}
	return b, nil
}

// JetStream exposes the JetStream context for services that keep their own
// KV buckets or object stores.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn is the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Source is who this bus publishes as.
func (b *Bus) Source() events.Source { return b.src }

// Peer is the other site.
func (b *Bus) Peer() events.SiteID { return b.peer }

// EventsConfig is the site's log stream: file storage, its own subjects
// captured, the peer's sourced across the domain with a filter so that the
// site's own events never echo back.
func (b *Bus) EventsConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "drwatch event log of site " + string(b.src.Site),
		Subjects:    []string{events.SiteEvents(b.src.Site)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.maxAge,
		// The server refuses a de-duplication window longer than the
		// log's retention (a test shortens it to seconds).
		Duplicates: min(2*time.Minute, b.maxAge),
		Replicas:   b.repl,
	}
	if b.peer != "" {
		cfg.Sources = []*jetstream.StreamSource{peerSource(b.peer)}
	}
	return cfg
}

func peerSource(peer events.SiteID) *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:          EventsStream,
		FilterSubject: events.SiteEvents(peer),
		External:      &jetstream.ExternalStream{APIPrefix: "$JS." + string(peer) + ".API"},
	}
}

// EnsureStreams creates or updates the site's streams.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	if _, err := b.js.CreateOrUpdateStream(ctx, b.EventsConfig()); err != nil {
		return fmt.Errorf("create stream %s: %w", EventsStream, err)
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, b.RolesConfig()); err != nil {
		return fmt.Errorf("create stream %s: %w", RolesStream, err)
	}
	poison := jetstream.StreamConfig{
		Name:        PoisonStream,
		Description: "messages drwatch consumers could not process, kept for inspection",
		Subjects:    []string{events.SitePoison(b.src.Site)},
		Storage:     jetstream.FileStorage,
		// Parked messages are copies of what EVENTS holds: they need not
		// pay for the server-wide fsync on every write.
		PersistMode: jetstream.AsyncPersistMode,
		MaxAge:      b.maxAge,
		Replicas:    b.repl,
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, poison); err != nil {
		return fmt.Errorf("create stream %s: %w", PoisonStream, err)
	}
	return nil
}

// Publish validates ev, wraps it in an envelope from this bus's source and
// stores it in the site's log. parent, when set, is the event that caused
// this one. The returned envelope is what was stored; publishing the same
// envelope again is a no-op thanks to the message id.
func (b *Bus) Publish(ctx context.Context, ev events.Event, parent *events.Envelope) (*events.Envelope, error) {
	env, err := events.New(b.src, ev, b.now(), parent)
	if err != nil {
		b.metrics.invalid.WithLabelValues("publish").Inc()
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := b.PublishEnvelope(ctx, env); err != nil {
		return nil, err
	}
	return env, nil
}

// PublishEnvelope stores an already-built envelope (a replay, or a retry
// after an unacknowledged publish). It is validated again.
func (b *Bus) PublishEnvelope(ctx context.Context, env *events.Envelope) error {
	if err := events.ValidateEnvelope(env); err != nil {
		b.metrics.invalid.WithLabelValues("publish").Inc()
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := events.Decode(env); err != nil {
		b.metrics.invalid.WithLabelValues("publish").Inc()
		return fmt.Errorf("publish: %w", err)
	}
	data, err := env.Marshal()
	if err != nil {
		return fmt.Errorf("publish %s: %w", env.Type, err)
	}
	ctx, span := b.tracer.Start(ctx, "publish "+string(env.Type),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(eventAttrs(env)...))
	defer span.End()

	msg := nats.NewMsg(events.Subject(env))
	msg.Data = data
	msg.Header.Set(HeaderType, string(env.Type))
	b.prop.Inject(ctx, headerCarrier(msg.Header))
	start := time.Now()
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(string(env.ID)), jetstream.WithExpectStream(EventsStream))
	if err != nil {
		span.RecordError(err)
		b.metrics.publishErrors.Inc()
		return fmt.Errorf("publish %s %s: %w", env.Type, env.ID, err)
	}
	b.metrics.published.WithLabelValues(string(env.Type)).Inc()
	b.metrics.publishSeconds.Observe(time.Since(start).Seconds())
	if ack.Duplicate {
		b.log.Debug("duplicate publish dropped by the stream", "id", env.ID, "type", env.Type)
	}
	return nil
}

// ErrStopped is returned by Consume when its context ends.
var ErrStopped = errors.New("consumer stopped")
