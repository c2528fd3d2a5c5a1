// Package watch turns successive replication observations of one server
// into events and repair actions. It is pure: the caller passes the time
// and performs the actions, so every transition is table-tested.
package watch

import (
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Finding is one failing check on one server.
type Finding struct {
	// Check names what failed, e.g. "io_thread", "wal_receiver".
	Check string
	// Error is the server's own error text, or what drwatch saw.
	Error string
	// Repairable says drwatch may try Repair on it.
	Repairable bool
	// Diverged, when not empty, lists what both sides wrote without the
	// other: replication must not resume on its own.
	Diverged []string
	// NeedsResync marks logs the replica needs that the primary no longer
	// has: only a full copy helps.
	NeedsResync bool
	// ResyncCommand is the documented command an operator runs.
	ResyncCommand string
}

// Observation is one check round of one server.
type Observation struct {
	Server string
	// Scope is "site" or "cross".
	Scope    string
	Findings []Finding
	// LagKnown is false when the server is not replicating (no lag to judge).
	LagKnown   bool
	LagSeconds float64
	LagBytes   int64
	// Encrypted says whether the replication link uses TLS: "yes", "no", or
	// "" when unknown or not replicating.
	Encrypted string
}

// Limits come from the mysql/pgsql config sections.
type Limits struct {
	RepairAttempts int
	// BackOff is the wait before the second attempt; it doubles after each.
	BackOff time.Duration
	// LagSeconds and LagBytes trip ReplicationLagHigh; 0 disables each.
	LagSeconds float64
	LagBytes   int64
	AutoResync bool
}

// ActionKind is what the caller must do.
type ActionKind string

// Actions.
const (
	// Repair restarts what the check names (replica threads, WAL receiver).
	Repair ActionKind = "repair"
	// Resync copies the primary in full, then replicates from its position.
	Resync ActionKind = "resync"
	// Hold stops replication that diverged so nothing more is applied.
	Hold ActionKind = "hold"
)

// Action asks the caller to act on one check.
type Action struct {
	Kind    ActionKind
	Check   string
	Attempt int
}

type checkState struct {
	attempts int
	nextTry  time.Time
	gaveUp   bool
	// needsResync is the remedy the check was first reported with.
	needsResync bool
}

// Tracker remembers one server's failing checks between rounds.
type Tracker struct {
	db      events.Database
	limits  Limits
	checks  map[string]*checkState
	lagHigh bool
}

// NewTracker returns a tracker with every check passing.
func NewTracker(db events.Database, limits Limits) *Tracker {
	if limits.BackOff <= 0 {
		limits.BackOff = time.Second
	}
	return &Tracker{db: db, limits: limits, checks: map[string]*checkState{}}
}

// Step compares obs with what the tracker knew and returns the events of
// the transitions and the actions to take now.
func (t *Tracker) Step(now time.Time, obs Observation) ([]events.Event, []Action) {
	var evs []events.Event
	var acts []Action
	seen := map[string]bool{}
	for _, f := range obs.Findings {
		seen[f.Check] = true
		st, known := t.checks[f.Check]
		if known && st.needsResync != f.NeedsResync {
			// The same check now needs another remedy (a reconnecting IO
			// thread turns out to miss purged binlogs): report it afresh.
			known = false
		}
		if !known {
			st = &checkState{needsResync: f.NeedsResync}
			t.checks[f.Check] = st
		}
		if st.gaveUp {
			continue
		}
		switch {
		case len(f.Diverged) > 0:
			// Seed 002: after a dual-primary period resuming would apply one
			// side's writes over the other's. Stop, say what diverged, wait.
			st.gaveUp = true
			evs = append(evs, &events.ReplicationDiverged{
				Database: t.db, Server: obs.Server, Details: f.Diverged, ResyncCommand: f.ResyncCommand,
			})
			acts = append(acts, Action{Kind: Hold, Check: f.Check})
		case f.NeedsResync && !t.limits.AutoResync:
			st.gaveUp = true
			evs = append(evs, t.broken(obs, f, 0, false))
		case !f.Repairable && !f.NeedsResync || t.limits.RepairAttempts == 0:
			st.gaveUp = true
			evs = append(evs, t.broken(obs, f, st.attempts, false))
		case !known:
			evs = append(evs, t.broken(obs, f, 0, true))
			acts = append(acts, t.attempt(now, f, st))
		case now.Before(st.nextTry):
		case st.attempts < t.limits.RepairAttempts:
			acts = append(acts, t.attempt(now, f, st))
		default:
			// Reported once: the operator gets the evidence, not a stream.
			st.gaveUp = true
			evs = append(evs, t.broken(obs, f, st.attempts, false))
		}
	}
	for check, st := range t.checks {
		if seen[check] {
			continue
		}
		delete(t.checks, check)
		evs = append(evs, &events.ReplicationRepaired{
			Database: t.db, Scope: scope(obs.Scope), Server: obs.Server, Check: check, Attempts: st.attempts,
		})
	}
	if obs.LagKnown {
		high := (t.limits.LagSeconds > 0 && obs.LagSeconds > t.limits.LagSeconds) ||
			(t.limits.LagBytes > 0 && obs.LagBytes > t.limits.LagBytes)
		switch {
		case high && !t.lagHigh:
			evs = append(evs, &events.ReplicationLagHigh{
				Database: t.db, Server: obs.Server, LagSeconds: obs.LagSeconds, LagBytes: nonNeg(obs.LagBytes),
				ThresholdSeconds: t.limits.LagSeconds, ThresholdBytes: t.limits.LagBytes,
			})
		case !high && t.lagHigh:
			evs = append(evs, &events.ReplicationLagRecovered{
				Database: t.db, Server: obs.Server, LagSeconds: obs.LagSeconds, LagBytes: nonNeg(obs.LagBytes),
			})
		}
		t.lagHigh = high
	}
	return evs, acts
}

// Forget drops what the tracker knows of check, so a later failure is
// reported afresh (after an operator's resync command, for instance).
func (t *Tracker) Forget(check string) { delete(t.checks, check) }

func (t *Tracker) attempt(now time.Time, f Finding, st *checkState) Action {
	st.attempts++
	st.nextTry = now.Add(t.limits.BackOff << (st.attempts - 1))
	kind := Repair
	if f.NeedsResync {
		kind = Resync
	}
	return Action{Kind: kind, Check: f.Check, Attempt: st.attempts}
}

func (t *Tracker) broken(obs Observation, f Finding, attempts int, repairable bool) *events.ReplicationBroken {
	msg := f.Error
	if !repairable && f.ResyncCommand != "" {
		msg += "; resync with: " + f.ResyncCommand
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	return &events.ReplicationBroken{
		Database: t.db, Scope: scope(obs.Scope), Server: obs.Server, Check: f.Check,
		Error: msg, Attempts: attempts, Repairable: repairable,
	}
}

func scope(s string) string {
	if s == "cross" {
		return s
	}
	return "site"
}

func nonNeg(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}
