// Package monitor runs the replication check loop of one database kind and
// answers the orchestrator's database commands.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// Target is one database server seen by the loop: MariaDB/MySQL or
// PostgreSQL.
type Target interface {
	Database() events.Database
	// Observe takes one reading; a connection failure is a finding, not an
	// error.
	Observe(ctx context.Context, expectReplica bool) watch.Observation
	// Act carries out a repair, resync or hold.
	Act(ctx context.Context, a watch.Action) error
	// Command executes an orchestrator command and fills the answer.
	Command(ctx context.Context, cmd events.DatabaseCommand) (events.DatabaseCommandDone, error)
}

// Publisher is the part of the bus the monitor uses.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, parent *events.Envelope) (*events.Envelope, error)
}

// Roles tells whether this site is standby now (its database replicates).
type Roles interface {
	Current() (events.Role, events.Epoch)
}

// Monitor checks one target every interval.
type Monitor struct {
	Target   Target
	Interval time.Duration
	Limits   watch.Limits
	Bus      Publisher
	Roles    Roles
	Log      *slog.Logger
	Now      func() time.Time
	// Rounds, when set, receives each observation (tests and benchmarks).
	Rounds chan<- watch.Observation

	tracker   *watch.Tracker
	encrypted string
}

// Run checks until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	m.tracker = watch.NewTracker(m.Target.Database(), m.Limits)
	t := time.NewTicker(m.Interval)
	defer t.Stop()
	for {
		m.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round runs one check, publishes the transitions and takes the actions.
func (m *Monitor) Round(ctx context.Context) {
	if m.tracker == nil {
		m.tracker = watch.NewTracker(m.Target.Database(), m.Limits)
	}
	role, _ := m.Roles.Current()
	expectReplica := role != events.Role("active") && role != events.Role("standalone")
	cctx, cancel := context.WithTimeout(ctx, max(m.Interval, 5*time.Second))
	obs := m.Target.Observe(cctx, expectReplica)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if obs.Encrypted != "" && obs.Encrypted != m.encrypted {
		m.Log.Info("replication link", "server", obs.Server, "tls", obs.Encrypted)
		m.encrypted = obs.Encrypted
	}
	evs, acts := m.tracker.Step(m.Now(), obs)
	if !expectReplica {
		// An automatic rebuild never replaces the active site's data.
		acts = slices.DeleteFunc(acts, func(a watch.Action) bool {
			if a.Kind == watch.Resync {
				m.Log.Warn("automatic resync refused: this site is not standby", "role", role, "check", a.Check, "server", obs.Server)
				return true
			}
			return false
		})
	}
	for _, ev := range evs {
		if _, err := m.Bus.Publish(ctx, ev, nil); err != nil {
			m.Log.Error("publish", "type", ev.EventType(), "err", err)
		}
	}
	for _, a := range acts {
		m.Log.Info("acting", "kind", a.Kind, "check", a.Check, "attempt", a.Attempt, "server", obs.Server)
		actx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		err := m.Target.Act(actx, a)
		cancel()
		if err != nil {
			m.Log.Warn("action failed", "kind", a.Kind, "check", a.Check, "err", err)
		}
	}
	if m.Rounds != nil {
		select {
		case m.Rounds <- obs:
		default:
		}
	}
}

// ErrUnknownCommand marks a command this build does not execute.
var ErrUnknownCommand = errors.New("unknown database command")

// Refusals of a resync that would replace data which may be the only copy
// of what the pair wrote; DatabaseCommand.Force overrides both.
var (
	// ErrActiveSite: this site is active (or standalone), its database is
	// the one clients write to.
	ErrActiveSite = errors.New("this site is active")
	// ErrIsPrimary: the server follows no primary (PostgreSQL out of
	// recovery, MariaDB/MySQL without a replica connection).
	ErrIsPrimary = errors.New("the server is a primary")
)

// GuardResync refuses a resync on a site whose role is active or
// standalone unless the command is forced. Other commands pass.
func GuardResync(cmd events.DatabaseCommand, site events.SiteID, role events.Role) error {
	if cmd.Command != "resync" || cmd.Force {
		return nil
	}
	if role == events.RoleActive || role == events.RoleStandalone {
		return fmt.Errorf("resync of %s refused: %w: site %s is %s, its database is the one clients write to; a resync would replace it with the peer's copy. Make this site standby first, or send the resync with force",
			cmd.Database, ErrActiveSite, site, role)
	}
	return nil
}

// HandleCommand executes cmd and publishes DatabaseCommandDone with env as
// parent. A failed command is an answer with OK false, not a redelivery:
// the orchestrator decides what to do next.
func HandleCommand(ctx context.Context, t Target, pub Publisher, log *slog.Logger, env *events.Envelope, cmd events.DatabaseCommand) error {
	done, err := t.Command(ctx, cmd)
	done.Command, done.Database, done.FailoverID, done.FollowEpoch = cmd.Command, cmd.Database, cmd.FailoverID, cmd.FollowEpoch
	done.OK = err == nil
	if err != nil {
		done.Error = truncate(err.Error(), 4096)
		log.Warn("database command failed", "command", cmd.Command, "err", err)
	} else if done.Error != "" {
		// An OK answer with a warning (a forced promotion's discarded
		// transactions).
		done.Error = truncate(done.Error, 4096)
		log.Warn("database command done with a warning", "command", cmd.Command, "warning", done.Error)
	}
	done.LagBytes, done.LagTransactions = max(done.LagBytes, 0), max(done.LagTransactions, 0)
	if _, perr := pub.Publish(ctx, &done, env); perr != nil {
		return fmt.Errorf("answer %s: %w", cmd.Command, perr)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
