// Package orchestrator turns the pair's events into the one decision that
// matters — must this site become active or standby — and carries it out as
// a saga recorded step by step in the site's log.
//
// Its state is a projection of the log (pkg/pair); the decision is a
// pure function (internal/decide); execution is internal/saga. A restart
// replays the log and resumes any saga left half done.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vipmon"
)

// Run is the orchestrator run alone: it also keeps the peer source of the
// site's log healthy.
func Run(ctx context.Context, deps service.Deps) error {
	o, err := OptionsFromConfig(deps.Config)
	if err != nil {
		return err
	}
	return RunWith(ctx, deps, o)
}

// RunInSite is Run for the drwatch all-in-one process, which keeps the peer
// source itself.
func RunInSite(ctx context.Context, deps service.Deps) error {
	o, err := OptionsFromConfig(deps.Config)
	if err != nil {
		return err
	}
	o.KeepPeerSource = false
	return RunWith(ctx, deps, o)
}

// RunWith runs the orchestrator with explicit options until ctx ends.
func RunWith(ctx context.Context, deps service.Deps, o Options) error {
	if err := o.validate(); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	r := &runner{
		deps: deps, opts: o,
		log:     deps.Log.With("component", "orchestrator"),
		st:      pair.New(o.Site, o.Peer, o.InitialRole, o.Lines),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		started: map[string]bool{},
	}
	return r.run(ctx)
}

type runner struct {
	deps service.Deps
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	st      *pair.State
	changed chan struct{} // closed and replaced at every applied event
	wake    chan struct{}
	// sagaActive: this process is carrying a saga out (the service and
	// VIP monitors stand back).
	sagaActive bool
	// vipMu serialises the VIP monitor's rounds with the saga's VIP steps.
	vipMu sync.Mutex
	// held: a site restarted active has not yet learned the peer's latest
	// role; the VIP and service monitors stand back (confirmPeer).
	held bool
	// started holds the sagas this process started; any other running
	// saga was left by an earlier process.
	started map[string]bool
	// settingsReported is the last difference of pair-wide settings
	// reported, so each is reported once per process.
	settingsReported string
}

func (r *runner) ownSaga(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started[id]
}

// lockedVIP is the saga's view of the VIP: each move holds the runner's
// vipMu so it never interleaves with a VIP monitor round.
type lockedVIP struct {
	mu  *sync.Mutex
	vip vipmon.VIP
}

func (l lockedVIP) Take(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.vip.Take(ctx)
}

func (l lockedVIP) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.vip.Release(ctx)
}

func filters() []string {
	f := make([]string, len(pair.Types))
	for i, t := range pair.Types {
		f[i] = events.TypeFilter(t)
	}
	return f
}

func (r *runner) apply(env *events.Envelope) {
	r.mu.Lock()
	r.st.Apply(env)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) snapshot() (*pair.State, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Clone(), r.changed
}

// wait blocks until cond holds on the projection; timeout 0 looks once.
func (r *runner) wait(ctx context.Context, cond func(*pair.State) bool, timeout time.Duration) (*pair.State, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		st, changed := r.snapshot()
		if cond(st) || timeout == 0 {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-deadline:
			return st, fmt.Errorf("timed out after %s", timeout)
		case <-changed:
		}
	}
}

func (r *runner) run(ctx context.Context) error {
	last, err := r.rebuild(ctx)
	if err != nil {
		return fmt.Errorf("orchestrator: rebuild state: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.follow(ctx, last+1); err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("orchestrator: follow the log: %w", err))
		}
	}()
	st, _ := r.snapshot()
	r.log.Info("state rebuilt from the log", "lastSeq", last, "role", st.Role, "epoch", st.Epoch, "sagaRunning", st.SagaRunning())
	if st.RoleKnown && st.Role == events.RoleActive {
		// The log says active, but the peer may have taken over while
		// this site was down, and its RoleChanged reaches this log only
		// when the source catches up. Until then this site must not
		// answer on the VIP nor start services.
		r.mu.Lock()
		r.held = true
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.confirmPeer(ctx)
		}()
	}
	if !st.RoleKnown {
		// No role of its own in the log nor in ROLES: site.role applies
		// only to the pair's first start (role.go).
		awaiting, err := r.announceInitialRole(ctx)
		if err != nil {
			return fmt.Errorf("orchestrator: announce the initial role: %w", err)
		}
		if awaiting {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.awaitPeer(ctx)
			}()
		}
	}

	if err := r.recordSettings(ctx); err != nil {
		return fmt.Errorf("orchestrator: record the pair-wide settings: %w", err)
	}

	if r.opts.KeepPeerSource {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.deps.Bus.KeepPeerSource(ctx, bus.SourceKeeperOptions{}); err != nil {
				cancel(fmt.Errorf("orchestrator: peer source keeper: %w", err))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		svcmon.Monitor(ctx, svcmon.Controller{Timeout: r.opts.Hooks.Timeout}, r.opts.Services, r.opts.ServiceInterval, func() (events.Role, bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.st.Role, r.sagaActive || r.st.SagaRunning() || r.held || r.st.Mode(r.deps.Now()) == events.MaintenancePaused
		}, r.log.With("component", "serviceMonitor"))
	}()

	sagaVIP := r.sagaVIP()
	if r.opts.VIP != nil {
		m := &vipmon.Monitor{
			VIP: r.opts.VIP, Lock: &r.vipMu, Log: r.log.With("component", "vipMonitor"),
			Publish: func(ctx context.Context, ev events.VIPChanged) error {
				_, err := r.deps.Bus.Publish(ctx, ev, nil)
				return err
			},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Run(ctx, r.opts.VIPInterval, func() vipmon.Status {
				r.mu.Lock()
				defer r.mu.Unlock()
				mode := r.st.Mode(r.deps.Now())
				return vipmon.Status{Role: r.st.Role, Paused: r.sagaActive || r.st.SagaRunning() || r.held || mode == events.MaintenancePaused,
					ObserveOnly: r.opts.Policy.ObserveOnly || mode == events.MaintenanceObserveOnly}
			})
		}()
	}
	x := &saga.Executor{
		Site: r.opts.Site, Peer: r.opts.Peer, Bus: r.deps.Bus, VIP: sagaVIP,
		Services: r.opts.Services, Control: svcmon.Controller{Timeout: r.opts.Hooks.Timeout},
		Hooks: r.opts.Hooks, Databases: r.opts.Databases,
		DBTimeout: r.opts.DBTimeout, FenceTimeout: r.opts.FenceTimeout, FenceAnswerTimeout: r.opts.FenceAnswerTimeout, LagLimits: r.opts.Policy.LagLimits(),
		Wait: r.wait, Now: r.deps.Now, Log: r.log, AfterPublish: r.opts.afterPublish,
		ClaimTimeout: r.opts.ClaimTimeout, TakeoverHold: r.opts.TakeoverHold, SelfFenceTimeout: r.opts.SelfFenceTimeout,
	}
	tick := time.NewTicker(r.opts.Tick)
	defer tick.Stop()
	for {
		if err := r.step(ctx, x); err != nil && ctx.Err() == nil {
			r.log.Error("orchestrator round failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			r.releaseOnStop()
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return nil
		case <-r.wake:
		case <-tick.C:
		}
	}
}

// releaseOnStop removes the VIP as the orchestrator stops, as the
// supervisor's ExecStopPost (drwatch vip release) would a moment later:
// the drwatch process runs the arbiter service last, so its managing
// sessions — which keep the peer from taking over — end only after the
// address is gone. A hard kill skips this; then ExecStopPost is all there
// is (deployments/README.md).
func (r *runner) releaseOnStop() {
	if r.opts.VIP == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.vipMu.Lock()
	defer r.vipMu.Unlock()
	if err := releaseVIP(ctx, r.opts.VIP); err != nil {
		r.log.Error("stopping: the supervisor's drwatch vip release must remove the VIP", "err", err)
	}
}

// sagaVIP is the VIP as sagas move it, nil when none is configured.
func (r *runner) sagaVIP() saga.VIP {
	if r.opts.VIP == nil {
		return nil
	}
	return lockedVIP{mu: &r.vipMu, vip: r.opts.VIP}
}

// follow applies every new event of the log from seq on, in order, until
// ctx ends; bus.Follow waits for its last delivery, so nothing is applied
// after run returns.
func (r *runner) follow(ctx context.Context, seq uint64) error {
	return r.deps.Bus.Follow(ctx, seq, filters(), func(_ uint64, env *events.Envelope) { r.apply(env) })
}

// step is one round: resume a saga left running, or decide and record.
func (r *runner) step(ctx context.Context, x *saga.Executor) error {
	st, _ := r.snapshot()
	r.compareSettings(ctx, st)
	if st.SagaRunning() {
		r.mu.Lock()
		r.sagaActive = true
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.sagaActive = false
			r.mu.Unlock()
		}()
		id := st.Saga.ID
		run := x.Run
		if !r.ownSaga(id) {
			// Left running by an earlier process: a promotion is
			// decided again rather than carried on (saga.Resume).
			run = x.Resume
		}
		if err := run(ctx, st.Saga); err != nil {
			if ctx.Err() == nil {
				// Its record may be half written (an abort undone but
				// not recorded): the next round resumes it as an
				// earlier process's, which aborts and undoes again.
				r.mu.Lock()
				delete(r.started, id)
				r.mu.Unlock()
			}
			return err
		}
		// Let the projection catch up with the saga's end before deciding.
		_, err := r.wait(ctx, func(s *pair.State) bool { return s.Saga == nil || s.Saga.ID != id || s.Saga.Finished }, 10*time.Second)
		return err
	}
	now := r.deps.Now()
	pol := r.opts.Policy
	mode := st.Mode(now)
	if mode == events.MaintenanceObserveOnly {
		pol.ObserveOnly = true
	}
	d := decide.Decide(st, decide.Input{Policy: pol}, now)
	d, paused := pauseHold(d, mode, st)
	if d.Act {
		return r.start(ctx, x, st, d)
	}
	if !d.Record() {
		return r.followPeer(ctx, st, now)
	}
	rec := pair.Decided{Action: d.Action, Branch: d.Branch, Blocked: d.Blocked, ObserveOnly: d.ObserveOnly}
	if d.RequestID == "" && st.LastDecided == rec {
		return nil // a standing decision is recorded once
	}
	r.log.Info("failover decision", "action", d.Action, "branch", d.Branch, "blocked", d.Blocked, "observeOnly", d.ObserveOnly, "reason", d.Reason)
	ev := events.FailoverDecided{Action: d.Action, Branch: d.Branch, Reason: clip(d.Reason, 1024), Blocked: d.Blocked,
		ObserveOnly: d.ObserveOnly, Manual: d.Manual, Force: d.Force, RequestID: d.RequestID, Paused: paused}
	if _, err := r.deps.Bus.Publish(ctx, ev, nil); err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	_, err := r.wait(ctx, func(s *pair.State) bool {
		return s.LastDecided == rec && (d.RequestID == "" || s.Pending == nil || s.Pending.ID != d.RequestID)
	}, 10*time.Second)
	return err
}

func (r *runner) start(ctx context.Context, x *saga.Executor, st *pair.State, d decide.Decision) error {
	to := events.RoleActive
	if d.Action == events.ActionBeStandby {
		to = events.RoleStandby
	}
	id := uuid.Must(uuid.NewV7()).String()
	ev := events.FailoverStarted{
		FailoverID: id, From: st.Role, To: to, Epoch: d.Epoch, Manual: d.Manual, Force: d.Force,
		Reason: clip(d.Branch+": "+d.Reason, 1024), RequestID: d.RequestID, Steps: x.Plan(to, claims(d)),
	}
	r.log.Info("failover decided", "failover", id, "from", st.Role, "to", to, "epoch", d.Epoch, "branch", d.Branch, "reason", d.Reason)
	r.mu.Lock()
	r.started[id] = true
	r.mu.Unlock()
	env, err := r.deps.Bus.Publish(ctx, ev, nil)
	if err != nil {
		return fmt.Errorf("start failover: %w", err)
	}
	if r.opts.afterPublish != nil {
		r.opts.afterPublish(env)
	}
	// The next round finds the saga in the projection and runs it, the
	// same path a restart takes.
	_, err = r.wait(ctx, func(s *pair.State) bool { return s.Saga != nil && s.Saga.ID == id }, 10*time.Second)
	return err
}

// claims reports whether the promotion d starts must first claim the
// arbiters: a takeover on a verdict while the peer is unreachable, which
// the peer cannot be asked about and may be deciding at the same moment,
// and the liveness rule's resume, whose "the peer answers" may be one-way.
// Other promotions fence the peer first, and claim there when it turns
// out unreachable (saga's fence step).
func claims(d decide.Decision) bool {
	return d.Branch == decide.BranchTakeover || d.Branch == decide.BranchResume
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
