// Package events defines drwatch's typed events, the envelope every event
// travels in, the subject scheme of a site's log, and their validation.
//
// One Go type per event; each implements Event. Producers build an Envelope
// with New, consumers decode with Decode or the generic Handle.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the envelope and payload schema version written by this
// build. Consumers accept any version up to it.
const SchemaVersion = 1

// Type names an event type, e.g. "RemoteUnreachable". It is also the last
// token of the event's subject.
type Type string

// ID is the unique id of one event. It is also the JetStream message id, so a
// republished event is dropped by the stream's duplicate window.
type ID string

// SiteID names a site. It is also the site's JetStream domain and a token of
// every subject the site publishes.
type SiteID string

// CorrelationID ties together every event of one incident.
type CorrelationID string

// Event is implemented by every event payload type.
type Event interface {
	EventType() Type
}

// Envelope is the common frame of every event on the bus.
type Envelope struct {
	ID            ID              `json:"id" validate:"required,max=64"`
	Type          Type            `json:"type" validate:"required,max=64"`
	SchemaVersion int             `json:"schemaVersion" validate:"gte=1"`
	Site          SiteID          `json:"site" validate:"required,sitename"`
	Node          string          `json:"node" validate:"required,max=128"`
	Service       string          `json:"service" validate:"required,token"`
	Time          time.Time       `json:"time" validate:"required"`
	CorrelationID CorrelationID   `json:"correlationId,omitempty" validate:"max=64"`
	CausationID   ID              `json:"causationId,omitempty" validate:"max=64"`
	Payload       json.RawMessage `json:"payload" validate:"required"`
	// Stored is when this site's log stored the envelope, by this site's
	// clock (the stream's timestamp), set by the bus on delivery; zero for
	// an envelope not read from a log. For the peer's events it is when
	// they reached this site, which rules comparing ages read instead of
	// Time, set by the peer's clock.
	Stored time.Time `json:"-"`
}

// Source identifies who publishes: the site, the node and the service.
type Source struct {
	Site    SiteID
	Node    string
	Service string
}

// Sentinel errors callers test with errors.Is.
var (
	// ErrInvalid marks an event or envelope that fails validation.
	ErrInvalid = errors.New("invalid event")
	// ErrUndecodable marks bytes that are not an envelope or a payload of
	// the named type.
	ErrUndecodable = errors.New("undecodable event")
	// ErrUnknownType marks an envelope whose type this build does not know.
	ErrUnknownType = errors.New("unknown event type")
)

// NewID returns a fresh, time-ordered event id.
func NewID() ID {
	return ID(uuid.Must(uuid.NewV7()).String())
}

// New wraps ev in a validated envelope from src at time now. parent, when not
// nil, is the event that caused this one: its correlation id is carried over
// and its id becomes the causation id. Without a parent the new event starts
// an incident of its own (its correlation id is its id).
func New(src Source, ev Event, now time.Time, parent *Envelope) (*Envelope, error) {
	if err := Validate(ev); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", ev.EventType(), err)
	}
	env := &Envelope{
		ID:            NewID(),
		Type:          ev.EventType(),
		SchemaVersion: SchemaVersion,
		Site:          src.Site,
		Node:          src.Node,
		Service:       src.Service,
		Time:          now.UTC(),
		Payload:       payload,
	}
	env.CorrelationID = CorrelationID(env.ID)
	if parent != nil {
		env.CausationID = parent.ID
		if parent.CorrelationID != "" {
			env.CorrelationID = parent.CorrelationID
		}
	}
	if err := ValidateEnvelope(env); err != nil {
		return nil, err
	}
	return env, nil
}

// Marshal encodes the envelope as JSON.
func (e *Envelope) Marshal() ([]byte, error) {
	return json.Marshal(e)
}

// Unmarshal decodes and validates an envelope. It does not decode the
// payload; see Decode for that.
func Unmarshal(data []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if err := ValidateEnvelope(&env); err != nil {
		return nil, err
	}
	return &env, nil
}

// DecodeInto decodes the envelope's payload into ev, which must be a pointer
// to the payload type named by the envelope, and validates it.
func DecodeInto[E Event](env *Envelope) (E, error) {
	var ev E
	if env.Type != ev.EventType() {
		return ev, fmt.Errorf("%w: envelope %s holds %s, not %s", ErrUndecodable, env.ID, env.Type, ev.EventType())
	}
	if err := json.Unmarshal(env.Payload, &ev); err != nil {
		return ev, fmt.Errorf("%w: %s payload of %s: %v", ErrUndecodable, env.Type, env.ID, err)
	}
	if err := Validate(ev); err != nil {
		return ev, fmt.Errorf("event %s: %w", env.ID, err)
	}
	return ev, nil
}

// Decode decodes the payload of env into the registered type for env.Type and
// validates it.
func Decode(env *Envelope) (Event, error) {
	proto, ok := lookup(env.Type)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, env.Type)
	}
	ev, err := proto.decode(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %s payload of %s: %v", ErrUndecodable, env.Type, env.ID, err)
	}
	if err := Validate(ev); err != nil {
		return nil, fmt.Errorf("event %s: %w", env.ID, err)
	}
	return ev, nil
}
