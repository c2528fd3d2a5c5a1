package events

import (
	"encoding/json"
	"reflect"
	"slices"
)

// kind describes one registered event type.
type kind struct {
	typ    Type
	goType reflect.Type
	decode func(json.RawMessage) (Event, error)
}

func register[E Event]() kind {
	var zero E
	return kind{
		typ:    zero.EventType(),
		goType: reflect.TypeOf(zero),
		decode: func(raw json.RawMessage) (Event, error) {
			var ev E
			err := json.Unmarshal(raw, &ev)
			return ev, err
		},
	}
}

// registry lists every event type this build knows. Add new types here.
var registry = indexKinds(
	register[RemoteUnreachable](),
	register[RemoteReachable](),
	register[PeerVIPMovedLocally](),
	register[MonitorTripped](),
	register[MonitorRecovered](),
	register[ConfigChecked](),

	register[ArbitrationDecided](),
	register[ArbiterQuorumLow](),
	register[FailureDetectionFailed](),
	register[ArbitersClaimRequested](),
	register[ArbitersClaimed](),

	register[ReplicationBroken](),
	register[ReplicationRepaired](),
	register[ReplicationLagHigh](),
	register[ReplicationLagRecovered](),
	register[ReplicationDiverged](),
	register[DatabaseCommand](),
	register[DatabaseCommandDone](),

	register[FileSyncCompleted](),
	register[FileSyncFailed](),

	register[FailoverRequested](),
	register[FailoverStarted](),
	register[FailoverStepDone](),
	register[FailoverCompleted](),
	register[FailoverAborted](),
	register[RoleChanged](),
	register[RoleConfirmed](),
	register[AutomaticFailoverChanged](),
	register[FailoverDecided](),
	register[FailoverAcknowledged](),
	register[MaintenanceChanged](),
	register[VIPChanged](),
	register[PairSettings](),

	register[NotificationSent](),
	register[NotificationSuppressed](),

	register[ConfigUpdated](),
)

func indexKinds(kinds ...kind) map[Type]kind {
	m := make(map[Type]kind, len(kinds))
	for _, k := range kinds {
		if _, dup := m[k.typ]; dup {
			panic("events: type registered twice: " + string(k.typ))
		}
		m[k.typ] = k
	}
	return m
}

// lookup returns the registration of t.
func lookup(t Type) (kind, bool) {
	k, ok := registry[t]
	return k, ok
}

// Types lists every known event type, sorted.
func Types() []Type {
	ts := make([]Type, 0, len(registry))
	for t := range registry {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}
