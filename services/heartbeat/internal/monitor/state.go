// Package monitor runs the local monitors of seed 004 — service, process,
// memory, CPU, disk and custom script — every interval, and says when one
// reaches its failure limit (tripped) and when it passes again (recovered).
package monitor

import (
	"github.com/drwatch/drwatch/pkg/events"
)

// Spec is one monitor's policy.
type Spec struct {
	Name        string
	Kind        string
	MaxFailures int
	LogOnly     bool
	// Scope: primary, standby or both.
	Scope string
}

// State counts a monitor's consecutive failures.
type State struct {
	Failures int
	Tripped  bool
}

// Step applies one check's outcome (err nil: passed) and returns the new
// state and the event to publish, if any. Seed 004 trips a monitor after
// MaxFailures failed checks; we count consecutive failures, so one good
// check in between starts the count again — a monitor that fails one check
// in ten never trips.
func Step(s Spec, st State, err error) (State, events.Event) {
	if err == nil {
		if st.Tripped {
			return State{}, &events.MonitorRecovered{Monitor: s.Name, Kind: s.Kind}
		}
		return State{}, nil
	}
	st.Failures++
	if st.Tripped || st.Failures < s.MaxFailures {
		return st, nil
	}
	st.Tripped = true
	return st, &events.MonitorTripped{
		Monitor:  s.Name,
		Kind:     s.Kind,
		Failures: st.Failures,
		Detail:   truncate(err.Error(), 2048),
		// Seed 004: a monitor scoped to the standby only records its
		// failures; it never moves a role, whatever failover policy says.
		LogOnly: s.LogOnly || s.Scope == "standby",
	}
}

// InScope reports whether a monitor with scope runs while the site has
// role. Seed 004's primary is drwatch's active site; a standalone site
// serves, so it counts as primary.
func InScope(scope string, role events.Role) bool {
	switch scope {
	case "both":
		return true
	case "primary":
		return role == events.RoleActive || role == events.RoleStandalone
	case "standby":
		return role == events.RoleStandby
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
