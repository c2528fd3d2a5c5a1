package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

// line is the one heartbeat line of the simulated pair (core.peerVip).
const line = "default"

// site is one site: its host (power, clock, log, database, VIP) and its
// drwatch process (orchestrator, heartbeat, arbiter service, the embedded
// NATS server), which crashes and restarts as one.
type site struct {
	w          *world
	idx        int
	id, peer   events.SiteID
	configured events.Role
	skew       time.Duration
	driftPPM   int64

	powered, proc bool
	pausedUntil   time.Duration
	// gen counts the process's lives: a callback of an earlier life is
	// dropped.
	gen int

	// log is the site's stream: its own events and the peer's sourced
	// ones; logAt when each was stored, logSrc the index in the peer's
	// log of a sourced one (-1 for own). synced: entries below it
	// survive a power cut.
	log    []*events.Envelope
	logAt  []time.Duration
	logSrc []int
	synced int
	// cursor is the next index of the peer's log to source.
	cursor int
	nextID int

	st     *pair.State
	policy decide.Policy

	// Restart hold (runner.confirmPeer).
	held                 bool
	holdStart            time.Time
	wantPeer             *events.RoleChanged
	noPeerRole           bool
	holdClaim, holdSaga  string
	holdClaimUntil       time.Duration
	confirmed, claimHold bool

	own      map[string]bool
	sagaBusy bool
	run      *sagaRun
	failNext bool
	// slowUntil ends a SlowDB fault; dbFree is when the database's
	// command queue is next free.
	slowUntil, dbFree time.Duration

	hbDown      bool
	hbDownSince time.Time
	// hbLastReply is when the peer last answered a heartbeat probe
	// (zero since the process started).
	hbLastReply time.Time

	db  database
	vip bool
	// unfencedSeen: this life's unfenced window was counted.
	unfencedSeen bool
}

func newSite(w *world, idx int, id, peer events.SiteID, role events.Role) *site {
	s := &site{w: w, idx: idx, id: id, peer: peer, configured: role, powered: true}
	// Within the contract (pair.ClockSkew between the sites, sourcing
	// included); ClockJump faults break it.
	s.skew = time.Duration(w.rng.IntN(8000)-4000) * time.Millisecond
	s.driftPPM = int64(w.rng.IntN(200) - 100)
	s.st = pair.New(id, peer, role, []string{line})
	tm := w.tm.Timing
	s.policy = decide.Policy{
		Automatic: true, Home: role == events.RoleActive,
		// No block window: the simulator checks liveness after every
		// heal, which an unacknowledged block window would refuse by
		// design.
		BlockWindow: 0, MaxLagBytes: 1 << 20, MaxLagTransactions: 0,
		LagMaxAge: 100 * time.Second, WaitDuration: 8 * time.Hour, RestartYield: tm.RestartYield,
		ClockSkew: pair.ClockSkew, RetryAfter: w.tm.Interval, RequestExpiry: w.tm.FenceTimeout,
	}
	return s
}

// clock is the site's wall clock: virtual time, its skew, its drift.
func (s *site) clock() time.Time {
	return t0.Add(s.w.now + s.skew + time.Duration(int64(s.w.now)/1_000_000*s.driftPPM))
}

func (s *site) busUp() bool { return s.powered && s.proc && s.w.now >= s.pausedUntil }

// running: the process can act now.
func (s *site) running() bool { return s.busUp() }

func (s *site) other() *site { return s.w.sites[1-s.idx] }

// after schedules fn in this life of the process; a paused process runs
// it when the pause ends.
func (s *site) after(d time.Duration, fn func()) {
	g := s.gen
	var call func()
	call = func() {
		if s.gen != g || !s.proc {
			return
		}
		if s.w.now < s.pausedUntil {
			s.w.at(s.pausedUntil-s.w.now, call)
			return
		}
		fn()
	}
	s.w.at(d, call)
}

// publish stores ev in the site's log, folds it and starts its sourcing
// to the peer. It returns false when the site's bus is down.
// lastID is the ID of the event this site published last.
func (s *site) lastID() events.ID { return events.ID(string(s.id) + "-" + strconv.Itoa(s.nextID)) }

func (s *site) publish(ev events.Event) bool {
	if !s.busUp() {
		return false
	}
	if s.w.opt.Strict {
		if err := events.Validate(ev); err != nil {
			panic(fmt.Sprintf("sim built an invalid event: %v", err))
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	s.nextID++
	id := s.lastID()
	env := &events.Envelope{ID: id, Type: ev.EventType(), SchemaVersion: events.SchemaVersion, Site: s.id,
		Node: string(s.id) + "1", Service: "drwatch", Time: s.clock(), CorrelationID: events.CorrelationID(id), Payload: payload}
	s.store(env, -1)
	s.w.events++
	if s.w.trace != nil {
		s.w.tracef("%s %s %s", s.id, env.Type, payload)
	}
	s.react(env, ev)
	s.pumpLater()
	return true
}

// store appends env to the log, stamped with this site's clock as the
// time its log stored it (bus: Envelope.Stored), and folds it.
func (s *site) store(env *events.Envelope, src int) {
	c := *env
	c.Stored = s.clock()
	env = &c
	s.log = append(s.log, env)
	s.logAt = append(s.logAt, s.w.now)
	s.logSrc = append(s.logSrc, src)
	if s.w.syncEvery == 0 {
		s.synced = len(s.log)
	}
	s.st.Apply(env)
}

// react is what the process's other services do on its own events.
func (s *site) react(env *events.Envelope, ev events.Event) {
	switch e := ev.(type) {
	case *events.RemoteUnreachable:
		s.after(0, s.arbiterRound)
	case *events.RoleChanged:
		s.confirmed = true
		s.claimHold = false
	case *events.RoleConfirmed:
		s.confirmed = true
		s.claimHold = false
	case *events.FailoverAborted:
		s.claimHold = false
	case *events.ArbitersClaimRequested:
		s.claim(e.ClaimID)
	}
	s.syncSessions()
}

func (s *site) pumpLater() {
	p := s.other()
	s.w.at(s.w.latency, func() { s.w.pump(s, p) })
	s.w.at(s.w.latency, func() { s.w.pump(p, s) })
}

// pump sources from's own events into to's log, in order, each no
// sooner than the latency after from stored it, while both buses are up
// and the sites reach each other.
func (w *world) pump(from, to *site) {
	for to.cursor < len(from.log) {
		if !from.busUp() || !to.busUp() || !w.reach(from.idx, to.idx) {
			return
		}
		i := to.cursor
		e := from.log[i]
		if e.Site != from.id {
			to.cursor++
			continue
		}
		if d := from.logAt[i] + w.latency - w.now; d > 0 {
			w.at(d, func() { w.pump(from, to) })
			return
		}
		to.cursor++
		to.store(e, i)
		if w.trace != nil {
			w.tracef("%s <- %s %s", to.id, e.Site, e.Type)
		}
		to.syncSessions()
	}
}

// start starts the process: the projection rebuilt from the log, the
// restart hold when the log says active, then the timers of the
// orchestrator, the heartbeat and the arbiter service.
func (s *site) start(initial bool) {
	s.proc = true
	s.unfencedSeen = false
	s.gen++
	s.own = map[string]bool{}
	s.sagaBusy, s.run = false, nil
	s.claimHold = false
	s.holdClaim, s.holdSaga = "", ""
	if !initial {
		s.w.tracef("%s process starts", s.id)
		s.st = pair.New(s.id, s.peer, s.configured, []string{line})
		for _, e := range s.log {
			s.st.Apply(e)
		}
		s.confirmed = false
		s.held = s.st.RoleKnown && s.st.Role == events.RoleActive
		if s.held {
			s.holdStart, s.wantPeer, s.noPeerRole = s.clock(), nil, false
		}
		if !s.st.RoleKnown {
			// role.go, simplified: the pair always has an activation
			// on record here, so a site whose log lost every role of its
			// own stands down (its server may be writable, it may hold
			// the VIP) and then records standby at the highest epoch it
			// knows (runner.startStandDown).
			s.nextID++
			id := string(s.id) + "-sd" + strconv.Itoa(s.nextID)
			s.own[id] = true
			s.w.tracef("%s has no role of its own in its log: stands down", s.id)
			s.publish(&events.FailoverStarted{FailoverID: id, From: events.RoleStandby, To: events.RoleStandby, Epoch: s.st.MaxEpoch,
				Reason: "no role of its own in the log: starts standby", Steps: s.plan(events.RoleStandby, false)})
		}
	}
	s.hbDown = false
	s.hbDownSince, s.hbLastReply = time.Time{}, time.Time{}
	if l, heard := s.st.Lines[line]; heard && !l.Up {
		s.hbDown, s.hbDownSince = true, l.Since
	}
	w := s.w
	s.after(time.Duration(w.rng.IntN(1000))*time.Millisecond, s.tick)
	s.after(time.Duration(w.rng.IntN(int(w.tm.Interval/time.Millisecond)))*time.Millisecond, s.heartbeatRound)
	s.after(time.Duration(w.rng.IntN(int(w.tm.Interval/time.Millisecond)))*time.Millisecond, s.arbiterTick)
	s.after(0, s.keepalive)
	s.pumpLater()
}

// stop ends the process. A crash closes its sockets (the arbiters drop
// its sessions when they hear the FIN) and the supervisor's ExecStopPost
// releases the VIP; the database server, another process, keeps its mode.
func (s *site) stop(power bool) {
	s.proc = false
	s.gen++
	s.sagaBusy, s.run = false, nil
	s.claimHold = false
	s.held = false
	if !power {
		s.w.tracef("%s process stops; the supervisor releases the VIP", s.id)
		s.vip = false
		s.closeSessions()
	}
}

func (s *site) powerOff() {
	s.w.tracef("%s power off: the log keeps %d of %d entries", s.id, s.synced, len(s.log))
	s.stop(true)
	s.powered = false
	s.vip = false
	s.log, s.logAt, s.logSrc = s.log[:s.synced], s.logAt[:s.synced], s.logSrc[:s.synced]
	// The peer's source resumes from the end of what survived; this
	// site's own source from the last peer event it kept.
	p := s.other()
	p.cursor = min(p.cursor, len(s.log))
	s.cursor = 0
	for i := len(s.log) - 1; i >= 0; i-- {
		if s.logSrc[i] >= 0 {
			s.cursor = s.logSrc[i] + 1
			break
		}
	}
	s.nextID += 1000 // ids of the lost tail are never reused
}

func (s *site) powerOn() {
	if s.w.opt.BootReadOnly {
		s.db.writable = false
	}
	s.unfencedSeen = false
	s.w.tracef("%s power on (database writable %v)", s.id, s.db.writable)
	s.powered = true
	s.start(false)
	s.w.linksChanged()
}

// kick resumes what waited on a paused bus.
func (s *site) kick() {
	s.pumpLater()
	s.w.kickReplication()
}

// tick is one round of the orchestrator (runner.step), every decision
// tick: the restart hold, the VIP monitor, then a saga or a decision.
func (s *site) tick() {
	s.after(s.w.tm.DecisionTick, s.tick)
	if s.held {
		s.confirmPeer()
	}
	s.vipMonitor()
	if s.sagaBusy {
		return
	}
	st := s.st
	if st.SagaRunning() {
		s.runSaga()
		return
	}
	now := s.clock()
	d := decide.Decide(st, decide.Input{Policy: s.policy}, now)
	if d.Act {
		s.startSaga(d)
		return
	}
	if !d.Record() {
		s.follow(now)
		return
	}
	rec := pair.Decided{Action: d.Action, Branch: d.Branch, Blocked: d.Blocked, ObserveOnly: d.ObserveOnly}
	if d.RequestID == "" && st.LastDecided == rec {
		return
	}
	s.publish(&events.FailoverDecided{Action: d.Action, Branch: d.Branch, Reason: clip(d.Reason, 1024), Blocked: d.Blocked,
		ObserveOnly: d.ObserveOnly, Manual: d.Manual, Force: d.Force, RequestID: d.RequestID})
}

// vipMonitor puts the VIP where the role wants it outside sagas and
// holds (internal/vipmon); modelled at every tick rather than every 2 s.
func (s *site) vipMonitor() {
	if s.held || s.sagaBusy || s.st.SagaRunning() {
		return
	}
	want := s.st.Role == events.RoleActive
	if want == s.vip || (!want && s.w.opt.Break == BreakNoFence) {
		return
	}
	s.vip = want
	s.w.tracef("%s VIP monitor: VIP held %v", s.id, want)
}

// follow re-points a former active's database at the active peer
// (decide.Follow, runner.followPeer).
func (s *site) follow(now time.Time) {
	dbs := decide.Follow(s.st, []events.Database{events.MySQL}, decide.FollowPolicy{Retry: 30 * time.Second, AnswerTimeout: 2 * time.Minute, MaxAttempts: 5}, now)
	if len(dbs) == 0 {
		return
	}
	id := pair.FollowID(s.st.PeerEpoch)
	epoch := s.st.PeerEpoch
	s.publish(&events.DatabaseCommand{Command: "repoint", Database: events.MySQL, Target: s.id, FailoverID: id, FollowEpoch: epoch})
	s.dbCommand(func() {
		lost := s.w.repoint(s)
		s.publish(&events.DatabaseCommandDone{Command: "repoint", Database: events.MySQL, OK: true, FailoverID: id,
			FollowEpoch: epoch, Error: discarded(lost)})
	})
}

func discarded(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("rebuilt from the primary: %d local transactions discarded", n)
}

// confirmPeer ends the hold of a site restarted active (decide.Restart),
// as runner.confirmPeer and claimOnRestart do.
func (s *site) confirmPeer() {
	st, tm := s.st, s.w.tm.Timing
	release := func(d decide.RestartDecision) {
		s.held = false
		s.holdClaim, s.holdSaga = "", ""
		s.publish(&events.RoleConfirmed{Role: st.Role, Epoch: st.Epoch, Reason: clip(string(d.Action)+": "+d.Reason, 1024)})
	}
	switch {
	case s.holdSaga != "":
		if g := st.Saga; g != nil && g.ID == s.holdSaga && g.Finished && st.Role != events.RoleActive {
			release(decide.RestartDecision{Action: decide.RestartStandDown, Reason: "stood down"})
		}
		return
	case s.holdClaim != "":
		if c := st.LastClaim; c != nil && c.ClaimID == s.holdClaim {
			if c.Outcome == events.ClaimClear {
				release(decide.RestartDecision{Action: decide.RestartResume, Reason: "the arbiters confirm it"})
			} else {
				s.standDown("the claim was " + c.Outcome)
			}
		} else if s.w.now > s.holdClaimUntil {
			s.standDown("no answer to the claim")
		}
		return
	}
	k := decide.PeerPending
	w := s.wantPeer
	switch {
	case st.PeerUnreachable():
		k = decide.PeerUnreachable
	case s.noPeerRole || (w != nil && (st.PeerEpoch > w.Epoch || (st.PeerEpoch == w.Epoch && st.PeerRole == w.To))):
		k = decide.PeerLearned
	case s.clock().After(s.holdStart.Add(tm.StartupHold)):
		k = decide.PeerUnknown
	}
	d := decide.Restart(decide.RestartInput{Site: s.id, Peer: s.peer, Role: st.Role, Epoch: st.Epoch, SagaRunning: st.SagaRunning(), PeerPromoting: st.PeerPromoting(),
		Knowledge: k, PeerRole: st.PeerRole, PeerEpoch: st.PeerEpoch,
		Automatic: !st.AutomaticOffForTheActive(s.policy.Automatic, s.clock(), st.LastHeard(s.clock()), s.policy.ClockSkew)})
	if d.Action == decide.RestartResume && d.Warn && tm.ClaimTimeout > 0 {
		s.nextID++
		s.holdClaim = "restart-" + string(s.id) + strconv.Itoa(s.nextID)
		s.holdClaimUntil = s.w.now + tm.ClaimTimeout
		s.publish(&events.ArbitersClaimRequested{ClaimID: s.holdClaim, Reason: "restarted active: " + clip(d.Reason, 900)})
		return
	}
	switch d.Action {
	case decide.RestartResume:
		release(d)
		return
	case decide.RestartStandDown:
		s.standDown(d.Reason)
		return
	}
	if w == nil && !s.noPeerRole {
		// bus.PeerFacts: the peer's own log over the leafnode.
		p := s.other()
		if p.busUp() && s.w.reach(s.idx, p.idx) {
			for i := len(p.log) - 1; i >= 0; i-- {
				if e := p.log[i]; e.Site == p.id && e.Type == "RoleChanged" {
					rc, err := events.DecodeInto[events.RoleChanged](e)
					if err == nil {
						s.wantPeer = &rc
					}
					return
				}
			}
			s.noPeerRole = true
		}
	}
}

// standDown starts the stand-down saga of a site restarted active
// without its peer (runner.standDown).
func (s *site) standDown(why string) {
	st := s.st
	s.holdClaim = ""
	s.nextID++
	id := string(s.id) + "-sd" + strconv.Itoa(s.nextID)
	s.holdSaga = id
	s.own[id] = true
	s.w.tracef("%s stands down on restart: %s", s.id, why)
	s.publish(&events.FailoverStarted{FailoverID: id, From: events.RoleActive, To: events.RoleStandby, Epoch: max(st.Epoch, st.MaxEpoch),
		Reason: pair.RestartStandDownReason, StandDown: true, Steps: s.plan(events.RoleStandby, false)})
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
