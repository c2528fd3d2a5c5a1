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
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vipmon"
)

// Options configure the orchestrator.
type Options struct {
	Site, Peer  events.SiteID
	InitialRole events.Role
	// Lines are the heartbeat lines that must all have lost the peer for
	// it to count as unreachable.
	Lines  []string
	Policy decide.Policy
	Hooks  saga.Hooks
	// VIP is nil when vip.address is not configured.
	VIP       vipmon.VIP
	Services  []svcmon.Service
	Databases []events.Database
	// DBTimeout bounds a promote/demote by dbmonitor; FenceTimeout the wait
	// for a reachable peer to stand down.
	DBTimeout, FenceTimeout time.Duration
	// Tick is how often time-based rules (a disable that ends, the wait
	// window, the block window) are re-decided without a new event.
	Tick time.Duration
	// ServiceInterval is the service monitor's round.
	ServiceInterval time.Duration
	// VIPInterval is the VIP monitor's round: how soon an address removed
	// by hand on the active site comes back, or one found on a standby
	// goes.
	VIPInterval time.Duration
	// PeerDatabases is where each database's server on the peer listens,
	// for re-pointing this site's server at it after a failover; a
	// database missing here is not re-pointed.
	PeerDatabases map[events.Database]HostPort
	Follow        decide.FollowPolicy
	// StartupHold bounds how long a site that restarts active waits to
	// learn the peer's latest role before it takes the VIP and starts
	// services on its own authority (see confirmPeer).
	StartupHold time.Duration
	// KeepPeerSource runs bus.KeepPeerSource: on when the orchestrator runs
	// alone; the drwatch all-in-one process runs one keeper for all.
	KeepPeerSource bool
	// ClaimTimeout bounds the wait for the arbiter service's answer to a
	// claim of the arbiters (events.ArbitersClaimRequested); 0 when this
	// site cannot claim (no arbiters, or a custom failure-detection
	// script): its takeovers and restarts then rest on the verdict alone.
	ClaimTimeout time.Duration
	// TakeoverHold is how long after this site's last reply from the peer
	// a takeover may complete its claim of the arbiters (config.Timing):
	// an isolated active has released the VIP and fenced its databases
	// by then. Counting it from anything later, such as the latest
	// RemoteUnreachable.Since of the lines, holds longer and stays safe.
	TakeoverHold time.Duration
	// SelfFenceTimeout is failover.selfFenceTimeout: a stand-down releases
	// the VIP and makes the databases read-only within it, before hooks
	// and service stops; the takeover hold counts on it.
	SelfFenceTimeout time.Duration

	// PairSettings are this site's values of the settings both sites
	// must share (config.PairWide), recorded at start and compared with
	// the peer's; nil: not recorded.
	PairSettings []events.Setting

	// afterPublish sees every event a saga stores (tests crash on it).
	afterPublish func(*events.Envelope)
}

// maxClockSkew is how far apart the sites' clocks, plus the delay of
// sourcing one site's log into the other's, may be for the rules that
// compare a time recorded on one site with the other's clock (a timed
// disable's Until, a switch recorded just before a cut). NTP keeps sites
// within milliseconds; the rest is room for a sourcing backlog.
const maxClockSkew = 10 * time.Second

// HostPort is a database server's address.
type HostPort struct {
	Host string
	Port int
}

// DefaultOptions are the timings not in the site config.
func DefaultOptions() Options {
	return Options{
		DBTimeout:       2 * time.Minute,
		FenceTimeout:    2 * time.Minute,
		Tick:            time.Second,
		ServiceInterval: 10 * time.Second,
		VIPInterval:     2 * time.Second,
		StartupHold:     time.Minute,
		Follow:          decide.FollowPolicy{Retry: 30 * time.Second, AnswerTimeout: 2 * time.Minute, MaxAttempts: 5},
		KeepPeerSource:  true,
	}
}

// OptionsFromConfig builds Options from the site configuration.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	o := DefaultOptions()
	o.Site, o.Peer = events.SiteID(cfg.Site.Name), events.SiteID(cfg.Site.Peer)
	o.InitialRole = events.Role(cfg.Site.Role)
	o.Lines = cfg.HeartbeatLineNames()
	for _, s := range cfg.PairWide() {
		o.PairSettings = append(o.PairSettings, events.Setting{Key: s.Key, Value: s.Value})
	}
	f := cfg.Failover
	o.Policy = decide.Policy{
		Automatic:          f.Automatic,
		FailbackAutomatic:  f.Failback == "automatic",
		Home:               cfg.Site.Role == string(events.RoleActive),
		BlockWindow:        f.BlockWindow.D(),
		MaxLagBytes:        f.MaxLagBytes,
		MaxLagTransactions: f.MaxLagTransactions,
		// A lag figure ten dbmonitor rounds old no longer blocks: lag
		// events come on transitions only, and the saga asks for a
		// fresh position (check-position) before promoting.
		LagMaxAge:    10 * max(cfg.MySQL.CheckInterval.D(), cfg.PgSQL.CheckInterval.D()),
		ObserveOnly:  f.ObserveOnly,
		WaitDuration: cfg.Watchdog.FailureDetection.WaitDuration.D(),
		ClockSkew:    maxClockSkew,
		RetryAfter:   cfg.Watchdog.Heartbeat.Interval.D(),
	}
	h := cfg.Hooks
	o.Hooks = saga.Hooks{Veto: f.VetoHook, PreS2M: h.PreS2M, PostS2M: h.PostS2M, PreM2S: h.PreM2S, PostM2S: h.PostM2S, Timeout: h.Timeout.D()}
	if cfg.VIP.Address != "" {
		v, err := vip.New(cfg.VIP.Address, cfg.VIP.Interface)
		if err != nil {
			return o, err
		}
		o.VIP = v
	}
	for _, s := range cfg.Watchdog.Services {
		o.Services = append(o.Services, svcmon.Service{Name: s.Name, Kind: s.Kind, Target: s.Target, RunOn: s.RunOn})
	}
	o.PeerDatabases = map[events.Database]HostPort{}
	if cfg.MySQL.Enabled {
		o.Databases = append(o.Databases, events.MySQL)
		if hp, ok := peerDatabase(cfg.MySQL.PeerVIP, cfg.MySQL.PeerNodes, mysqlPort(cfg.MySQL.DSN.Value())); ok {
			o.PeerDatabases[events.MySQL] = hp
		}
	}
	if cfg.PgSQL.Enabled {
		o.Databases = append(o.Databases, events.PgSQL)
		if hp, ok := peerDatabase("", cfg.PgSQL.PeerNodes, pgsqlPort(cfg.PgSQL.DSN.Value())); ok {
			o.PeerDatabases[events.PgSQL] = hp
		}
	}
	// Timings that depend on others come from one derivation, checked
	// there against each other (drwatch validate prints it).
	t := cfg.Timing()
	o.Tick, o.DBTimeout, o.StartupHold = t.DecisionTick, t.DBTimeout, t.StartupHold
	o.Policy.RestartYield = t.RestartYield
	o.ClaimTimeout = t.ClaimTimeout
	o.TakeoverHold, o.SelfFenceTimeout = t.TakeoverHold, t.SelfFenceTimeout
	return o, nil
}

func (o *Options) validate() error {
	var errs []error
	if o.Site == "" {
		errs = append(errs, errors.New("site.name is required"))
	}
	if o.Peer == "" {
		errs = append(errs, errors.New("site.peer is required: the orchestrator fails over between two sites"))
	}
	switch o.InitialRole {
	case events.RoleActive, events.RoleStandby, events.RoleStandalone:
	default:
		errs = append(errs, fmt.Errorf("site.role %q must be active, standby or standalone", o.InitialRole))
	}
	for _, h := range []struct{ field, path string }{
		{"failover.vetoHook", o.Hooks.Veto}, {"hooks.preS2M", o.Hooks.PreS2M}, {"hooks.postS2M", o.Hooks.PostS2M},
		{"hooks.preM2S", o.Hooks.PreM2S}, {"hooks.postM2S", o.Hooks.PostM2S},
	} {
		if h.path == "" {
			continue
		}
		fi, err := os.Stat(h.path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w; a missing hook would abort the failover", h.field, h.path, err))
		case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s %q is not an executable file (chmod +x it)", h.field, h.path))
		}
	}
	if o.Policy.LagMaxAge < 0 {
		errs = append(errs, fmt.Errorf("orchestrator option Policy.LagMaxAge %s must not be negative (0: lag figures never age)", o.Policy.LagMaxAge))
	}
	if o.Hooks.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("hooks.timeout %s must be positive", o.Hooks.Timeout))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DBTimeout", o.DBTimeout}, {"FenceTimeout", o.FenceTimeout}, {"Tick", o.Tick}, {"ServiceInterval", o.ServiceInterval}, {"VIPInterval", o.VIPInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("orchestrator option %s %s must be positive", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

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
			return r.st.Role, r.sagaActive || r.st.SagaRunning() || r.held
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
				return vipmon.Status{Role: r.st.Role, Paused: r.sagaActive || r.st.SagaRunning() || r.held, ObserveOnly: r.opts.Policy.ObserveOnly}
			})
		}()
	}
	x := &saga.Executor{
		Site: r.opts.Site, Peer: r.opts.Peer, Bus: r.deps.Bus, VIP: sagaVIP,
		Services: r.opts.Services, Control: svcmon.Controller{Timeout: r.opts.Hooks.Timeout},
		Hooks: r.opts.Hooks, Databases: r.opts.Databases,
		DBTimeout: r.opts.DBTimeout, FenceTimeout: r.opts.FenceTimeout, LagLimits: r.opts.Policy.LagLimits(),
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

// confirmPeer ends the hold of a site restarted active (decide.Restart):
// once its projection knows the peer's latest role — read from the peer's
// own log over the leafnode link, then awaited in the sourced copy, so the
// decision loop sees a newer epoch and stands down before the VIP is ever
// taken — it resumes; a peer the heartbeat declares unreachable makes it
// stand down instead, since that peer may have taken over while this
// process was down; StartupHold passing resumes it on its own authority.
func (r *runner) confirmPeer(ctx context.Context) {
	release := func(d decide.RestartDecision) {
		r.mu.Lock()
		r.held = false
		r.mu.Unlock()
		if d.Warn {
			r.log.Warn("restarted active: startup hold ends", "outcome", d.Action, "why", d.Reason)
		} else {
			r.log.Info("restarted active: startup hold ends", "outcome", d.Action, "why", d.Reason)
		}
		// The arbiter holds its managing sessions only once the role is
		// confirmed: recorded, so the log says why this site resumed.
		st, _ := r.snapshot()
		rc := events.RoleConfirmed{Role: st.Role, Epoch: st.Epoch, Reason: clip(string(d.Action)+": "+d.Reason, 1024)}
		if _, err := r.deps.Bus.Publish(ctx, rc, nil); err != nil && ctx.Err() == nil {
			r.log.Error("record the role confirmed after a restart; the arbiter holds its sessions after its own timeout", "err", err)
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	deadline := time.Now().Add(r.opts.StartupHold)
	var want *events.RoleChanged
	noRole := false
	var promotingSince time.Time // when this site first saw the peer promoting
	for {
		st, changed := r.snapshot()
		switch {
		case !st.PeerPromoting():
			promotingSince = time.Time{}
		case promotingSince.IsZero():
			promotingSince = time.Now()
		}
		k := decide.PeerPending
		switch {
		case st.PeerUnreachable():
			k = decide.PeerUnreachable
		case noRole || (want != nil && (st.PeerEpoch > want.Epoch || (st.PeerEpoch == want.Epoch && st.PeerRole == want.To))):
			k = decide.PeerLearned
		case time.Now().After(deadline):
			k = decide.PeerUnknown
		}
		d := decide.Restart(decide.RestartInput{
			Site: r.opts.Site, Peer: r.opts.Peer, Role: st.Role, Epoch: st.Epoch, SagaRunning: st.SagaRunning(), PeerPromoting: st.PeerPromoting(),
			PeerPromotingStuck: st.PeerPromoting() && !promotingSince.IsZero() && time.Since(promotingSince) > r.opts.Policy.RestartYield,
			Knowledge:          k, PeerRole: st.PeerRole, PeerEpoch: st.PeerEpoch,
			Automatic: !st.AutomaticOffForTheActive(r.opts.Policy.Automatic, r.deps.Now(), st.LastHeard(r.deps.Now()), r.opts.Policy.ClockSkew),
		})
		if d.Action == decide.RestartResume && d.Warn && r.opts.ClaimTimeout > 0 {
			// Resuming on this site's own authority: only if the
			// arbiters show the peer does not hold them.
			d = r.claimOnRestart(ctx, d)
		}
		switch d.Action {
		case decide.RestartResume:
			release(d)
			return
		case decide.RestartStandDown:
			err := r.standDown(ctx, st, d.Reason)
			if err == nil {
				release(d)
				return
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Error("restarted active: standing down failed; retrying", "err", err)
		}
		if want == nil && !noRole {
			rc, found, err := r.peerRole(ctx)
			switch {
			case err == nil && !found:
				noRole = true
				continue
			case err == nil:
				want = &rc
				continue
			}
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// claimOnRestart claims the arbiters for a site about to resume active on
// its own authority: clear, it resumes with the arbiters' word; anything
// else stands it down, since the peer may be the one holding them.
func (r *runner) claimOnRestart(ctx context.Context, d decide.RestartDecision) decide.RestartDecision {
	x := &saga.Executor{Bus: r.deps.Bus, Wait: r.wait, ClaimTimeout: r.opts.ClaimTimeout}
	id := "restart-" + uuid.Must(uuid.NewV7()).String()
	c, err := x.Claim(ctx, id, "restarted active: "+d.Reason)
	if err != nil {
		return decide.RestartDecision{Action: decide.RestartStandDown, Reason: d.Reason + "; " + err.Error()}
	}
	return decide.RestartDecision{Action: decide.RestartResume,
		Reason: fmt.Sprintf("%s; the arbiters confirm it: %d of %d held, %d managed by the peer", d.Reason, c.Held, c.N, c.Managed)}
}

// standDown demotes a site restarted active without its peer: a
// demotion saga like any other (the VIP goes, the databases turn
// read-only, then hooks and services), marked StandDown so the projection
// knows the site was active last. It returns once the saga has ended, so
// the hold is lifted on a standby site whose databases accept no writes.
func (r *runner) standDown(ctx context.Context, st *pair.State, why string) error {
	epoch := max(st.Epoch, st.MaxEpoch)
	r.log.Warn("restarted active without its peer: standing down", "epoch", epoch, "why", why)
	id := uuid.Must(uuid.NewV7()).String()
	plan := (&saga.Executor{Peer: r.opts.Peer, VIP: r.sagaVIP(), Services: r.opts.Services, Hooks: r.opts.Hooks, Databases: r.opts.Databases}).Plan(events.RoleStandby, false)
	ev := events.FailoverStarted{FailoverID: id, From: events.RoleActive, To: events.RoleStandby, Epoch: epoch,
		Reason: pair.RestartStandDownReason, StandDown: true, Steps: plan}
	r.mu.Lock()
	r.started[id] = true
	r.mu.Unlock()
	if _, err := r.deps.Bus.Publish(ctx, ev, nil); err != nil {
		return fmt.Errorf("record the stand-down: %w", err)
	}
	_, err := r.wait(ctx, func(s *pair.State) bool {
		return s.Saga != nil && s.Saga.ID == id && s.Saga.Finished && s.Role != events.RoleActive
	}, 30*time.Minute)
	return err
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
	d := decide.Decide(st, decide.Input{Policy: r.opts.Policy}, now)
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
		ObserveOnly: d.ObserveOnly, Manual: d.Manual, Force: d.Force, RequestID: d.RequestID}
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

// followPeer re-points this standby site's databases at the active peer
// once per peer epoch (decide.Follow): after a failover the former active
// site's servers are fenced primaries that follow nobody. dbmonitor
// carries the command out; its answer, like the command, is in the log.
func (r *runner) followPeer(ctx context.Context, st *pair.State, now time.Time) error {
	var dbs []events.Database
	for _, db := range decide.Follow(st, r.opts.Databases, r.opts.Follow, now) {
		if _, ok := r.opts.PeerDatabases[db]; ok {
			dbs = append(dbs, db)
		}
	}
	if len(dbs) == 0 {
		return nil
	}
	id := pair.FollowID(st.PeerEpoch)
	for _, db := range dbs {
		hp := r.opts.PeerDatabases[db]
		r.log.Info("re-pointing replication at the active peer", "database", db, "primary", hp.Host, "port", hp.Port, "peerEpoch", st.PeerEpoch)
		cmd := events.DatabaseCommand{Command: "repoint", Database: db, Target: r.opts.Site, PrimaryHost: hp.Host, PrimaryPort: hp.Port, FailoverID: id, FollowEpoch: st.PeerEpoch}
		if _, err := r.deps.Bus.Publish(ctx, cmd, nil); err != nil {
			return fmt.Errorf("re-point %s: %w", db, err)
		}
	}
	attempts := map[events.Database]int{}
	for _, db := range dbs {
		attempts[db] = st.Follow[db].Attempts
	}
	// The projection must hold the commands before the next round, or it
	// would send them again.
	_, err := r.wait(ctx, func(s *pair.State) bool {
		for _, db := range dbs {
			f := s.Follow[db]
			if f.Epoch != st.PeerEpoch || (st.Follow[db].Epoch == st.PeerEpoch && f.Attempts <= attempts[db]) {
				return false
			}
		}
		return true
	}, 10*time.Second)
	return err
}

// peerDatabase is the peer server's address: its VIP when set, else its
// first node.
func peerDatabase(vip string, nodes []string, port int) (HostPort, bool) {
	host := vip
	if host == "" && len(nodes) > 0 {
		host = nodes[0]
	}
	return HostPort{Host: host, Port: port}, host != ""
}

// mysqlPort is the port of a go-sql-driver DSN's tcp(host:port) address;
// the peer's server is expected on the same port as this site's. 3306
// when the DSN names none.
func mysqlPort(dsn string) int {
	if m := mysqlAddr.FindStringSubmatch(dsn); m != nil {
		if _, p, err := net.SplitHostPort(m[1]); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				return n
			}
		}
	}
	return 3306
}

var (
	mysqlAddr = regexp.MustCompile(`@tcp\(([^)]*)\)`)
	pgPortKV  = regexp.MustCompile(`(?:^|\s)port=(\d+)`)
)

// pgsqlPort is the port of a libpq DSN (URL or key=value), 5432 when it
// names none.
func pgsqlPort(dsn string) int {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if n, err := strconv.Atoi(u.Port()); err == nil {
			return n
		}
		return 5432
	}
	if m := pgPortKV.FindStringSubmatch(dsn); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	return 5432
}

// recordSettings records this site's pair-wide settings unless its log
// already holds the same ones.
func (r *runner) recordSettings(ctx context.Context) error {
	st, _ := r.snapshot()
	if len(r.opts.PairSettings) == 0 || slices.Equal(st.Settings, r.opts.PairSettings) {
		return nil
	}
	_, err := r.deps.Bus.Publish(ctx, events.PairSettings{Settings: r.opts.PairSettings}, nil)
	return err
}

// compareSettings reports, once per difference, pair-wide settings that
// differ from the peer's as a failed ConfigChecked (mailed by the
// notifier, shown by drwatch health).
func (r *runner) compareSettings(ctx context.Context, st *pair.State) {
	diff := decide.SettingsDiffer(st.Settings, st.PeerSettings, r.opts.Peer)
	key := strings.Join(diff, "\n")
	if len(diff) == 0 || key == r.settingsReported {
		return
	}
	r.log.Warn("pair-wide settings differ from the peer's", "differences", diff)
	if _, err := r.deps.Bus.Publish(ctx, events.ConfigChecked{OK: false, Problems: diff}, nil); err != nil {
		r.log.Error("report the pair-wide settings that differ; retrying next round", "err", err)
		return
	}
	r.settingsReported = key
}
