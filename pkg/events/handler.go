package events

import "context"

// Handler processes one envelope. An error means "try again later"; the bus
// redelivers with back-off.
type Handler func(ctx context.Context, env *Envelope) error

// Handle adapts a typed handler to a Handler: it decodes and validates the
// payload as E before calling fn. Envelopes of other types are ignored.
func Handle[E Event](fn func(ctx context.Context, env *Envelope, ev E) error) (Type, Handler) {
	var zero E
	return zero.EventType(), func(ctx context.Context, env *Envelope) error {
		ev, err := DecodeInto[E](env)
		if err != nil {
			return err
		}
		return fn(ctx, env, ev)
	}
}

// Mux routes envelopes to the handler registered for their type.
type Mux struct {
	handlers map[Type]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[Type]Handler{}} }

// On registers h for t, as returned by Handle.
func (m *Mux) On(t Type, h Handler) *Mux {
	m.handlers[t] = h
	return m
}

// Types lists the types the mux handles.
func (m *Mux) Types() []Type {
	ts := make([]Type, 0, len(m.handlers))
	for t := range m.handlers {
		ts = append(ts, t)
	}
	return ts
}

// Handle implements Handler; types without a handler are acknowledged and
// skipped.
func (m *Mux) Handle(ctx context.Context, env *Envelope) error {
	h, ok := m.handlers[env.Type]
	if !ok {
		return nil
	}
	return h(ctx, env)
}
