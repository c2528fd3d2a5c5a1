// Package state is the orchestrator's view of the pair, folded from the
// site's event log. It is the only state the orchestrator keeps: a restart
// replays the log through Apply and arrives at the same State.
package pair

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Verdict is this site's latest failure-detection verdict.
type Verdict struct {
	Action    events.Action
	Branch    string
	WaitUntil *time.Time
	At        time.Time
}

// Saga is a failover in progress (or the last one), as the log tells it.
type Saga struct {
	ID        string
	From, To  events.Role
	Epoch     events.Epoch
	Manual    bool
	Force     bool
	Reason    string
	RequestID events.ID
	Steps     []string
	// Done holds the steps recorded with ok=true.
	Done      map[string]bool
	StartedAt time.Time
	// RoleChanged: the saga's RoleChanged is in the log.
	RoleChanged bool
	Finished    bool
	Aborted     bool
	AbortedAt   time.Time
	AbortReason string
	// Interrupted: a restart cut the promotion short (not a refusal).
	Interrupted bool
	// StandDown: the demotion of a site restarted active without its peer.
	StandDown bool
}

// NextStep is the first planned step not yet done, or "" when all are.
func (s *Saga) NextStep() string {
	for _, st := range s.Steps {
		if !s.Done[st] {
			return st
		}
	}
	return ""
}

// Request is a FailoverRequested aimed at this site that no saga or
// decision has answered yet.
type Request struct {
	ID events.ID
	events.FailoverRequested
	// At is when the issuer recorded it, by the issuer's clock.
	At time.Time
	// Received is when this site's log stored it, by this site's clock
	// (the envelope's Stored; At when the envelope was not read from a
	// log).
	Received time.Time
}

// DBKey names one database command of one saga.
type DBKey struct {
	FailoverID string
	Command    string
	Database   events.Database
}

// Decided is the last FailoverDecided, so a standing decision is recorded
// once, not on every tick.
type Decided struct {
	Action      events.Action
	Branch      string
	Blocked     bool
	ObserveOnly bool
}

// State is the projection. Zero values mean "not seen in the log".
type State struct {
	Site, Peer events.SiteID

	Role  events.Role
	Epoch events.Epoch
	// RoleKnown: this site's log holds one of its own RoleChanged.
	RoleKnown bool
	// MaxEpoch is the highest epoch seen from either site.
	MaxEpoch events.Epoch

	PeerRole  events.Role
	PeerEpoch events.Epoch
	// ActiveEpoch and PeerActiveEpoch are the highest epochs at which
	// this site and the peer became active (0: never). Epochs are unique
	// per site (decide.NextEpoch), so at most one site holds the highest.
	ActiveEpoch, PeerActiveEpoch events.Epoch
	// LastActive is the site that became active at the highest epoch, ""
	// when neither ever did. Both sites compute it from the same facts
	// whatever order their logs received them in.
	LastActive events.SiteID
	// PeerSaga is the peer's latest saga as its sourced log tells it.
	PeerSaga *Saga
	// Promoted is, per database, the epoch of this site's saga that last
	// promoted its server; with ActiveEpoch it tells whether the server
	// holds the pair's latest history (OwnsLineage).
	Promoted map[events.Database]events.Epoch
	// PeerPromoted is the highest epoch of a peer saga that promoted a
	// database, whether or not that saga went on to announce active.
	PeerPromoted events.Epoch
	// OwnLineage and PeerLineage are the highest Lineage each site's
	// RoleChanged events carried (Lineage folds them in).
	OwnLineage, PeerLineage events.Epoch
	// BothStandbySince is when both sites became standby — the later of
	// the moments each began its standby spell, whatever order the log
	// received them in — zero otherwise.
	BothStandbySince time.Time
	// standbySince and peerStandbySince are when each site's current
	// standby spell began (zero while it is not standby).
	standbySince, peerStandbySince time.Time

	// Lines is each configured heartbeat line's last announcement. A line
	// no longer configured is left out: its last status stays in the log
	// forever, and a stale "answers" would hold every failover back, a
	// stale "lost" would count towards one.
	Lines            map[string]Line
	configured       map[string]bool
	UnreachableSince time.Time

	Verdict *Verdict

	// AutomaticSet: an AutomaticFailoverChanged overrides the configured
	// failover.automatic.
	AutomaticSet   bool
	Automatic      bool
	AutomaticUntil *time.Time
	// Settings and PeerSettings are the latest PairSettings of this site
	// and of the peer (nil: none recorded).
	Settings, PeerSettings []events.Setting

	// AutomaticBy and AutomaticAt are the site that recorded the switch
	// and when, by that site's clock.
	AutomaticBy events.SiteID
	AutomaticAt time.Time

	// Lag is this site's replica lag per database, as last reported, each
	// database in its own unit.
	Lag map[events.Database]Lag

	// LastFailoverAt is the end of the last completed failover to active
	// (either site); Acknowledged says an operator acknowledged it, or
	// asked for it (a manual failover needs no acknowledgement).
	LastFailoverAt time.Time
	Acknowledged   bool

	Saga    *Saga
	Pending *Request
	DBDone  map[DBKey]events.DatabaseCommandDone
	// PeerStandbyAfter is when the peer last announced standby, used by a
	// fencing step waiting for it.
	PeerStandbyAt time.Time
	LastDecided   Decided

	// EverActive: this site's log holds it becoming active at least once.
	// Only such a site can hold databases that no longer follow the
	// active peer: one that was always standby replicates from the peer
	// since it was installed.
	EverActive bool
	// Follow is, per database, the re-pointing of this standby site's
	// server at the active peer (FollowID commands and their answers).
	Follow map[events.Database]Follow

	// StoodDownAt is when this site, restarted active while it could not
	// hear its peer, stood down (RestartStandDownReason) instead of
	// resuming; zero once any other RoleChanged of its own follows. Such a
	// site was active last, and arbitration, not its old log, decides
	// whether it takes over again.
	StoodDownAt time.Time
	// LastClaim is the arbiter service's latest answer to a claim of the
	// arbiters by this site (events.ArbitersClaimed).
	LastClaim *events.ArbitersClaimed
	// ReachableAt is when the heartbeat last heard the peer again after
	// losing it: the sourced copy of the peer's log catches up only
	// after that.
	ReachableAt time.Time
	// Claim is this site's open claim of the arbiters, nil when none: the
	// arbiter service holds the managing sessions from the request until
	// the claim fails, its failover aborts or the site leaves active.
	Claim *Claim
	// ConfirmedAt is when this site's orchestrator last settled its role
	// (its latest RoleConfirmed or RoleChanged), zero when never.
	ConfirmedAt time.Time
	// PeerClockAhead is the most the peer's clock stamped one of its
	// events ahead of the moment this site's log stored it, over the
	// events stored within ClockWindow of that one (negative: behind, or
	// delayed on the way). A positive figure is a lower bound of how far
	// the peer's clock runs ahead of this one; the peer measures the
	// other direction. PeerClockAt is when that event was stored.
	PeerClockAhead time.Duration
	PeerClockAt    time.Time
	// PeerAnswer is the peer's latest answer to a request aimed at it: a
	// decision (FailoverDecided) or a failover it started for it.
	PeerAnswer *Answer

	// Maintenance is the pair's latest MaintenanceChanged, recorded by
	// either site (nil: none); Mode reads it at a given time.
	Maintenance *events.MaintenanceChanged
	// MaintenanceBy and MaintenanceAt are the site that recorded it and
	// when.
	MaintenanceBy events.SiteID
	MaintenanceAt time.Time
}

// Mode is the pair's maintenance mode at now: events.MaintenanceOff,
// MaintenancePaused or MaintenanceObserveOnly. A timed mode ends at its
// Until by this site's clock: maintenance holds promotions back only, so
// two clocks reading its end apart cannot make two actives.
func (s *State) Mode(now time.Time) string {
	m := s.Maintenance
	if m == nil || (m.Until != nil && !now.Before(*m.Until)) {
		return events.MaintenanceOff
	}
	return m.Mode
}

// Answer is a site's answer to a FailoverRequested.
type Answer struct {
	RequestID events.ID
	// Decided: a FailoverDecided with its branch; else the failover
	// FailoverID was started for the request.
	Decided    bool
	Action     events.Action
	Branch     string
	Reason     string
	Blocked    bool
	FailoverID string
}

// ClockWindow is how long the largest clock difference measured stands
// before a smaller one replaces it: one event delayed on the way must not
// hide a clock running ahead.
const ClockWindow = 10 * time.Minute

// Line is what the heartbeat last announced about the peer on one line.
type Line struct {
	// Up: the peer answers (RemoteReachable), or nothing was announced
	// against it yet.
	Up bool
	// Moved: the peer's VIP answers here (PeerVIPMovedLocally); Up keeps
	// the line's last reachability.
	Moved bool
	// Since is when the line lost the peer (RemoteUnreachable.Since).
	Since time.Time
	// LastReply is when the peer last answered on the line before it was
	// lost (RemoteUnreachable.LastReply; zero: not known).
	LastReply time.Time
	// Event is the announcement itself; a verdict cites the loss as its
	// parent.
	Event *events.Envelope
}

// Claim is an open ArbitersClaimRequested of this site.
type Claim struct {
	ID string
	// At is when it was (last) requested.
	At       time.Time
	Answered bool
}

// ClockSkew is how far apart the sites' clocks, plus the delay of sourcing
// one site's log into the other's, may be for the rules that compare a time
// recorded on one site with the other's clock (a timed disable's Until, a
// switch recorded just before a cut). NTP keeps sites within milliseconds;
// the rest is room for a sourcing backlog.
const ClockSkew = 10 * time.Second

// RestartStandDownReason is the reason of the demotion a site runs when
// it restarts active without its peer (decide.Restart); the projection
// recognises the stand-down by FailoverStarted.StandDown.
const RestartStandDownReason = "restarted without its peer: stands down; arbitration decides whether it takes over again"

// Follow is the last re-pointing of one database at the active peer.
type Follow struct {
	// Epoch is the peer's active epoch the commands followed.
	Epoch    events.Epoch
	Attempts int
	IssuedAt time.Time
	// Answered: dbmonitor answered the last command, OK or not.
	Answered, OK bool
	AnsweredAt   time.Time
}

// FollowID is the FailoverID a re-pointing command carries, naming the
// peer's epoch it follows for a reader of the log; the projection reads
// the command's FollowEpoch.
func FollowID(epoch events.Epoch) string { return "follow@" + strconv.FormatUint(uint64(epoch), 10) }

// New returns the state before any event: the configured role at epoch 0.
// lines are the heartbeat lines the heartbeat probes
// (config.HeartbeatLineNames).
func New(site, peer events.SiteID, role events.Role, lines []string) *State {
	configured := make(map[string]bool, len(lines))
	for _, l := range lines {
		configured[l] = true
	}
	return &State{
		Site: site, Peer: peer, Role: role,
		Lines:      map[string]Line{},
		configured: configured,
		Lag:        map[events.Database]Lag{},
		DBDone:     map[DBKey]events.DatabaseCommandDone{},
		Follow:     map[events.Database]Follow{},
		Promoted:   map[events.Database]events.Epoch{},
	}
}

// Clone returns a deep enough copy for a decision to read while the fold
// goes on.
func (s *State) Clone() *State {
	c := *s
	c.Lines = maps.Clone(s.Lines)
	c.Lag = maps.Clone(s.Lag)
	c.DBDone = maps.Clone(s.DBDone)
	c.Follow = maps.Clone(s.Follow)
	c.Promoted = maps.Clone(s.Promoted)
	if s.PeerSaga != nil {
		g := *s.PeerSaga
		c.PeerSaga = &g
	}
	if s.Verdict != nil {
		v := *s.Verdict
		c.Verdict = &v
	}
	if s.Saga != nil {
		g := *s.Saga
		g.Steps = slices.Clone(s.Saga.Steps)
		g.Done = maps.Clone(s.Saga.Done)
		c.Saga = &g
	}
	if s.Pending != nil {
		p := *s.Pending
		c.Pending = &p
	}
	if s.Claim != nil {
		cl := *s.Claim
		c.Claim = &cl
	}
	if s.PeerAnswer != nil {
		a := *s.PeerAnswer
		c.PeerAnswer = &a
	}
	return &c
}

// PeerUnreachable reports whether every configured heartbeat line says the
// peer does not answer. A line never heard from counts as answering: the
// heartbeat announces only changes, so a line up since it started has said
// nothing, and one line down beside it is not a lost peer.
func (s *State) PeerUnreachable() bool {
	if len(s.configured) == 0 {
		return false
	}
	for l := range s.configured {
		if line, heard := s.Lines[l]; !heard || line.Up {
			return false
		}
	}
	return true
}

// Watches reports whether line is one of the heartbeat lines the pair's
// reachability is judged on (configured).
func (s *State) Watches(line string) bool { return s.configured[line] }

// Cause is the RemoteUnreachable that completed the loss of the peer (the
// latest of the lines' losses), nil while the peer is not unreachable.
func (s *State) Cause() *events.Envelope {
	if !s.PeerUnreachable() {
		return nil
	}
	var last *events.Envelope
	for l := range s.configured {
		if e := s.Lines[l].Event; e != nil && (last == nil || e.Time.After(last.Time)) {
			last = e
		}
	}
	return last
}

// OpenClaim returns a copy of this site's open claim, nil when none.
func (s *State) OpenClaim() *Claim {
	if s.Claim == nil {
		return nil
	}
	c := *s.Claim
	return &c
}

// NoteClaimAnswer records an answer to claim id given by this process
// before its ArbitersClaimed comes back from the log, so that a failed
// claim lets go of the sessions at once. Apply folds the same answer.
func (s *State) NoteClaimAnswer(id, outcome string) {
	if c := s.Claim; c != nil && c.ID == id {
		c.Answered = true
		if outcome != events.ClaimClear {
			s.Claim = nil
		}
	}
}

// SagaRunning reports a started saga without Completed or Aborted.
func (s *State) SagaRunning() bool { return s.Saga != nil && !s.Saga.Finished }

// PeerSagaRunning reports a saga of the peer started and not yet ended,
// as far as the sourced copy of its log tells.
func (s *State) PeerSagaRunning() bool { return s.PeerSaga != nil && !s.PeerSaga.Finished }

// PeerPromoting reports a promotion of the peer started and not yet ended.
func (s *State) PeerPromoting() bool {
	return s.PeerSagaRunning() && s.PeerSaga.To == events.RoleActive
}

// PeerDemoting reports a demotion of the peer started and not yet ended.
func (s *State) PeerDemoting() bool {
	return s.PeerSagaRunning() && s.PeerSaga.To == events.RoleStandby
}

// Lineage is the epoch of the newest history a site's databases hold: the
// highest at which it became active or promoted a database. The site with
// the higher one holds what the other lacks.
func (s *State) Lineage() (own, peer events.Epoch) {
	own = max(s.ActiveEpoch, s.OwnLineage)
	for _, e := range s.Promoted {
		own = max(own, e)
	}
	return own, max(s.PeerActiveEpoch, s.PeerPromoted, s.PeerLineage)
}

// LineageAfter is the Lineage this site's RoleChanged rc carries: its
// lineage, and rc's epoch too when it becomes active.
func (s *State) LineageAfter(rc events.RoleChanged) events.Epoch {
	own, _ := s.Lineage()
	if rc.To == events.RoleActive {
		own = max(own, rc.Epoch)
	}
	return own
}

// Leader is the site whose databases hold the newest history (Lineage),
// "" when neither was ever active nor promoted anything. Both sites compute
// it alike from the same facts; the liveness rule makes it active again.
func (s *State) Leader() events.SiteID {
	own, peer := s.Lineage()
	switch {
	case own > peer:
		return s.Site
	case peer > own:
		return s.Peer
	}
	return ""
}

// OwnsLineage reports whether this site's server of db holds the pair's
// latest history: this site became active, or promoted db, at an epoch
// above any at which the peer became active since. Such a server follows
// no primary and yet lacks nothing: a position check must not refuse it.
func (s *State) OwnsLineage(db events.Database) bool {
	own := max(s.ActiveEpoch, s.Promoted[db])
	_, peer := s.Lineage()
	return own > 0 && own > peer
}

// Stale reports whether request r was issued before the highest epoch
// this site knows: it answers a pair that has changed since.
func (s *State) Stale(r *Request) bool { return r.Epoch < s.MaxEpoch }

// Expired says why request r no longer holds at now, "" while it does: it
// reached this site more than ttl ago by this site's own clock, or the
// issuer recorded it more than ttl ago by its clock allowing for skew (a
// request that crossed a cut arrives late, its reception fresh). The
// issuer waits ttl for an answer at most (the CLI's default wait, a fence's
// timeout); a request acted on later would surprise it. 0: never expires.
func (s *State) Expired(r *Request, now time.Time, ttl, skew time.Duration) string {
	switch {
	case ttl <= 0:
		return ""
	case now.Sub(r.Received) > ttl:
		return fmt.Sprintf("it reached this site at %s, more than %s ago", r.Received.UTC().Format(time.RFC3339), ttl)
	case now.Sub(r.At) > ttl+skew:
		return fmt.Sprintf("it was issued at %s by its site's clock, more than %s (and %s of clock skew) ago", r.At.UTC().Format(time.RFC3339), ttl, skew)
	}
	return ""
}

// ClockProblem says how the peer's clock breaks bound, "" when it does not
// as far as this site can tell: the rules that compare a time one site
// recorded with the other's clock (a timed disable's Until, a switch
// recorded before a cut, a request's age) allow bound between them.
func (s *State) ClockProblem(bound time.Duration) string {
	if s.PeerClockAhead <= bound {
		return ""
	}
	return fmt.Sprintf("site %s's clock runs at least %s ahead of site %s's (an event of its was stamped that far in this site's future); the sites' clocks must agree within %s: check NTP on both",
		s.Peer, s.PeerClockAhead.Round(time.Second), s.Site, bound)
}

// Types are the event types the projection folds.
var Types = []events.Type{
	"RoleChanged", "FailoverRequested", "FailoverStarted", "FailoverStepDone",
	"FailoverCompleted", "FailoverAborted", "FailoverDecided", "FailoverAcknowledged",
	"AutomaticFailoverChanged", "ArbitrationDecided", "RemoteUnreachable",
	"RemoteReachable", "DatabaseCommandDone", "ReplicationLagHigh",
	"ReplicationLagRecovered", "DatabaseCommand", "ArbitersClaimed",
	"PairSettings", "RoleConfirmed", "ArbitersClaimRequested", "PeerVIPMovedLocally",
	"MaintenanceChanged",
}

// Apply folds one event into the state. Events it does not know, from a
// third site, or that do not decode are ignored: the log was validated on
// the way in and a projection must never stop on history.
func (s *State) Apply(env *events.Envelope) {
	own := env.Site == s.Site
	if !own && env.Site != s.Peer {
		return
	}
	ev, err := events.Decode(env)
	if err != nil {
		return
	}
	if ahead := env.Time.Sub(env.Stored); !own && !env.Stored.IsZero() &&
		(s.PeerClockAt.IsZero() || ahead >= s.PeerClockAhead || env.Stored.Sub(s.PeerClockAt) > ClockWindow) {
		s.PeerClockAhead, s.PeerClockAt = ahead, env.Stored
	}
	switch e := ev.(type) {
	case events.RoleChanged:
		s.applyRole(own, e, env.Time)
	case events.FailoverRequested:
		if e.Target == s.Site {
			received := env.Stored
			if received.IsZero() {
				received = env.Time
			}
			s.Pending = &Request{ID: env.ID, FailoverRequested: e, At: env.Time, Received: received}
		}
	case events.FailoverStarted:
		if e.Epoch > s.MaxEpoch {
			// The peer's epochs too, aborted ones included: a site must
			// not open an epoch below one the peer already opened.
			s.MaxEpoch = e.Epoch
		}
		if !own {
			s.PeerSaga = &Saga{ID: e.FailoverID, From: e.From, To: e.To, Epoch: e.Epoch, Manual: e.Manual, Force: e.Force,
				Reason: e.Reason, StartedAt: env.Time}
			if e.RequestID != "" {
				s.PeerAnswer = &Answer{RequestID: e.RequestID, FailoverID: e.FailoverID}
			}
			return
		}
		s.Saga = &Saga{
			ID: e.FailoverID, From: e.From, To: e.To, Epoch: e.Epoch, Manual: e.Manual,
			Force: e.Force, Reason: e.Reason, RequestID: e.RequestID, StandDown: e.StandDown,
			Steps: slices.Clone(e.Steps), Done: map[string]bool{}, StartedAt: env.Time,
		}
		s.answer(e.RequestID)
		if e.Epoch > s.MaxEpoch {
			s.MaxEpoch = e.Epoch
		}
	case events.PairSettings:
		if own {
			s.Settings = slices.Clone(e.Settings)
		} else {
			s.PeerSettings = slices.Clone(e.Settings)
		}
	case events.ArbitersClaimRequested:
		if c := s.Claim; own && (c == nil || c.ID != e.ClaimID || !c.Answered) {
			s.Claim = &Claim{ID: e.ClaimID, At: env.Time}
		}
	case events.ArbitersClaimed:
		if own {
			c := e
			s.LastClaim = &c
			s.NoteClaimAnswer(e.ClaimID, e.Outcome)
		}
	case events.RoleConfirmed:
		if own {
			s.ConfirmedAt = env.Time
		}
	case events.FailoverStepDone:
		if own && s.Saga != nil && s.Saga.ID == e.FailoverID && e.OK {
			s.Saga.Done[e.Step] = true
		}
	case events.FailoverCompleted:
		if e.Role == events.RoleActive {
			s.LastFailoverAt = env.Time
			// An operator who asked for the move (manualFailover,
			// switchover, failover --to) has seen it: only an automatic
			// promotion opens the block window, as orchestrator blocks
			// automated recoveries but not the ones a human runs.
			s.Acknowledged = s.manualSaga(own, e.FailoverID)
		}
		if own && s.Saga != nil && s.Saga.ID == e.FailoverID {
			s.Saga.Finished = true
		}
		if !own && s.PeerSaga != nil && s.PeerSaga.ID == e.FailoverID {
			s.PeerSaga.Finished = true
		}
	case events.FailoverAborted:
		if c := s.Claim; own && c != nil && c.ID == e.FailoverID {
			s.Claim = nil
		}
		if own && s.Saga != nil && s.Saga.ID == e.FailoverID {
			s.Saga.Finished, s.Saga.Aborted = true, true
			s.Saga.AbortedAt, s.Saga.AbortReason, s.Saga.Interrupted = env.Time, e.Reason, e.Interrupted
		}
		if !own && s.PeerSaga != nil && s.PeerSaga.ID == e.FailoverID {
			s.PeerSaga.Finished, s.PeerSaga.Aborted = true, true
		}
	case events.FailoverDecided:
		if !own {
			if e.RequestID != "" {
				s.PeerAnswer = &Answer{RequestID: e.RequestID, Decided: true, Action: e.Action, Branch: e.Branch, Reason: e.Reason, Blocked: e.Blocked}
			}
			return
		}
		s.answer(e.RequestID)
		s.LastDecided = Decided{Action: e.Action, Branch: e.Branch, Blocked: e.Blocked, ObserveOnly: e.ObserveOnly}
	case events.FailoverAcknowledged:
		if !s.LastFailoverAt.IsZero() && !env.Time.Before(s.LastFailoverAt) {
			s.Acknowledged = true
		}
	case events.MaintenanceChanged:
		// Pair-wide, like the automatic switch.
		m := e
		s.Maintenance, s.MaintenanceBy, s.MaintenanceAt = &m, env.Site, env.Time
	case events.AutomaticFailoverChanged:
		// A pair-wide switch: honoured whichever site recorded it.
		s.AutomaticSet, s.Automatic, s.AutomaticUntil = true, e.Enabled, nil
		s.AutomaticBy, s.AutomaticAt = env.Site, env.Time
		if !e.Enabled && e.Until != nil {
			u := *e.Until
			s.AutomaticUntil = &u
		}
	case events.ArbitrationDecided:
		if own {
			s.Verdict = &Verdict{Action: e.Action, Branch: e.Branch, WaitUntil: e.WaitUntil, At: env.Time}
		}
	case events.RemoteUnreachable:
		if own && e.Peer == s.Peer && s.configured[e.Line] {
			if !s.PeerUnreachable() && e.Since.After(s.UnreachableSince) {
				// The latest of the lines: the takeover hold counts from
				// it, and a line that reports an earlier Since last must
				// not shorten the hold.
				s.UnreachableSince = e.Since
			}
			s.Lines[e.Line] = Line{Since: e.Since, LastReply: e.LastReply, Event: env}
		}
	case events.RemoteReachable:
		if own && e.Peer == s.Peer {
			// A verdict reached while the peer was silent no longer holds,
			// whichever line heard it back.
			s.Verdict = nil
			if s.configured[e.Line] {
				if s.PeerUnreachable() {
					s.ReachableAt = env.Time
				}
				s.Lines[e.Line] = Line{Up: true, Event: env}
				s.UnreachableSince = time.Time{}
			}
		}
	case events.PeerVIPMovedLocally:
		if own && e.Peer == s.Peer && s.configured[e.Line] {
			l := s.Lines[e.Line]
			if _, heard := s.Lines[e.Line]; !heard {
				l.Up = true
			}
			l.Moved, l.Event = true, env
			s.Lines[e.Line] = l
		}
	case events.DatabaseCommand:
		if ep := e.FollowEpoch; ep > 0 && own && e.Target == s.Site && e.Command == "repoint" {
			f := s.Follow[e.Database]
			if f.Epoch != ep {
				f = Follow{Epoch: ep}
			}
			f.Attempts++
			f.IssuedAt, f.Answered, f.OK, f.AnsweredAt = env.Time, false, false, time.Time{}
			s.Follow[e.Database] = f
		}
	case events.DatabaseCommandDone:
		if own && e.FailoverID != "" {
			s.DBDone[DBKey{e.FailoverID, e.Command, e.Database}] = e
		}
		if own && e.OK && e.Command == "promote" && s.Saga != nil && s.Saga.ID == e.FailoverID {
			s.Promoted[e.Database] = max(s.Promoted[e.Database], s.Saga.Epoch)
		}
		if !own && e.OK && e.Command == "promote" && s.PeerSaga != nil && s.PeerSaga.ID == e.FailoverID {
			s.PeerPromoted = max(s.PeerPromoted, s.PeerSaga.Epoch)
		}
		if own && e.OK && e.Command == "position" {
			l := s.Lag[e.Database]
			switch e.Database {
			case events.PgSQL:
				l.Bytes = e.LagBytes
			case events.MySQL:
				l.Transactions = e.LagTransactions
			}
			l.At = env.Time
			s.Lag[e.Database] = l
		}
		if ep := e.FollowEpoch; ep > 0 && own && e.Command == "repoint" {
			if f := s.Follow[e.Database]; f.Epoch == ep {
				f.Answered, f.OK, f.AnsweredAt = true, e.OK, env.Time
				s.Follow[e.Database] = f
			}
		}
	case events.ReplicationLagHigh:
		if own {
			s.foldLag(e.Database, e.LagBytes, e.LagSeconds, true, env.Time)
		}
	case events.ReplicationLagRecovered:
		if own {
			s.foldLag(e.Database, e.LagBytes, e.LagSeconds, false, env.Time)
		}
	}
}

// manualSaga reports whether the saga id of this site (own) or of the peer
// answered an operator's request.
func (s *State) manualSaga(own bool, id string) bool {
	g := s.PeerSaga
	if own {
		g = s.Saga
	}
	return g != nil && g.ID == id && g.Manual
}

func (s *State) answer(id events.ID) {
	if id != "" && s.Pending != nil && s.Pending.ID == id {
		s.Pending = nil
	}
}

func (s *State) applyRole(own bool, e events.RoleChanged, at time.Time) {
	if e.Epoch > s.MaxEpoch {
		s.MaxEpoch = e.Epoch
	}
	if own {
		if e.To != s.Role {
			// A verdict was reached for the old role.
			s.Verdict = nil
		}
		s.standbySince = spell(s.standbySince, s.RoleKnown && s.Role == events.RoleStandby, e.To, at)
		s.ConfirmedAt = at
		if c := s.Claim; c != nil && e.To != events.RoleActive && at.After(c.At) {
			s.Claim = nil
		}
		s.Role, s.Epoch, s.RoleKnown = e.To, e.Epoch, true
		s.OwnLineage = max(s.OwnLineage, e.Lineage)
		s.StoodDownAt = time.Time{}
		if s.Saga != nil && e.FailoverID == s.Saga.ID && s.Saga.StandDown && e.To == events.RoleStandby {
			s.StoodDownAt = at
		}
		if s.Saga != nil && e.FailoverID == s.Saga.ID {
			s.Saga.RoleChanged = true
		}
	} else {
		s.peerStandbySince = spell(s.peerStandbySince, s.PeerRole == events.RoleStandby, e.To, at)
		s.PeerRole, s.PeerEpoch = e.To, e.Epoch
		s.PeerLineage = max(s.PeerLineage, e.Lineage)
		if e.To == events.RoleStandby {
			s.PeerStandbyAt = at
		}
	}
	if e.To == events.RoleActive {
		if own {
			s.EverActive = true
			s.ActiveEpoch = max(s.ActiveEpoch, e.Epoch)
		} else {
			s.PeerActiveEpoch = max(s.PeerActiveEpoch, e.Epoch)
		}
		switch {
		case s.ActiveEpoch > s.PeerActiveEpoch:
			s.LastActive = s.Site
		case s.PeerActiveEpoch > s.ActiveEpoch:
			s.LastActive = s.Peer
		}
	}
	if s.Role == events.RoleStandby && s.PeerRole == events.RoleStandby {
		s.BothStandbySince = s.standbySince
		if s.peerStandbySince.After(s.BothStandbySince) {
			s.BothStandbySince = s.peerStandbySince
		}
	} else {
		s.BothStandbySince = time.Time{}
	}
}

// spell is when a site's standby spell began after a RoleChanged to to at
// at: kept while it was standby already, at when it becomes standby, zero
// when it leaves standby.
func spell(since time.Time, wasStandby bool, to events.Role, at time.Time) time.Time {
	switch {
	case to != events.RoleStandby:
		return time.Time{}
	case wasStandby && !since.IsZero():
		return since
	}
	return at
}

// Lag is one database's replica lag in the units that database has.
type Lag struct {
	// Bytes: PostgreSQL WAL bytes behind the primary (lag events and
	// position answers). Never set for MariaDB/MySQL.
	Bytes int64
	// Transactions: MariaDB/MySQL transactions behind the primary, from a
	// position answer (lagTransactions). Never set for PostgreSQL.
	Transactions int64
	// Seconds and High: the last ReplicationLagHigh/Recovered (the
	// database's lagThreshold). Informative only: MariaDB's
	// Seconds_Behind_Master turns NULL once the primary is gone, so a
	// LagHigh may never be followed by a Recovered; gating on it would
	// block the failover it guards.
	Seconds float64
	High    bool
	// At is when the compared figure (Bytes for PostgreSQL, Transactions
	// for MariaDB/MySQL) was reported: it ages (LagLimits.MaxAge).
	At time.Time
}

func (s *State) foldLag(db events.Database, bytes int64, seconds float64, high bool, at time.Time) {
	l := s.Lag[db]
	l.Seconds, l.High = seconds, high
	if db == events.PgSQL {
		// A MariaDB lag event carries no byte figure (always 0): it
		// must not read as "0 bytes behind" or be compared with bytes.
		l.Bytes, l.At = bytes, at
	}
	s.Lag[db] = l
}

// LagLimits are the in-sync thresholds, one per unit.
type LagLimits struct {
	// MaxBytes is failover.maxLagBytes, for PostgreSQL.
	MaxBytes int64
	// MaxTransactions is failover.maxLagTransactions, for MariaDB/MySQL.
	MaxTransactions int64
	// MaxAge is how long a figure counts; an older one no longer blocks
	// (0: figures never age). Lag events are sent on transitions only and
	// a position answer once, so a figure may describe a replica that has
	// long caught up (or a LagHigh whose Recovered never came because the
	// primary died); the promotion saga asks for a fresh position
	// (check-position) right before promoting anyway.
	MaxAge time.Duration
}

// OutOfSync names a database whose replica is too far behind.
type OutOfSync struct {
	Database events.Database
	// Lag and Limit in Unit ("bytes" or "transactions"); Field is the
	// config key of Limit.
	Lag, Limit  int64
	Unit, Field string
}

func (o OutOfSync) String() string {
	return fmt.Sprintf("%s replica is %d %s behind, more than %s %d", o.Database, o.Lag, o.Unit, o.Field, o.Limit)
}

// Check compares one database's lag figure with its limit, in that
// database's unit; ok when within it. It is what InSync applies to the
// log's figures and the promotion saga to a fresh position answer.
func (lim LagLimits) Check(db events.Database, l Lag) (bool, OutOfSync) {
	switch db {
	case events.MySQL:
		if l.Transactions > lim.MaxTransactions {
			return false, OutOfSync{Database: db, Lag: l.Transactions, Limit: lim.MaxTransactions, Unit: "transactions", Field: "failover.maxLagTransactions"}
		}
	case events.PgSQL:
		if l.Bytes > lim.MaxBytes {
			return false, OutOfSync{Database: db, Lag: l.Bytes, Limit: lim.MaxBytes, Unit: "bytes", Field: "failover.maxLagBytes"}
		}
	}
	return true, OutOfSync{}
}

// InSync reports whether every database's last reported lag is within
// its limit at now: PostgreSQL in bytes of WAL against lim.MaxBytes
// (Patroni's maximum_lag_on_failover), MariaDB/MySQL in transactions
// against lim.MaxTransactions (GTIDs have no byte offset comparable across
// servers). A database with no figure in the log, or only one older than
// lim.MaxAge, counts as in sync.
func (s *State) InSync(lim LagLimits, now time.Time) (bool, OutOfSync) {
	for _, db := range []events.Database{events.MySQL, events.PgSQL} {
		l, ok := s.Lag[db]
		if !ok || (lim.MaxAge > 0 && now.Sub(l.At) > lim.MaxAge) {
			continue
		}
		if ok, o := lim.Check(db, l); !ok {
			return false, o
		}
	}
	return true, OutOfSync{}
}

// AutomaticOn reports whether automatic failover is on at now, given the
// configured default, for a promotion: a timed disable is taken to last
// skew past its Until, which was read off the recording site's clock.
func (s *State) AutomaticOn(configured bool, now time.Time, skew time.Duration) bool {
	if !s.AutomaticSet {
		return configured
	}
	if s.Automatic {
		return true
	}
	return s.AutomaticUntil != nil && !now.Before(s.AutomaticUntil.Add(skew))
}

// AutomaticOffForTheActive reports whether an active site may stay active
// because automatic failover is off although its verdict says beStandby
// (or it restarted without its peer). It may only if the peer is sure to
// treat the switch as off too, or the peer — automatic on in its eyes —
// would take over beside it: the switch was recorded by the peer, or by
// this site at least skew before it last heard the peer (so the peer's
// copy of the log has it; a switch recorded during a cut does not count),
// and a timed disable counts as ending skew before its Until. The standby
// reads the same switch the other way (AutomaticOn), so between the two
// readings nobody promotes rather than both staying or taking over.
// lastHeard is when this site last heard the peer (now if it still does).
func (s *State) AutomaticOffForTheActive(configured bool, now, lastHeard time.Time, skew time.Duration) bool {
	if !s.AutomaticSet {
		return !configured
	}
	if s.Automatic {
		return false
	}
	if s.AutomaticBy != s.Peer && s.AutomaticAt.After(lastHeard.Add(-skew)) {
		return false
	}
	return s.AutomaticUntil == nil || now.Before(s.AutomaticUntil.Add(-skew))
}

// LastHeard is when this site last heard the peer: now while it answers,
// else the latest last reply of the lines that lost it, or, when no line
// knows its last reply (a heartbeat restarted during the loss), when the
// lines lost it — up to an interval after the last reply, so a rule that
// reads a switch as one the peer has seen is stricter with the replies.
func (s *State) LastHeard(now time.Time) time.Time {
	if !s.PeerUnreachable() {
		return now
	}
	var heard time.Time
	for l := range s.configured {
		if r := s.Lines[l].LastReply; r.After(heard) {
			heard = r
		}
	}
	if heard.IsZero() {
		heard = s.UnreachableSince
	}
	if heard.IsZero() {
		return now
	}
	return heard
}

// Blocked reports whether the block window after the last failover still
// holds automatic failovers back at now.
func (s *State) Blocked(window time.Duration, now time.Time) bool {
	if s.LastFailoverAt.IsZero() || s.Acknowledged || window <= 0 {
		return false
	}
	return now.Before(s.LastFailoverAt.Add(window))
}
