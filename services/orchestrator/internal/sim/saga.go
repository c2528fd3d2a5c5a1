package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// planVIP stands for a configured VIP in saga.Executor.Plan; the
// simulator never calls it.
type planVIP struct{}

func (planVIP) Take(context.Context) error    { return nil }
func (planVIP) Release(context.Context) error { return nil }

// plan is the real saga plan for the simulated configuration: a VIP,
// MariaDB, and the veto and pre-s2m hooks when the seed configures hooks.
func (s *site) plan(to events.Role, claim bool) []string {
	x := &saga.Executor{Site: s.id, Peer: s.peer, VIP: planVIP{}, Databases: []events.Database{events.MySQL},
		ClaimTimeout: s.w.tm.Timing.ClaimTimeout}
	if s.w.hooks {
		x.Hooks = saga.Hooks{Veto: "veto", PreS2M: "pre-s2m", Timeout: time.Minute}
	}
	return x.Plan(to, claim)
}

// sagaRun is the simulated executor's progress through one saga.
type sagaRun struct {
	g *pair.Saga
	i int
	// caughtUp: catch-up waited for a reachable, fenced peer's last
	// writes and found them all (a switchover must then lose none).
	caughtUp bool
}

// startSaga records FailoverStarted for decision d, as runner.start.
func (s *site) startSaga(d decide.Decision) {
	st := s.st
	to := events.RoleActive
	if d.Action == events.ActionBeStandby {
		to = events.RoleStandby
	}
	s.nextID++
	id := string(s.id) + "-f" + strconv.Itoa(s.nextID)
	s.own[id] = true
	claims := d.Branch == decide.BranchTakeover || d.Branch == decide.BranchResume
	s.publish(&events.FailoverStarted{FailoverID: id, From: st.Role, To: to, Epoch: d.Epoch, Manual: d.Manual, Force: d.Force,
		Reason: clip(d.Branch+": "+d.Reason, 1024), RequestID: d.RequestID, Steps: s.plan(to, claims)})
}

// runSaga carries on the saga the projection holds: Run for one this
// process started, Resume for one an earlier process left (saga.Resume).
func (s *site) runSaga() {
	g := s.st.Saga
	s.sagaBusy = true
	s.run = &sagaRun{g: g}
	switch {
	case s.own[g.ID] || g.To != events.RoleActive:
		s.next()
	case g.RoleChanged:
		s.complete()
	default:
		s.abort(g.NextStep(), "interrupted by a restart before it announced active; the decision is taken again with a fresh claim and position", true)
	}
}

// next runs the first step from the run's index not recorded done.
func (s *site) next() {
	r := s.run
	for r.i < len(r.g.Steps) && r.g.Done[r.g.Steps[r.i]] {
		r.i++
	}
	if r.i == len(r.g.Steps) {
		s.complete()
		return
	}
	s.step(r.g.Steps[r.i], 1)
}

// step carries out one attempt and records it. A promotion aborts at its
// first failure; a demotion goes on, retrying a database step every
// second until it succeeds (saga.Executor.Run).
func (s *site) step(name string, attempt int) {
	r := s.run
	started := s.w.now
	inject := s.failNext
	s.failNext = false
	s.do(name, func(ok bool, out, errText string) {
		if inject && ok {
			ok, errText = false, "injected failure"
		}
		s.publish(&events.FailoverStepDone{FailoverID: r.g.ID, Step: name, OK: ok, Output: clip(out, 4096), Error: clip(errText, 4096),
			DurationSeconds: (s.w.now - started).Seconds()})
		switch {
		case ok:
			r.i++
			s.next()
		case r.g.To == events.RoleActive:
			s.abort(name, errText, false)
		case strings.HasPrefix(name, "demote-"):
			s.after(time.Second, func() { s.step(name, attempt+1) })
		default:
			r.i++
			s.next()
		}
	})
}

type stepDone func(ok bool, out, errText string)

// do models the effect and the duration of one step.
func (s *site) do(name string, done stepDone) {
	r := s.run
	g := r.g
	w := s.w
	fence := w.opt.Break != BreakNoFence
	switch name {
	case saga.StepClaimArbiters:
		s.holdTakeover(func() { s.claimStep(g.ID, done) })
	case saga.StepCheckPosition:
		patience := time.Duration(0)
		if !s.st.PeerUnreachable() && s.st.PeerRole == events.RoleActive {
			patience = 3 * time.Second
		}
		s.positions(name, s.policy.LagLimits(), patience, func(out string, problems []string) {
			switch {
			case len(problems) == 0:
				done(true, out, "")
			case g.Force:
				done(true, out+"; forced", "")
			default:
				done(false, out, "not promoting: "+strings.Join(problems, "; "))
			}
		})
	case saga.StepVeto, saga.StepPreS2M:
		s.after(w.hookDelay, func() { done(true, "", "") })
	case saga.StepFencePeer:
		s.fence(done)
	case saga.StepCatchUp:
		if s.st.PeerUnreachable() {
			done(true, "peer unreachable", "")
			return
		}
		s.positions(name, pair.LagLimits{}, 3*time.Second, func(out string, problems []string) {
			if len(problems) == 0 {
				r.caughtUp = !g.Force
				done(true, out, "")
				return
			}
			s.positions(name+"/limits", s.policy.LagLimits(), 0, func(out string, over []string) {
				switch {
				case len(over) == 0:
					done(true, out, "")
				case g.Force:
					done(true, out+"; forced", "")
				default:
					done(false, out, "not promoting: the fenced peer's last writes did not arrive: "+strings.Join(over, "; "))
				}
			})
		})
	case "promote-mysql":
		s.dbStep("promote", g.ID, w.tm.Timing.DBTimeout, func() string {
			lost := w.promote(s, r.caughtUp)
			if lost > 0 && g.Force {
				return fmt.Sprintf("forced: %d transactions discarded", lost)
			}
			return ""
		}, done)
	case "demote-mysql":
		timeout := w.tm.Timing.SelfFenceTimeout
		demote := func() {
			s.dbStep("demote", g.ID, timeout, func() string {
				if fence {
					w.demote(s)
				}
				return ""
			}, done)
		}
		if w.opt.Break == BreakNoHold {
			s.after(2*time.Minute, demote)
			return
		}
		demote()
	case saga.StepTakeVIP:
		s.after(10*time.Millisecond, func() { s.vip = true; done(true, "", "") })
	case saga.StepReleaseVIP:
		s.after(10*time.Millisecond, func() {
			if fence {
				s.vip = false
			}
			done(true, "", "")
		})
	default: // announce, hooks of other plans
		s.after(0, func() { done(true, "", "") })
	}
}

// dbStep sends one database command and waits for its answer up to
// timeout; the command still lands later when it outlasts the wait.
func (s *site) dbStep(command, id string, timeout time.Duration, effect func() string, done stepDone) {
	answered, expired := false, false
	end := s.dbCommand(func() {
		warn := effect()
		answered = true
		s.publish(&events.DatabaseCommandDone{Command: command, Database: events.MySQL, OK: true, FailoverID: id,
			Position: strconv.Itoa(int(s.w.writes[s.db.head].depth)), Error: warn})
		if !expired {
			done(true, command+" mysql", "")
		}
	})
	if end > timeout {
		s.after(timeout, func() {
			if !answered {
				expired = true
				done(false, "", fmt.Sprintf("%s mysql: no answer from dbmonitor within %s", command, timeout))
			}
		})
	}
}

// dbCommand queues one command on the site's database server: commands
// run one at a time, each taking the database latency, none ending
// before a stall (SlowDB) is over. It returns how long until this one
// ends.
func (s *site) dbCommand(effect func()) time.Duration {
	start := max(s.w.now, s.dbFree)
	if start < s.slowUntil {
		start = s.slowUntil
	}
	s.dbFree = start + s.w.dbLatency
	s.after(s.dbFree-s.w.now, effect)
	return s.dbFree - s.w.now
}

// holdTakeover waits until TakeoverHold has passed since the peer was
// last heard (saga.Executor.holdTakeover), on the monotonic clock.
func (s *site) holdTakeover(then func()) {
	st := s.st
	hold := s.w.tm.Timing.TakeoverHold
	if hold <= 0 || !st.PeerUnreachable() || st.UnreachableSince.IsZero() {
		then()
		return
	}
	wait := st.UnreachableSince.Add(hold).Sub(s.clock())
	if wait <= 0 {
		then()
		return
	}
	s.after(wait, then)
}

// claimStep asks the arbiter service to claim and waits for its answer,
// at most ClaimTimeout (saga.Executor.Claim).
func (s *site) claimStep(id string, done stepDone) {
	has := func() bool { return s.st.LastClaim != nil && s.st.LastClaim.ClaimID == id }
	finish := func(ok bool) {
		if !ok {
			done(false, "", "claim the arbiters: no answer from the arbiter service")
			return
		}
		c := s.st.LastClaim
		if c.Outcome != events.ClaimClear {
			done(false, "", fmt.Sprintf("claim the arbiters: %s (%d held, %d managed by the peer, %d unreachable)", c.Outcome, c.Held, c.Managed, c.Unreachable))
			return
		}
		done(true, fmt.Sprintf("%d of %d arbiters held", c.Held, c.N), "")
	}
	if has() {
		finish(true)
		return
	}
	s.publish(&events.ArbitersClaimRequested{ClaimID: id, Reason: "takeover"})
	s.await(has, s.w.tm.Timing.ClaimTimeout, finish)
}

// await polls cond every 250 ms until it holds or timeout passes.
func (s *site) await(cond func() bool, timeout time.Duration, then func(bool)) {
	deadline := s.w.now + timeout
	var poll func()
	poll = func() {
		switch {
		case cond():
			then(true)
		case s.w.now >= deadline:
			then(false)
		default:
			s.after(250*time.Millisecond, poll)
		}
	}
	poll()
}

// fence is the fence-peer step (saga.Executor.fence).
func (s *site) fence(done stepDone) {
	g := s.run.g
	st := s.st
	if st.PeerUnreachable() {
		s.fenceUnreachable("unreachable", done)
		return
	}
	if st.PeerPromoting() {
		s.await(func() bool { return !s.st.PeerPromoting() || s.st.PeerUnreachable() }, s.w.tm.FenceTimeout, func(ok bool) {
			if !ok {
				done(false, "", "the peer's own promotion still runs after the fence timeout")
				return
			}
			s.fence(done)
		})
		return
	}
	if !s.publish(&events.FailoverRequested{Target: s.peer, ToRole: events.RoleStandby, Reason: "fenced by " + string(s.id) + " failover " + g.ID,
		RequestedBy: "orchestrator@" + string(s.id), Epoch: g.Epoch}) {
		done(false, "", "the fence request could not be recorded")
		return
	}
	id := s.lastID()
	answered := func() bool { settled, _, _ := saga.FenceAnswer(s.st, id); return settled }
	start := s.w.now
	judge := func(ok bool) {
		settled, standby, why := saga.FenceAnswer(s.st, id)
		switch {
		case !ok:
			// saga.Executor.fence: an answer never came while the
			// heartbeat still reaches the peer.
			done(false, "", "peer answers the heartbeat but not the fence request")
		case settled && standby:
			done(true, "peer "+why, "")
		case settled:
			done(false, "", "peer will not stay standby: "+why)
		default:
			s.fenceUnreachable("became unreachable while being fenced", done)
		}
	}
	// awaitFenceAnswer: the quick bound while the peer runs no failover,
	// the fence timeout in all; then the heartbeat must lose it.
	var wait func()
	wait = func() {
		quick := min(s.w.tm.FenceAnswerTimeout, s.w.tm.FenceTimeout-(s.w.now-start))
		s.await(func() bool { return answered() || s.st.PeerUnreachable() }, max(quick, 0), func(ok bool) {
			switch {
			case ok:
				judge(true)
			case s.st.PeerSagaRunning() && s.w.now-start < s.w.tm.FenceTimeout:
				wait()
			default:
				s.await(func() bool { return answered() || s.st.PeerUnreachable() }, max(s.w.tm.FenceTimeout-(s.w.now-start), 0), judge)
			}
		})
	}
	wait()
}

func (s *site) fenceUnreachable(how string, done stepDone) {
	g := s.run.g
	switch {
	case g.Done[saga.StepClaimArbiters]:
		done(true, "peer "+how+"; the arbiters were claimed", "")
	default:
		s.holdTakeover(func() { s.claimStep(g.ID+"/fence", done) })
	}
}

// positions asks the database for its position (tag tells rounds apart)
// and judges it with the real saga.JudgePosition, asking again every
// 200 ms for up to patience while a problem remains.
func (s *site) positions(tag string, lim pair.LagLimits, patience time.Duration, then func(string, []string)) {
	g := s.run.g
	deadline := s.w.now + patience
	var round func(n int)
	round = func(n int) {
		id := g.ID + "/" + tag + "/" + strconv.Itoa(n)
		s.dbCommand(func() {
			ans := s.w.position(s)
			ans.FailoverID = id
			s.publish(&ans)
			line, problem := saga.JudgePosition(events.MySQL, ans, nil, lim, s.st.OwnsLineage(events.MySQL))
			if problem == "" || s.w.now >= deadline {
				var ps []string
				if problem != "" {
					ps = []string{problem}
				}
				then(line, ps)
				return
			}
			s.after(200*time.Millisecond, func() { round(n + 1) })
		})
	}
	round(1)
}

// complete announces the role and closes the saga (saga.Executor.complete).
func (s *site) complete() {
	g := s.run.g
	if !g.RoleChanged {
		rc := events.RoleChanged{From: g.From, To: g.To, Epoch: g.Epoch, Reason: clip(g.Reason, 1024), FailoverID: g.ID}
		rc.Lineage = s.st.LineageAfter(rc)
		s.publish(&rc)
	}
	s.publish(&events.FailoverCompleted{FailoverID: g.ID, Role: g.To, Epoch: g.Epoch})
	s.sagaBusy, s.run = false, nil
}

// abort undoes what the promotion took, latest first, counting the step
// in flight, then records FailoverAborted (saga.Executor.abort). The
// database's demotion is queued behind any command still running.
func (s *site) abort(step, reason string, interrupted bool) {
	g := s.run.g
	inFlight := g.NextStep()
	var undo []string
	for i := len(g.Steps) - 1; i >= 0; i-- {
		st := g.Steps[i]
		if (g.Done[st] || st == inFlight) && (st == saga.StepTakeVIP || strings.HasPrefix(st, "promote-")) {
			undo = append(undo, st)
		}
	}
	var undone []string
	var each func(i int)
	each = func(i int) {
		if i == len(undo) {
			s.publish(&events.FailoverAborted{FailoverID: g.ID, Step: step, Reason: clip(reason, 4096), Interrupted: interrupted, Undone: undone})
			s.sagaBusy, s.run = false, nil
			return
		}
		st := undo[i]
		record := func() {
			undone = append(undone, st)
			s.publish(&events.FailoverStepDone{FailoverID: g.ID, Step: "undo-" + st, OK: true})
			each(i + 1)
		}
		if st == saga.StepTakeVIP {
			s.vip = false
			record()
			return
		}
		s.dbCommand(func() { s.w.demote(s); record() })
	}
	each(0)
}
