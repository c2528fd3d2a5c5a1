package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/drwatch/drwatch/pkg/events"
)

// DefaultBackOff is the redelivery schedule after a handler error.
var DefaultBackOff = []time.Duration{250 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}

// ConsumerSpec describes a durable consumer of the site's log.
type ConsumerSpec struct {
	// Durable names the consumer; its position survives restarts.
	Durable string
	// Filters select subjects, e.g. events.TypeFilter("RoleChanged").
	// Empty means every event in the log.
	Filters []string
	Handler events.Handler
	// BackOff is the delay before each redelivery after a handler error;
	// its last entry repeats. Default DefaultBackOff.
	BackOff []time.Duration
	// MaxDeliver is how often a message is tried before it is parked as
	// poison. Default len(BackOff)+1.
	MaxDeliver int
	// MaxAckPending bounds messages in flight; 1 (the default) keeps
	// handling in log order.
	MaxAckPending int
	// AckWait is how long a handler may run before the server redelivers.
	AckWait time.Duration
	// DeliverNew starts a new consumer at the end of the log instead of
	// its beginning.
	DeliverNew bool
	// StartSeq, when set, starts a new consumer at this stream sequence.
	StartSeq uint64
}

func (s *ConsumerSpec) applyDefaults() error {
	if s.Durable == "" {
		return errors.New("consumer: durable name is required")
	}
	if s.Handler == nil {
		return fmt.Errorf("consumer %s: handler is required", s.Durable)
	}
	if len(s.BackOff) == 0 {
		s.BackOff = DefaultBackOff
	}
	if s.MaxDeliver == 0 {
		s.MaxDeliver = len(s.BackOff) + 1
	}
	if s.MaxAckPending == 0 {
		s.MaxAckPending = 1
	}
	if s.AckWait == 0 {
		s.AckWait = 30 * time.Second
	}
	return nil
}

func (s *ConsumerSpec) config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch {
	case s.StartSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.StartSeq
	case s.DeliverNew:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	switch len(s.Filters) {
	case 0:
	case 1:
		cfg.FilterSubject = s.Filters[0]
	default:
		cfg.FilterSubjects = s.Filters
	}
	return cfg
}

// Consume runs a durable consumer until ctx ends, then returns nil; it
// returns an error early when its consumer is deleted on the server. Each
// message is decoded and validated; undecodable or invalid ones are parked
// in the poison stream and terminated so they never block the next. A handler error is
// retried with back-off; after MaxDeliver tries the message is parked too.
// A handler panic counts as an error. After ctx ends it returns once the
// handler in flight, if any, has returned and its message is acked.
func (b *Bus) Consume(ctx context.Context, spec ConsumerSpec) error {
	if err := spec.applyDefaults(); err != nil {
		return err
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, EventsStream, spec.config())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	log := b.log.With("consumer", spec.Durable)
	// Returning waits for the handler in flight (and its ack): a caller
	// that stops the consumer and then shuts down must not lose its work,
	// its ack or its span. nats.go's Closed usually means that already; a
	// CI run saw a handler's span end after Consume had returned, so it is
	// enforced here: a message arriving once Consume is returning is left
	// unhandled and unacked (redelivered on the next start).
	var (
		mu       sync.Mutex
		stopping bool
		inflight sync.WaitGroup
	)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		if stopping {
			mu.Unlock()
			return
		}
		inflight.Add(1)
		mu.Unlock()
		defer inflight.Done()
		b.handle(ctx, &spec, m)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil {
			log.Warn("consumer error", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	if err := watchConsumer(ctx, cons); err != nil {
		// Nothing can be delivered to a deleted consumer any more, and its
		// subscription may never finish draining: do not wait for it.
		cc.Stop()
		return fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	cc.Stop()
	<-cc.Closed()
	mu.Lock()
	stopping = true
	mu.Unlock()
	inflight.Wait()
	return nil
}

// ackTimeout bounds the wait for the server to confirm an ack.
const ackTimeout = 5 * time.Second

// consumerCheckInterval is how often Consume asks whether its consumer
// still exists.
const consumerCheckInterval = 5 * time.Second

// watchConsumer waits for ctx to end and returns an error early when the
// consumer is deleted on the server (by an operator, or by a replica
// resetting it). nats.go does not report that: it keeps waiting on pulls
// nobody answers, and a service would run on, deaf to the log. Failing
// makes the site stop loudly instead, to be restarted by its supervisor.
func watchConsumer(ctx context.Context, cons jetstream.Consumer) error {
	tick := time.NewTicker(consumerCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		ictx, cancel := context.WithTimeout(ctx, consumerCheckInterval)
		_, err := cons.Info(ictx)
		cancel()
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
	}
}

func (b *Bus) handle(ctx context.Context, spec *ConsumerSpec, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		b.park(ctx, spec.Durable, m, 0, fmt.Sprintf("no JetStream metadata: %v", err))
		return
	}
	env, err := decodeMsg(m.Subject(), m.Data())
	if err == nil {
		env.Stored = meta.Timestamp
	}
	if err != nil {
		b.park(ctx, spec.Durable, m, meta.Sequence.Stream, err.Error())
		return
	}

	ctx = b.prop.Extract(ctx, headerCarrier(m.Headers()))
	ctx, span := b.tracer.Start(ctx, "handle "+string(env.Type),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(eventAttrs(env)...),
		trace.WithAttributes(attribute.String("drwatch.consumer", spec.Durable)))
	defer span.End()

	start := time.Now()
	err = callHandler(ctx, spec.Handler, env)
	b.metrics.handleSeconds.WithLabelValues(spec.Durable).Observe(time.Since(start).Seconds())
	if err == nil {
		// The handler's work is done: record it even when the consumer is
		// stopping, or the next start waits AckWait for the redelivery
		// (MaxAckPending 1 holds everything behind it) and handles it twice.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		aerr := m.DoubleAck(actx)
		cancel()
		if aerr != nil {
			b.log.Warn("ack failed; the message will be redelivered", "consumer", spec.Durable, "id", env.ID, "err", aerr)
		}
		b.metrics.handled.WithLabelValues(spec.Durable, "ok").Inc()
		return
	}
	span.RecordError(err)
	if errors.Is(err, events.ErrInvalid) || errors.Is(err, events.ErrUndecodable) {
		b.park(ctx, spec.Durable, m, meta.Sequence.Stream, err.Error())
		return
	}
	n := int(meta.NumDelivered)
	if n >= spec.MaxDeliver {
		b.park(ctx, spec.Durable, m, meta.Sequence.Stream, fmt.Sprintf("handler failed %d times, last: %v", n, err))
		return
	}
	delay := spec.BackOff[min(n-1, len(spec.BackOff)-1)]
	b.metrics.handled.WithLabelValues(spec.Durable, "retry").Inc()
	b.log.Warn("handler failed; will retry", "consumer", spec.Durable, "id", env.ID, "type", env.Type, "delivery", n, "retryIn", delay, "err", err)
	if nerr := m.NakWithDelay(delay); nerr != nil && ctx.Err() == nil {
		b.log.Warn("nak failed", "consumer", spec.Durable, "err", nerr)
	}
}

// decodeMsg decodes a message of the log and checks that its envelope
// agrees with the subject it was stored under: the subject is what the
// server's permissions vouch for.
func decodeMsg(subject string, data []byte) (*events.Envelope, error) {
	env, err := events.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	if _, err := events.Decode(env); err != nil {
		return nil, err
	}
	if err := events.CheckSubject(subject, env); err != nil {
		return nil, err
	}
	return env, nil
}

func callHandler(ctx context.Context, h events.Handler, env *events.Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, env)
}

// park copies m to the poison stream with the reason and terminates it, so
// the consumer moves on and the message stays available for inspection.
func (b *Bus) park(ctx context.Context, consumer string, m jetstream.Msg, seq uint64, reason string) {
	b.metrics.poison.WithLabelValues(consumer).Inc()
	b.metrics.handled.WithLabelValues(consumer, "poison").Inc()
	b.log.Error("poison message parked", "consumer", consumer, "subject", m.Subject(), "seq", seq, "reason", reason)
	pm := nats.NewMsg(events.PoisonSubject(b.src.Site, consumer))
	pm.Data = m.Data()
	pm.Header.Set(HeaderPoisonReason, truncate(reason, 1024))
	pm.Header.Set(HeaderPoisonSubject, m.Subject())
	pm.Header.Set(HeaderPoisonSequence, strconv.FormatUint(seq, 10))
	pm.Header.Set(HeaderPoisonConsumer, consumer)
	msgID := fmt.Sprintf("poison-%s-%d", consumer, seq)
	if _, err := b.js.PublishMsg(ctx, pm, jetstream.WithMsgID(msgID)); err != nil {
		// Not parked: leave the message to be redelivered rather than lose it.
		b.log.Error("could not park poison message; leaving it for redelivery", "consumer", consumer, "seq", seq, "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	if err := m.Term(); err != nil && ctx.Err() == nil {
		b.log.Warn("terminate poison message", "consumer", consumer, "err", err)
	}
}

// Replay reads the log from the beginning (or from seq) up to its last
// message at the time of the call, in order, and calls fn for every valid
// envelope matching filters. Invalid messages are counted and skipped, never
// fatal. It returns the last stream sequence read, from which a live
// consumer can continue. fn returning an error stops the replay.
//
// From the beginning (from 0 or 1), the facts RolesStream keeps that the
// log's retention took come first, with seq 0: a projection rebuilt from
// the log knows every site's latest role however long ago it changed.
func (b *Bus) Replay(ctx context.Context, from uint64, filters []string, fn func(seq uint64, env *events.Envelope) error) (uint64, error) {
	if from <= 1 {
		kept, err := b.outlived(ctx, filters)
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		for _, env := range kept {
			if err := fn(0, env); err != nil {
				return 0, err
			}
		}
	}
	stream, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	last := info.State.LastSeq
	if last == 0 || from > last {
		return last, nil
	}
	// Every fetch of an ordered consumer first re-creates its server-side
	// consumer, retrying forever by default: with the server gone (a site
	// stopping under the replay) FetchNoWait would never return, and
	// neither would the service. A few tries, then an error.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, MaxResetAttempts: replayResetAttempts}
	if from > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	// The server would keep the consumer for its inactivity threshold
	// (minutes) and refuse new ones past its limit per stream: a status
	// loop or a test replaying every few milliseconds reaches it.
	defer func() {
		info := cons.CachedInfo()
		if info == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := stream.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.log.Debug("replay: delete the consumer; the server drops it when idle", "consumer", info.Name, "err", err)
		}
	}()
	// With filters the last matching message may sit before last; the
	// consumer's pending count says when nothing more is there.
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		n := 0
		var seq uint64
		var pending uint64
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			seq, pending = meta.Sequence.Stream, meta.NumPending
			if seq > last {
				return last, nil
			}
			env, err := decodeMsg(m.Subject(), m.Data())
			if err == nil {
				env.Stored = meta.Timestamp
			}
			if err != nil {
				b.metrics.invalid.WithLabelValues("replay").Inc()
				b.log.Warn("replay skipped an invalid message", "seq", seq, "err", err)
				continue
			}
			if err := fn(seq, env); err != nil {
				return seq, err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return seq, fmt.Errorf("replay: %w", err)
		}
		if n == 0 || seq >= last || pending == 0 {
			return last, nil
		}
	}
}

// replayResetAttempts bounds the re-creations of Replay's consumer (1 s,
// 2 s, 4 s apart).
const replayResetAttempts = 3

func eventAttrs(env *events.Envelope) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("drwatch.event.id", string(env.ID)),
		attribute.String("drwatch.event.type", string(env.Type)),
		attribute.String("drwatch.site", string(env.Site)),
		attribute.String("drwatch.correlation_id", string(env.CorrelationID)),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// headerCarrier adapts NATS headers to OpenTelemetry's propagation.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Follow delivers every valid envelope matching filters from stream
// sequence from (1 or 0: the beginning) onwards, in order, until ctx ends.
// It keeps no state on the server: projections that rebuild from the log on
// start use Replay then Follow from the sequence after it. Invalid messages
// are counted and skipped. An error from fn is logged and the message is
// not retried: projections must treat their input as facts.
func (b *Bus) Follow(ctx context.Context, from uint64, filters []string, fn func(seq uint64, env *events.Envelope)) error {
	stream, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		env, err := decodeMsg(m.Subject(), m.Data())
		if err == nil {
			env.Stored = meta.Timestamp
		}
		if err != nil {
			b.metrics.invalid.WithLabelValues("follow").Inc()
			b.log.Warn("follow skipped an invalid message", "seq", meta.Sequence.Stream, "err", err)
			return
		}
		fn(meta.Sequence.Stream, env)
	})
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}
