// Package saga carries a role change out step by step and records every
// step in the log, so that a crash mid-failover resumes from the first step
// not recorded as done. Every step is idempotent for that reason.
package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/hook"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
)

// Step names, in the order of the plans.
const (
	// StepClaimArbiters has this site's arbiter service hold its managing
	// sessions and make sure the peer does not (events.ArbitersClaimed)
	// before a takeover the peer cannot be asked about.
	StepClaimArbiters = "claim-arbiters"
	StepVeto          = "veto"
	StepPreS2M        = "pre-s2m"
	StepFencePeer     = "fence-peer"
	// StepCheckPosition asks each database for a fresh position before
	// anything is moved and aborts when a replica is too far behind: a
	// switchover refused for lag leaves the active site as it was.
	StepCheckPosition = "check-position"
	// StepCatchUp waits, once a reachable peer is fenced, until the
	// replicas have what its fenced primaries committed last.
	StepCatchUp       = "catch-up"
	StepTakeVIP       = "take-vip"
	StepStartServices = "start-services"
	StepPostS2M       = "post-s2m"

	StepPreM2S       = "pre-m2s"
	StepStopServices = "stop-services"
	StepReleaseVIP   = "release-vip"
	StepPostM2S      = "post-m2s"
)

func promoteStep(db events.Database) string { return "promote-" + string(db) }
func demoteStep(db events.Database) string  { return "demote-" + string(db) }

// Publisher stores events in the site's log.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, parent *events.Envelope) (*events.Envelope, error)
}

// VIP moves the service address.
type VIP interface {
	Take(ctx context.Context) error
	Release(ctx context.Context) error
}

// Services starts and stops the managed services.
type Services interface {
	Start(ctx context.Context, s svcmon.Service) error
	Stop(ctx context.Context, s svcmon.Service) error
}

// Hooks are the configured scripts; empty means none.
type Hooks struct {
	Veto, PreS2M, PostS2M, PreM2S, PostM2S string
	Timeout                                time.Duration
}

// Executor runs sagas for one site.
type Executor struct {
	Site, Peer events.SiteID
	Bus        Publisher
	VIP        VIP // nil: no VIP configured
	Services   []svcmon.Service
	Control    Services
	Hooks      Hooks
	Databases  []events.Database
	// DBTimeout bounds the wait for dbmonitor's DatabaseCommandDone;
	// FenceTimeout the wait for a reachable peer to stand down.
	DBTimeout, FenceTimeout time.Duration
	// FenceAnswerTimeout is how long a peer that runs no failover (as far
	// as this site's copy of its log tells) has to answer a fence: its
	// decision round plus the sourcing of its log; one that runs a
	// failover has FenceTimeout. 0: FenceTimeout.
	FenceAnswerTimeout time.Duration
	// LagLimits are failover.maxLagBytes/maxLagTransactions, which the
	// check-position step applies to the fresh answers (MaxAge unused).
	LagLimits pair.LagLimits
	// Wait blocks until cond holds on the projection, ctx ends or timeout
	// passes, and returns the state it last saw.
	Wait func(ctx context.Context, cond func(*pair.State) bool, timeout time.Duration) (*pair.State, error)
	Now  func() time.Time
	Log  *slog.Logger
	// AfterPublish, when set, sees every event the executor stored (tests
	// use it to crash the saga at a chosen point).
	AfterPublish func(env *events.Envelope)
	// ClaimTimeout bounds the wait for the arbiter service's answer to a
	// claim; 0: this site cannot claim (no arbiters, or a custom
	// failure-detection script) and plans never hold the step.
	ClaimTimeout time.Duration
	// TakeoverHold (config.Timing) is how long after this site last heard
	// the peer a claim over an unreachable peer may be made: by then an
	// isolated active has released the VIP and fenced its databases.
	TakeoverHold time.Duration
	// SelfFenceTimeout bounds one try of a demotion's database step
	// (failover.selfFenceTimeout); 0: DBTimeout.
	SelfFenceTimeout time.Duration
}

// Plan lists the steps of a change to role to, leaving out what is not
// configured. claim: a promotion the peer cannot be asked about starts by
// claiming the arbiters, when this site can.
func (x *Executor) Plan(to events.Role, claim bool) []string {
	var p []string
	add := func(ok bool, s string) {
		if ok {
			p = append(p, s)
		}
	}
	if to == events.RoleActive {
		add(claim && x.ClaimTimeout > 0, StepClaimArbiters)
		add(len(x.Databases) > 0, StepCheckPosition)
		add(x.Hooks.Veto != "", StepVeto)
		add(x.Hooks.PreS2M != "", StepPreS2M)
		add(x.Peer != "", StepFencePeer)
		add(x.Peer != "" && len(x.Databases) > 0, StepCatchUp)
		for _, db := range x.Databases {
			p = append(p, promoteStep(db))
		}
		add(x.VIP != nil, StepTakeVIP)
		add(len(x.Services) > 0, StepStartServices)
		add(x.Hooks.PostS2M != "", StepPostS2M)
	} else {
		// The fence first: the address goes and the databases turn
		// read-only before any hook or service stop can delay it, so
		// the self-fence bound (config.Timing) does not depend on them.
		add(x.VIP != nil, StepReleaseVIP)
		for _, db := range x.Databases {
			p = append(p, demoteStep(db))
		}
		add(x.Hooks.PreM2S != "", StepPreM2S)
		add(len(x.Services) > 0, StepStopServices)
		add(x.Hooks.PostM2S != "", StepPostM2S)
	}
	if len(p) == 0 {
		// FailoverStarted needs a plan; an empty one still announces.
		p = []string{"announce"}
	}
	return p
}

func (x *Executor) publish(ctx context.Context, ev events.Event) error {
	_, err := x.publishEnv(ctx, ev)
	return err
}

// publishEnv records ev and returns its envelope.
func (x *Executor) publishEnv(ctx context.Context, ev events.Event) (*events.Envelope, error) {
	env, err := x.Bus.Publish(ctx, ev, nil)
	if err != nil {
		return nil, err
	}
	if x.AfterPublish != nil {
		x.AfterPublish(env)
	}
	return env, nil
}

// Run carries out s from its first step not done. It returns when the saga
// is completed or aborted, or with ctx's error when stopped midway (the log
// then holds where to resume).
func (x *Executor) Run(ctx context.Context, s *pair.Saga) error {
	log := x.Log.With("failover", s.ID, "to", s.To)
	start := x.Now()
	// A demotion must end in standby: a failed step is recorded and the
	// next one tried, but a database is retried until it is read-only, for
	// a standby whose database accepts writes is a second primary. A
	// promotion stops at the first failure and undoes what it took.
	demotion := s.To != events.RoleActive
	for _, step := range s.Steps {
		if s.Done[step] {
			continue
		}
		for attempt := 1; ; attempt++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			t := time.Now()
			out, err := x.try(ctx, s, step, attempt)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			done := events.FailoverStepDone{FailoverID: s.ID, Step: step, OK: err == nil, Output: clip(out), DurationSeconds: time.Since(t).Seconds()}
			if err != nil {
				done.Error = clip(err.Error())
			}
			if perr := x.publish(ctx, done); perr != nil {
				return fmt.Errorf("record step %s: %w", step, perr)
			}
			if err == nil {
				log.Info("failover step done", "step", step)
				s.Done[step] = true
				break
			}
			log.Warn("failover step failed", "step", step, "attempt", attempt, "err", err)
			if !demotion {
				return x.abort(ctx, s, step, err.Error(), false)
			}
			if !isDemote(step) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(demoteRetry):
			}
		}
	}
	return x.complete(ctx, s, start)
}

// demoteRetry is the pause between tries of a failed demote step.
const demoteRetry = time.Second

func isDemote(step string) bool { return strings.HasPrefix(step, "demote-") }

// Resume carries on a saga that a previous process left running. A
// demotion goes on where it stopped: it must end in standby. A promotion
// that had announced active completes (the restart hold of the process
// decides whether the VIP and services come back). Any other promotion is
// aborted as interrupted and undone: the claim, the position answers and
// the fence it rested on are as old as the crash, so the decision is taken
// again, with a fresh claim and position.
func (x *Executor) Resume(ctx context.Context, s *pair.Saga) error {
	switch {
	case s.To != events.RoleActive:
		return x.Run(ctx, s)
	case s.RoleChanged:
		return x.complete(ctx, s, x.Now())
	}
	return x.abort(ctx, s, s.NextStep(), "interrupted by a restart before it announced active; the decision is taken again with a fresh claim and position", true)
}

func (x *Executor) complete(ctx context.Context, s *pair.Saga, start time.Time) error {
	if !s.RoleChanged {
		st := x.state(ctx)
		rc := events.RoleChanged{From: s.From, To: s.To, Epoch: s.Epoch, Reason: clip1k(s.Reason), FailoverID: s.ID}
		rc.Lineage = st.LineageAfter(rc)
		if err := x.publish(ctx, rc); err != nil {
			return fmt.Errorf("announce role: %w", err)
		}
	}
	d := max(x.Now().Sub(start).Seconds(), 0)
	if err := x.publish(ctx, events.FailoverCompleted{FailoverID: s.ID, Role: s.To, Epoch: s.Epoch, DurationSeconds: d}); err != nil {
		return fmt.Errorf("record completion: %w", err)
	}
	x.Log.Info("failover completed", "failover", s.ID, "to", s.To, "epoch", s.Epoch)
	return nil
}

// abort undoes what the promotion s took and records FailoverAborted.
func (x *Executor) abort(ctx context.Context, s *pair.Saga, step, reason string, interrupted bool) error {
	undone, problems := x.undo(ctx, s)
	if len(problems) > 0 {
		reason += "; undoing it failed: " + strings.Join(problems, "; ")
	}
	ev := events.FailoverAborted{FailoverID: s.ID, Step: step, Reason: clip(reason), Interrupted: interrupted, Undone: undone}
	if err := x.publish(ctx, ev); err != nil {
		return fmt.Errorf("record abort: %w", err)
	}
	x.Log.Warn("failover aborted", "failover", s.ID, "step", step, "undone", undone, "why", reason)
	return nil
}

// undo reverses, latest first, the steps of promotion s that took
// something — done, or in flight when it stopped (its effect may have
// happened unrecorded): services stop, the VIP goes, promoted databases
// turn read-only again. A fenced peer is not asked back: the liveness
// rule (decide) makes the site active at the highest epoch active again.
func (x *Executor) undo(ctx context.Context, s *pair.Saga) (undone, problems []string) {
	inFlight := s.NextStep()
	for i := len(s.Steps) - 1; i >= 0; i-- {
		step := s.Steps[i]
		if !s.Done[step] && step != inFlight {
			continue
		}
		var err error
		switch {
		case step == StepStartServices:
			err = x.eachService(ctx, events.RoleStandby)
		case step == StepTakeVIP:
			err = x.VIP.Release(ctx)
		case strings.HasPrefix(step, "promote-"):
			_, err = x.database(ctx, s, "demote", events.Database(strings.TrimPrefix(step, "promote-")))
		default:
			continue
		}
		done := events.FailoverStepDone{FailoverID: s.ID, Step: clipTo("undo-"+step, 64), OK: err == nil}
		if err != nil {
			done.Error = clip(err.Error())
			problems = append(problems, step+": "+err.Error())
		} else {
			undone = append(undone, step)
		}
		if perr := x.publish(ctx, done); perr != nil {
			problems = append(problems, "record undo-"+step+": "+perr.Error())
		}
	}
	return undone, problems
}

func (x *Executor) step(ctx context.Context, s *pair.Saga, step string) (string, error) {
	return x.try(ctx, s, step, 1)
}

// try carries out one attempt of step; a database command retried asks
// dbmonitor afresh rather than reading the failed answer again.
func (x *Executor) try(ctx context.Context, s *pair.Saga, step string, attempt int) (string, error) {
	switch step {
	case "announce":
		return "", nil
	case StepClaimArbiters:
		held, err := x.holdTakeover(ctx)
		if err != nil {
			return held, err
		}
		c, err := x.Claim(ctx, s.ID, s.Reason)
		if err != nil {
			return held, err
		}
		return held + fmt.Sprintf("%d of %d arbiters held, %d managed by the peer: %s", c.Held, c.N, c.Managed, c.Description), nil
	case StepVeto:
		return x.hook(ctx, s, x.Hooks.Veto, "veto", "s2m")
	case StepPreS2M:
		return x.hook(ctx, s, x.Hooks.PreS2M, "pre", "s2m")
	case StepPostS2M:
		return x.hook(ctx, s, x.Hooks.PostS2M, "post", "s2m")
	case StepPreM2S:
		return x.hook(ctx, s, x.Hooks.PreM2S, "pre", "m2s")
	case StepPostM2S:
		return x.hook(ctx, s, x.Hooks.PostM2S, "post", "m2s")
	case StepFencePeer:
		return x.fence(ctx, s)
	case StepCheckPosition:
		return x.checkPosition(ctx, s)
	case StepCatchUp:
		return x.catchUp(ctx, s)
	case StepTakeVIP:
		return "", x.VIP.Take(ctx)
	case StepReleaseVIP:
		return "", x.VIP.Release(ctx)
	case StepStartServices:
		return "", x.eachService(ctx, events.RoleActive)
	case StepStopServices:
		return "", x.eachService(ctx, events.RoleStandby)
	}
	for _, db := range x.Databases {
		switch step {
		case promoteStep(db):
			return x.database(ctx, s, "promote", db)
		case demoteStep(db):
			id := s.ID
			if attempt > 1 {
				id += "/" + strconv.Itoa(attempt)
			}
			return x.databaseAs(ctx, s, id, "demote", db)
		}
	}
	return "", fmt.Errorf("unknown step %q in the plan of failover %s", step, s.ID)
}

func (x *Executor) hook(ctx context.Context, s *pair.Saga, path, phase, dir string) (string, error) {
	env := []string{
		"DRWATCH_SITE=" + string(x.Site), "DRWATCH_PEER=" + string(x.Peer),
		"DRWATCH_FAILOVER_ID=" + s.ID, "DRWATCH_EPOCH=" + strconv.FormatUint(uint64(s.Epoch), 10),
		"DRWATCH_FROM=" + string(s.From), "DRWATCH_TO=" + string(s.To),
		"DRWATCH_MANUAL=" + strconv.FormatBool(s.Manual), "DRWATCH_FORCE=" + strconv.FormatBool(s.Force),
	}
	res, err := hook.Run(ctx, path, []string{phase, dir}, env, x.Hooks.Timeout)
	if err != nil && phase == "veto" {
		err = fmt.Errorf("vetoed by failover.vetoHook: %w", err)
	}
	return res.Output, err
}

// eachService brings every managed service to what role wants; all are
// tried, the first error is returned.
func (x *Executor) eachService(ctx context.Context, role events.Role) error {
	var errs []error
	for _, svc := range x.Services {
		var err error
		if svc.Wanted(role) {
			err = x.Control.Start(ctx, svc)
		} else {
			err = x.Control.Stop(ctx, svc)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fence asks a peer that may still be active to stand down and waits for
// it. A peer that cannot be asked — unreachable from the start, or gone
// while being fenced — may be active behind the cut: the promotion goes on
// only with the arbiters claimed (fenceUnreachable).
func (x *Executor) fence(ctx context.Context, s *pair.Saga) (string, error) {
	st := x.state(ctx)
	if st.PeerUnreachable() {
		return x.fenceUnreachable(ctx, s, "unreachable")
	}
	if st.PeerPromoting() {
		// The peer is promoting itself (a resume, its own takeover):
		// "standby" is about to be stale. Wait for its outcome, then
		// fence what it became.
		id := st.PeerSaga.ID
		var err error
		st, err = x.Wait(ctx, func(st *pair.State) bool { return !st.PeerPromoting() || st.PeerUnreachable() }, x.FenceTimeout)
		if err != nil {
			return "", fmt.Errorf("the peer's own promotion %s still runs after %s; not promoting beside it: %w", id, x.FenceTimeout, err)
		}
		if st.PeerUnreachable() {
			return x.fenceUnreachable(ctx, s, "lost while it promoted itself")
		}
	}
	// The peer is asked even when this site's copy of its log says
	// standby: that copy may lag (the link that sources it can fail while
	// the heartbeat still answers) behind a promotion the peer has begun.
	// Only its answer, in its own log, says it is standby and will stay.
	req := events.FailoverRequested{Target: x.Peer, ToRole: events.RoleStandby, Reason: clip1k("fenced by " + string(x.Site) + " failover " + s.ID), RequestedBy: "orchestrator@" + string(x.Site), Epoch: s.Epoch}
	env, err := x.publishEnv(ctx, req)
	if err != nil {
		return "", err
	}
	start := time.Now()
	st, waited, err := x.awaitFenceAnswer(ctx, env.ID)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// A peer that answers the heartbeat but not the request (its
		// orchestrator down, its log cut off from ours, or cut off from
		// everything a moment ago) cannot be told apart from one still
		// serving: it fences itself only once it has lost the arbiters,
		// counted from a loss this site's heartbeat sees too. So the
		// heartbeat must lose it first; then the takeover hold and the
		// claim decide, as for any unreachable peer.
		answeredOrLost := func(st *pair.State) bool {
			settled, _, _ := FenceAnswer(st, env.ID)
			return settled || st.PeerUnreachable()
		}
		st, err = x.waitFor(ctx, answeredOrLost, x.FenceTimeout-time.Since(start))
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("peer %s answers the heartbeat but not the fence request (none within %s, %s in all): it may still serve; not promoting beside it", x.Peer, waited, x.FenceTimeout)
		}
		if settled, _, _ := FenceAnswer(st, env.ID); !settled {
			return x.fenceUnreachable(ctx, s, fmt.Sprintf("did not answer the fence request within %s, then the heartbeat lost it", waited))
		}
	}
	if settled, ok, why := FenceAnswer(st, env.ID); settled {
		if !ok {
			return "", fmt.Errorf("peer %s will not stay standby: %s; not promoting beside it", x.Peer, why)
		}
		return "peer " + string(x.Peer) + " " + why, nil
	}
	return x.fenceUnreachable(ctx, s, "became unreachable while being fenced")
}

// awaitFenceAnswer waits for the peer's answer to fence request id, or
// for the heartbeat to lose it: FenceAnswerTimeout while this site's copy
// of the peer's log shows no failover of its running, FenceTimeout in all.
// It returns the bound that ran out.
func (x *Executor) awaitFenceAnswer(ctx context.Context, id events.ID) (*pair.State, time.Duration, error) {
	start := time.Now()
	quick := x.FenceAnswerTimeout
	if quick <= 0 || quick > x.FenceTimeout {
		quick = x.FenceTimeout
	}
	done := func(st *pair.State) bool {
		settled, _, _ := FenceAnswer(st, id)
		return settled || st.PeerUnreachable()
	}
	for {
		left := x.FenceTimeout - time.Since(start)
		st, err := x.waitFor(ctx, done, min(quick, left))
		if err == nil || ctx.Err() != nil {
			return st, 0, err
		}
		if !st.PeerSagaRunning() {
			return st, quick, err
		}
		if time.Since(start) >= x.FenceTimeout {
			return st, x.FenceTimeout, err
		}
	}
}

// waitFor is Wait for cond with a bound that may have run out: it fails
// unless cond holds by then (Wait with no time left only looks).
func (x *Executor) waitFor(ctx context.Context, cond func(*pair.State) bool, timeout time.Duration) (*pair.State, error) {
	if timeout <= 0 {
		st, _ := x.Wait(ctx, cond, 0)
		if cond(st) {
			return st, nil
		}
		return st, errors.New("no time left")
	}
	return x.Wait(ctx, cond, timeout)
}

// FenceAnswer reads the peer's answer to fence request id in st: settled
// once the peer answered and, when it started a stand-down for the
// request, that ended; ok when by its answer the peer is standby; why
// says what it answered.
//
// A decision recorded without acting (already standby, or the request
// discarded as stale or expired — a clock running minutes apart makes a
// request look old) is enough when the peer is not active: its log shows
// it decided on the request, so it ran no failover then and holds this
// promotion's start (sourced before the request), and any promotion of
// its own from then on meets it (guard.peer-promoting, a claim against the
// arbiters this site holds).
func FenceAnswer(st *pair.State, id events.ID) (settled, ok bool, why string) {
	a := st.PeerAnswer
	if a == nil || a.RequestID != id {
		return false, false, ""
	}
	if a.Decided {
		if st.PeerRole != events.RoleActive {
			return true, true, "is " + string(st.PeerRole) + " (it answered " + a.Branch + ")"
		}
		return true, false, "it is active and answered " + a.Branch + ": " + a.Reason
	}
	g := st.PeerSaga
	if g == nil || g.ID != a.FailoverID || !g.Finished {
		return false, false, ""
	}
	if g.Aborted || st.PeerRole != events.RoleStandby {
		return true, false, "its stand-down " + g.ID + " did not complete"
	}
	return true, true, "stood down (" + g.ID + ") and is standby"
}

// fenceUnreachable lets a promotion over a peer that cannot be asked go on
// only when the arbiters say the peer does not hold them: claimed earlier
// in this saga, or claimed now. A site that cannot claim (no arbiters, or
// a custom failure-detection script) goes on with an automatic takeover,
// which its verdict authorised, and with an operator's only when forced.
func (x *Executor) fenceUnreachable(ctx context.Context, s *pair.Saga, how string) (string, error) {
	what := "peer " + string(x.Peer) + " " + how
	switch {
	case s.Done[StepClaimArbiters]:
		return what + "; the arbiters were claimed (" + StepClaimArbiters + "); epoch " + strconv.FormatUint(uint64(s.Epoch), 10) + " fences it on return", nil
	case x.ClaimTimeout > 0:
		held, err := x.holdTakeover(ctx)
		if err != nil {
			return held, err
		}
		what = held + what
		c, err := x.Claim(ctx, s.ID+"/fence", what+": "+s.Reason)
		if err != nil && ForcedPastClaim(s, c, x.state(ctx)) && ctx.Err() == nil {
			return fmt.Sprintf("%s; forced, proceeding on the operator's word although the claim failed (%v): no arbiter shows the peer managing it", what, err), nil
		}
		if err != nil {
			return "", fmt.Errorf("%s and it may be active behind the cut: %w", what, err)
		}
		return fmt.Sprintf("%s; the arbiters claimed: %d of %d held, %d managed by the peer", what, c.Held, c.N, c.Managed), nil
	case !s.Manual:
		// A custom failure-detection script's verdict is the only
		// authority such a site has; it started this takeover.
		return what + "; no arbiters to claim: proceeding on the failure-detection verdict", nil
	case s.Force && x.state(ctx).PeerUnreachable():
		return what + "; no arbiters to claim: forced, proceeding on the operator's word", nil
	}
	return "", fmt.Errorf("%s and this site has no arbiters to claim (none configured, or a custom failure-detection script): only a forced failover proceeds", what)
}

// state is the projection as it stands.
func (x *Executor) state(ctx context.Context) *pair.State {
	s, _ := x.Wait(ctx, func(*pair.State) bool { return true }, 0)
	return s
}

// ForcedPastClaim reports whether a forced promotion goes on although its
// claim of the arbiters failed: only over a peer the heartbeat has lost,
// on an answer of the arbiter service (its silence is no word of the
// arbiters'), and with no arbiter listing the peer's session — the
// operator's word stands where the arbiters cannot answer, never against
// ones that show the peer managing them.
func ForcedPastClaim(s *pair.Saga, c events.ArbitersClaimed, st *pair.State) bool {
	return s.Force && st.PeerUnreachable() && c.ClaimID != "" && c.Outcome != events.ClaimConflict && c.Managed == 0
}

// holdTakeover waits, when the peer is unreachable, until TakeoverHold has
// passed since this site last heard it (the heartbeat's Since, the latest
// of its lines): an active cut off at that moment has by then released the
// VIP and made its databases read-only on its own (the self-fence bound
// of config.Timing), so the claim that follows cannot complete beside a
// writable primary. It reports the wait for the step's record.
func (x *Executor) holdTakeover(ctx context.Context) (string, error) {
	st := x.state(ctx)
	if x.TakeoverHold <= 0 || !st.PeerUnreachable() || st.UnreachableSince.IsZero() {
		return "", nil
	}
	until := st.UnreachableSince.Add(x.TakeoverHold)
	wait := until.Sub(x.Now())
	if wait <= 0 {
		return "", nil
	}
	x.Log.Info("holding the takeover until an isolated peer has fenced itself", "until", until, "hold", x.TakeoverHold)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-t.C:
	}
	return fmt.Sprintf("held %s until %s (takeover hold after the peer was last heard); ", wait.Round(time.Millisecond), until.UTC().Format(time.RFC3339)), nil
}

// Claim asks this site's arbiter service to claim the arbiters and waits
// for its answer; an answer already in the log (a resumed saga) is used as
// is. Any outcome but clear is an error that says what the arbiters showed.
func (x *Executor) Claim(ctx context.Context, id, reason string) (events.ArbitersClaimed, error) {
	has := func(st *pair.State) bool { return st.LastClaim != nil && st.LastClaim.ClaimID == id }
	st, _ := x.Wait(ctx, has, 0)
	if !has(st) {
		if err := x.publish(ctx, events.ArbitersClaimRequested{ClaimID: id, Reason: clip1k(reason)}); err != nil {
			return events.ArbitersClaimed{}, fmt.Errorf("ask the arbiter service to claim the arbiters: %w", err)
		}
		var err error
		st, err = x.Wait(ctx, has, x.ClaimTimeout)
		if err != nil {
			return events.ArbitersClaimed{}, fmt.Errorf("claim the arbiters: no answer from the arbiter service within %s: %w", x.ClaimTimeout, err)
		}
	}
	c := *st.LastClaim
	if c.Outcome != events.ClaimClear {
		return c, fmt.Errorf("claim the arbiters: %s (%d of %d held, %d managed by the peer, %d unreachable): %s",
			c.Outcome, c.Held, c.N, c.Managed, c.Unreachable, c.Description)
	}
	return c, nil
}

// ask sends this site's dbmonitor command for db and waits for its
// answer; an answer already in the log (a resumed saga) is used as is.
func (x *Executor) ask(ctx context.Context, s *pair.Saga, command string, db events.Database) (events.DatabaseCommandDone, error) {
	return x.askAs(ctx, s, s.ID, command, db)
}

// askAs is ask with the command's FailoverID given: a step asking the
// same question more than once tells its rounds apart by it.
func (x *Executor) askAs(ctx context.Context, s *pair.Saga, id, command string, db events.Database) (events.DatabaseCommandDone, error) {
	key := pair.DBKey{FailoverID: id, Command: command, Database: db}
	has := func(st *pair.State) bool { _, ok := st.DBDone[key]; return ok }
	st, _ := x.Wait(ctx, has, 0)
	if !has(st) {
		cmd := events.DatabaseCommand{Command: command, Database: db, Target: x.Site, FailoverID: id}
		// A forced failover accepts losing what the replica received and
		// could not apply; dbmonitor refuses that otherwise.
		cmd.Force = command == "promote" && s.Force
		if err := x.publish(ctx, cmd); err != nil {
			return events.DatabaseCommandDone{}, err
		}
		timeout := x.DBTimeout
		if command == "demote" && x.SelfFenceTimeout > 0 {
			timeout = x.SelfFenceTimeout // the demotion tries again
		}
		var err error
		st, err = x.Wait(ctx, has, timeout)
		if err != nil {
			return events.DatabaseCommandDone{}, fmt.Errorf("%s %s: no answer from dbmonitor within %s: %w", command, db, timeout, err)
		}
	}
	return st.DBDone[key], nil
}

// database carries out command on db and reports its answer.
func (x *Executor) database(ctx context.Context, s *pair.Saga, command string, db events.Database) (string, error) {
	return x.databaseAs(ctx, s, s.ID, command, db)
}

func (x *Executor) databaseAs(ctx context.Context, s *pair.Saga, id, command string, db events.Database) (string, error) {
	done, err := x.askAs(ctx, s, id, command, db)
	if err != nil {
		return "", err
	}
	if !done.OK {
		return done.Position, fmt.Errorf("%s %s failed: %s", command, db, done.Error)
	}
	out := "position " + done.Position
	if done.Error != "" {
		out += "; " + done.Error // an OK answer's warning: what a forced promote discarded
	}
	return out, nil
}

// checkPosition asks for every database's position before the promotion
// moves anything: the decision's in-sync guard read whatever figure the
// log held (perhaps none, perhaps an old one), and promoting a replica
// that is behind loses what it has not got. While the peer is active and
// writing, a replica is a few transactions behind at any instant, so the
// question is asked again for up to positionPatience before refusing. A
// forced failover goes on and records what it overrode.
func (x *Executor) checkPosition(ctx context.Context, s *pair.Saga) (string, error) {
	st := x.state(ctx)
	patience := time.Duration(0)
	if !st.PeerUnreachable() && st.PeerRole == events.RoleActive {
		patience = positionPatience
	}
	out, problems, err := x.positions(ctx, s, StepCheckPosition, x.LagLimits, patience)
	if err != nil {
		return "", err
	}
	if len(problems) == 0 {
		return out, nil
	}
	if s.Force {
		return out + "; forced: promoting despite " + strings.Join(problems, "; "), nil
	}
	return out, fmt.Errorf("not promoting: %s; a forced failover promotes anyway", strings.Join(problems, "; "))
}

// positionPatience bounds how long check-position asks again while an
// active peer writes, and catch-up waits for a fenced peer's last writes.
const positionPatience = 3 * time.Second

// catchUp waits until the replicas have everything a fenced peer's
// primaries committed before turning read-only: a switchover loses
// nothing. After positionPatience the configured limits decide, as
// check-position's. An unreachable peer was not fenced over the link and
// its primaries cannot be asked: nothing to wait for.
func (x *Executor) catchUp(ctx context.Context, s *pair.Saga) (string, error) {
	st := x.state(ctx)
	if st.PeerUnreachable() {
		return "peer " + string(x.Peer) + " unreachable: its primaries cannot be asked; check-position judged the replicas", nil
	}
	out, problems, err := x.positions(ctx, s, StepCatchUp, pair.LagLimits{}, positionPatience)
	if err != nil {
		return "", err
	}
	if len(problems) == 0 {
		return out, nil
	}
	// Not caught up in time: the configured limits decide.
	_, over, err := x.positions(ctx, s, StepCatchUp+"/limits", x.LagLimits, 0)
	if err != nil {
		return "", err
	}
	if len(over) == 0 {
		return out + "; within the configured limits after " + positionPatience.String(), nil
	}
	if s.Force {
		return out + "; forced: promoting despite " + strings.Join(over, "; "), nil
	}
	return out, fmt.Errorf("not promoting: the fenced peer's last writes did not arrive: %s; a forced failover promotes anyway", strings.Join(over, "; "))
}

// positions asks every database for its position (tag tells the rounds
// apart in the log) and judges the answers against lim, asking again
// every 200 ms for up to patience while any is out of line. It returns
// the record's lines and what is still wrong.
func (x *Executor) positions(ctx context.Context, s *pair.Saga, tag string, lim pair.LagLimits, patience time.Duration) (string, []string, error) {
	deadline := time.Now().Add(patience)
	for round := 1; ; round++ {
		var lines, problems []string
		st := x.state(ctx)
		for _, db := range x.Databases {
			done, err := x.askAs(ctx, s, s.ID+"/"+tag+"/"+strconv.Itoa(round), "position", db)
			if ctx.Err() != nil {
				return "", nil, ctx.Err()
			}
			line, problem := JudgePosition(db, done, err, lim, st.OwnsLineage(db))
			lines = append(lines, line)
			if problem != "" {
				problems = append(problems, problem)
			}
		}
		if len(problems) == 0 || !time.Now().Before(deadline) {
			return strings.Join(lines, "; "), problems, nil
		}
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// JudgePosition reads one database's position answer (or the error of
// waiting for it) against the limits: a line for the record and, when the
// promotion must not go on, the problem.
//
// ownsLineage (pair.OwnsLineage): this site's server holds the pair's
// latest history, so following no primary is what it should do.
func JudgePosition(db events.Database, done events.DatabaseCommandDone, waitErr error, lim pair.LagLimits, ownsLineage bool) (line, problem string) {
	if waitErr != nil {
		return string(db) + ": no position", "no fresh position of " + string(db) + ": " + waitErr.Error()
	}
	if !done.OK {
		return string(db) + ": position failed", "position of " + string(db) + " failed: " + done.Error
	}
	l := pair.Lag{Bytes: done.LagBytes, Transactions: done.LagTransactions}
	line = fmt.Sprintf("%s: position %s, %s", db, done.Position, db.Behind(done.LagBytes, done.LagTransactions))
	if done.FollowsNone && ownsLineage {
		return line + ", follows no primary: it holds the latest history (this site was active, or promoted it, last)", ""
	}
	if done.FollowsNone {
		// Its lag against a dead primary reads 0, yet it has none of what
		// the active site wrote since it stopped following.
		return line + ", follows no primary", fmt.Sprintf("%s replicates from no primary (a former primary never made a replica again?): "+
			"it lacks what the active site wrote since; `drwatch db resync --database %s` makes it a replica", db, db)
	}
	if ok, o := lim.Check(db, l); !ok {
		return line, o.String()
	}
	return line, ""
}

// clip bounds a step's output or error (events.FailoverStepDone, 4 KiB).
func clip(s string) string { return clipTo(s, 4096) }

// clip1k bounds a reason (1 KiB in most events).
func clip1k(s string) string { return clipTo(s, 1024) }

// clipTo cuts s to at most n bytes, as the events' validation bounds them.
func clipTo(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
