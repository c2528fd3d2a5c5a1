// Package watchdog is the arbiter service's loop: it follows the log
// (heartbeat verdicts, automatic failover, roles), probes the arbiters each
// heartbeat interval, applies the decision table and publishes the verdict.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/arbiter/internal/probe"
	"github.com/drwatch/drwatch/services/arbiter/internal/script"
	"github.com/drwatch/drwatch/services/arbiter/internal/verdict"
)

// Arbiter is one configured arbitration device.
type Arbiter struct {
	Host string
	// Port is probed by arbiterProbe tcp (the SSH port).
	Port int
	SSH  *probe.SSHTarget
}

// Config is the loop's settings, already validated.
type Config struct {
	Interval       time.Duration
	ProbeTimeout   time.Duration
	WaitDuration   time.Duration
	Thresholds     verdict.Thresholds
	ArbiterProbe   string
	SessionCommand string
	Arbiters       []Arbiter
	Peers          probe.PeerSet
	// Own are this site's addresses as arbiters list them (what the peer
	// has in its site.peerAddresses); empty: the address each managing
	// session leaves from.
	Own probe.PeerSet
	// Script, when Path is set, replaces device arbitration.
	Script script.Runner
	// ConfigJSON renders the `api v1 config` sections for the script.
	ConfigJSON func(role events.Role) ([]byte, error)
	// Dialer opens SSH connections (tests pin the source address).
	Dialer probe.Dialer
	// ConfirmTimeout bounds the wait for the orchestrator to confirm an
	// active role before the managing sessions are held (HoldSessions).
	ConfirmTimeout time.Duration
	// Automatic is failover.automatic, the switch until an operator
	// records another (pair.State.AutomaticOn).
	Automatic bool
}

// confirmGrace allows for the orchestrator of the same drwatch process
// recording its role a moment before the arbiter noted its own start.
const confirmGrace = time.Second

// HoldSessions decides whether the managing sessions may be held: only by
// an active site whose orchestrator has settled that role since this
// arbiter started. A site restarted active first waits to learn the
// peer's role and may stand down (orchestrator decide.Restart); sessions
// opened on the stale "active" of its log would tell the peer's arbiter
// that it manages the arbiters. If no confirmation comes within timeout
// (an arbiter restarted alone beside a running orchestrator, which
// records nothing new), the role is trusted as it stands.
func HoldSessions(role events.Role, confirmedAt, started, now time.Time, timeout time.Duration) bool {
	if role != events.RoleActive {
		return false
	}
	return !confirmedAt.Before(started.Add(-confirmGrace)) || !now.Before(started.Add(timeout))
}

// wakes reports whether env, about to be folded into st, should start a
// round at once rather than at the next tick: the heartbeat lost the peer
// on a line, this site asked for a new claim of the arbiters, or its
// orchestrator confirmed its role.
func wakes(st *pair.State, env *events.Envelope) bool {
	if env.Site != st.Site {
		return false
	}
	ev, err := events.Decode(env)
	if err != nil {
		return false
	}
	switch e := ev.(type) {
	case events.RemoteUnreachable:
		return e.Peer == st.Peer && st.Watches(e.Line)
	case events.ArbitersClaimRequested:
		c := st.Claim
		return c == nil || c.ID != e.ClaimID || !c.Answered
	case events.RoleConfirmed:
		return true
	}
	return false
}

// Publisher is the slice of the bus the loop needs.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, parent *events.Envelope) (*events.Envelope, error)
}

// Roles tells the loop this site's current role.
type Roles interface {
	Current() (events.Role, events.Epoch)
	Changed() <-chan struct{}
}

// Pinger sends one ICMP echo.
type Pinger interface {
	Ping(ctx context.Context, host string) probe.Result
}

// Watchdog runs rounds.
type Watchdog struct {
	cfg    Config
	pub    Publisher
	roles  Roles
	pinger Pinger
	log    *slog.Logger
	now    func() time.Time
	// started is when this watchdog was made: a role confirmed before it
	// may be a stale one from before a restart.
	started time.Time

	mu    sync.Mutex
	state *pair.State
	wake  chan struct{}

	// held is the holder of the managing sessions while they are held.
	held *probe.Holder
	// heldSince is when held was set (opened).
	heldSince time.Time

	// quorumLow is the reachable count last reported low, -1 when not low;
	// ArbiterQuorumLow is published on entering low or when the count
	// changes, not every interval.
	quorumLow int
	// unlisted names the arbiters last reported (ConfigChecked) as not
	// listing this site's managing session; a report is published when
	// the set changes, not every interval.
	unlisted string
}

// New returns a watchdog over state. pinger may be nil when arbiterProbe
// is tcp.
func New(cfg Config, state *pair.State, pub Publisher, roles Roles, pinger Pinger, log *slog.Logger, now func() time.Time) *Watchdog {
	return &Watchdog{
		cfg: cfg, state: state, pub: pub, roles: roles, pinger: pinger,
		log: log, now: now, started: now(), wake: make(chan struct{}, 1), quorumLow: -1,
	}
}

// Apply folds an event from the log into the state; a fresh loss of the
// peer triggers a round at once rather than at the next tick.
func (w *Watchdog) Apply(_ context.Context, env *events.Envelope) error {
	if _, err := events.Decode(env); err != nil {
		return err
	}
	w.mu.Lock()
	wake := wakes(w.state, env)
	w.state.Apply(env)
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run runs a round every interval (and whenever the heartbeat loses the
// peer) and holds the managing SSH sessions while this site is active,
// until ctx ends.
func (w *Watchdog) Run(ctx context.Context) error {
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	var (
		holder     *probe.Holder
		holderStop context.CancelFunc
		holderDone chan struct{}
	)
	stopHolder := func() {
		if holderStop != nil {
			w.setHeld(nil)
			holderStop()
			<-holderDone
			holder, holderStop = nil, nil
		}
	}
	defer stopHolder()
	syncHolder := func() {
		role, _ := w.roles.Current()
		w.mu.Lock()
		confirmedAt := w.state.ConfirmedAt
		claim := w.state.OpenClaim()
		w.mu.Unlock()
		hold := HoldSessions(role, confirmedAt, w.started, w.now(), w.cfg.ConfirmTimeout) || w.claimHolds(claim)
		switch {
		case hold && holderStop == nil && len(w.cfg.Arbiters) > 0 && w.cfg.Script.Path == "":
			hctx, cancel := context.WithCancel(ctx)
			holderStop, holderDone = cancel, make(chan struct{})
			h := w.holder()
			holder = h
			go func() { defer close(holderDone); h.Run(hctx) }()
			w.setHeld(h)
			w.log.Info("holding managing sessions to arbiters", "arbiters", len(h.Targets), "claim", w.claimHolds(claim))
		case !hold:
			stopHolder()
		}
	}
	// claimIfAsked answers an open claim nobody has answered yet.
	claimIfAsked := func() {
		w.mu.Lock()
		claim := w.state.OpenClaim()
		w.mu.Unlock()
		if claim == nil || claim.Answered || !w.claimHolds(claim) {
			return
		}
		w.claim(ctx, claim.ID, holder)
		syncHolder()
	}
	syncHolder()
	claimIfAsked()
	changed := w.roles.Changed()
	w.Round(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			changed = w.roles.Changed()
			syncHolder()
			continue
		case <-tick.C:
		case <-w.wake:
		}
		// A RoleConfirmed wakes the loop too, and ConfirmTimeout passes
		// on a tick.
		syncHolder()
		claimIfAsked()
		w.Round(ctx)
	}
}

// claimHolds reports whether claim keeps the managing sessions held: one
// asked before this process started is from a life that ended, and the
// startup rules (HoldSessions) decide instead.
func (w *Watchdog) claimHolds(c *pair.Claim) bool {
	return c != nil && !c.At.Before(w.started.Add(-confirmGrace))
}

// claim carries a claim of the arbiters out with the sessions h holds and
// publishes the answer (verdict.JudgeClaim): it waits for every first dial,
// then looks at the arbiters as a standby would, again while it wins a tie
// and the peer has not let go, or while the peer may be standing down, for
// up to a heartbeat interval and four probe timeouts in all.
func (w *Watchdog) claim(ctx context.Context, id string, h *probe.Holder) {
	start := time.Now()
	// The peer's round: its arbitration runs every interval, each bounded
	// by a probe timeout, and its stand-down lets go of its sessions.
	peerRound := start.Add(w.cfg.Interval + 2*w.cfg.ProbeTimeout)
	deadline := start.Add(w.cfg.Interval + 4*w.cfg.ProbeTimeout)
	ev := events.ArbitersClaimed{ClaimID: id, N: len(w.cfg.Arbiters)}
	answer := func() {
		ev.DurationSeconds = time.Since(start).Seconds()
		w.mu.Lock()
		w.state.NoteClaimAnswer(id, ev.Outcome)
		w.mu.Unlock()
		w.publish(ctx, ev, nil)
		w.log.Info("arbiters claimed", "claim", id, "outcome", ev.Outcome, "held", ev.Held, "n", ev.N,
			"managed", ev.Managed, "unreachable", ev.Unreachable, "looks", ev.Looks, "why", ev.Description)
	}
	if h == nil {
		ev.Outcome, ev.Description = events.ClaimFailed, "no managing sessions to hold: no arbiter is configured, or a custom failure-detection script replaces them"
		answer()
		return
	}
	select {
	case <-h.Ready():
	case <-ctx.Done():
		return
	case <-time.After(w.cfg.ProbeTimeout + time.Second):
	}
	pause := max(w.cfg.ProbeTimeout/4, 100*time.Millisecond)
	for {
		// A held session counts only when its arbiter lists it as the
		// peer will read it.
		listed := make(chan []probe.Result, 1)
		go func() { listed <- w.verifyAll(ctx, h) }()
		results := w.sshAll(ctx)
		held := countManaged(<-listed)
		if ctx.Err() != nil {
			return
		}
		in := verdict.ClaimInput{N: len(w.cfg.Arbiters), Held: held, Thresholds: w.cfg.Thresholds,
			WinsTie: w.state.Site < w.state.Peer, LastLook: time.Now().Add(pause + w.cfg.ProbeTimeout).After(deadline),
			PeerHadItsRound: !time.Now().Before(peerRound)}
		in.Managed, in.Unreachable = standbyCounts(results)
		c := verdict.JudgeClaim(in)
		ev.Held, ev.Managed, ev.Unreachable, ev.Branch, ev.Description = in.Held, in.Managed, in.Unreachable, c.Branch, truncate(c.Description, 2048)
		ev.Looks++
		ev.Arbiters = arbiterResults(results)
		if c.Done {
			ev.Outcome = c.Outcome
			answer()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

func (w *Watchdog) holder() *probe.Holder {
	h := &probe.Holder{Dialer: w.cfg.Dialer, Timeout: w.cfg.ProbeTimeout, Keepalive: w.cfg.ProbeTimeout, Log: w.log}
	for _, a := range w.cfg.Arbiters {
		if a.SSH != nil {
			h.Targets = append(h.Targets, a.SSH)
		}
	}
	return h
}

// Round is one interval's work: the arbiter-warning check always, and a
// verdict when the heartbeat has lost the peer.
func (w *Watchdog) Round(ctx context.Context) {
	role, _ := w.roles.Current()
	now := w.now()
	w.mu.Lock()
	cause, unreachable := w.state.Cause(), w.state.PeerUnreachable()
	automatic := w.state.AutomaticOn(w.cfg.Automatic, now, pair.ClockSkew)
	var bothSince time.Time
	if role == events.RoleStandby {
		bothSince = w.state.BothStandbySince
	}
	// The site whose databases hold the newest history is the one the
	// orchestrator's liveness rule makes active again: the grace is its.
	// With no leader (neither log holds an activation) there is nobody
	// to wait for.
	leader := w.state.Leader()
	wasActiveLast := leader == "" || leader == w.state.Site
	w.mu.Unlock()

	arbitrate := unreachable && (role == events.RoleActive || role == events.RoleStandby)
	devices := len(w.cfg.Arbiters) > 0 && w.cfg.Script.Path == ""
	// The standby's SSH round and the check of the lists of this site's
	// managing sessions run beside the pings, not after them, so the
	// verdict waits for one probeTimeout at most (two while the sessions
	// are being opened).
	var sshResults chan []probe.Result
	if arbitrate && role == events.RoleStandby && w.cfg.Script.Path == "" {
		sshResults = make(chan []probe.Result, 1)
		go func() { sshResults <- w.sshAll(ctx) }()
	}
	w.mu.Lock()
	held := w.held
	w.mu.Unlock()
	var listed chan []probe.Result
	if devices && (held != nil || arbitrate && role == events.RoleActive) {
		listed = make(chan []probe.Result, 1)
		go func() { listed <- w.verifyAll(ctx, held) }()
	}
	var pings []probe.Result
	if len(w.cfg.Arbiters) > 0 {
		pings = w.pingAll(ctx)
		w.checkQuorum(ctx, pings)
	}
	var lists []probe.Result
	if listed != nil {
		lists = <-listed
		if held != nil && ctx.Err() == nil {
			w.reportUnlisted(ctx, pings, lists)
		}
	}
	if !arbitrate {
		return
	}
	if w.cfg.Script.Path != "" {
		w.runScript(ctx, role, automatic, cause)
		return
	}
	// The active's verdict says what its arbiters show whatever the
	// switch: whether it may stay active with automatic failover off is
	// the orchestrator's rule (state.AutomaticOffForTheActive), which
	// knows whether the peer has the switch too; staying on a switch
	// turned off during a cut would make two actives.
	in := verdict.Input{
		Role: role, N: len(w.cfg.Arbiters), Thresholds: w.cfg.Thresholds, Automatic: automatic || role == events.RoleActive,
		BothStandbySince: bothSince, WasActiveLast: wasActiveLast, WaitDuration: w.cfg.WaitDuration, Now: now,
	}
	var results []probe.Result
	switch role {
	case events.RoleActive:
		if devices && !w.opened(held) {
			// The managing sessions are still being opened (the role
			// was just confirmed, or a start met a peer not up yet):
			// "not listed" would only say "not dialled yet", and a fence
			// on it would stand a healthy active down. The next round,
			// once every first dial has ended, judges.
			w.log.Info("arbitration deferred: the managing sessions are still being opened", "role", role)
			return
		}
		// Pings are reported; the verdict counts the arbiters listing
		// this site's managing session, the fact the standby counts.
		results = make([]probe.Result, len(pings))
		for i, r := range pings {
			if r.Reachable {
				in.Reachable++
			}
			results[i] = r
			results[i].Managed = lists[i].Managed
			if r.Err == nil {
				results[i].Err = lists[i].Err
			}
		}
		in.Managed = countManaged(lists)
	case events.RoleStandby:
		results = <-sshResults
		in.Managed, in.Unreachable = standbyCounts(results)
		in.Reachable = in.N - in.Unreachable
	}
	if ctx.Err() != nil {
		return // a verdict from probes cut short by shutdown would lie
	}
	v := verdict.Decide(in)
	ev := events.ArbitrationDecided{
		Role: role, Method: "arbiters", Action: v.Action, Branch: v.Branch, Description: v.Description,
		N: in.N, Reachable: in.Reachable, Managed: in.Managed, Unreachable: in.Unreachable,
		Thresholds:     events.Thresholds{Failover: in.Thresholds.Failover, AdjustManaged: in.Thresholds.AdjustManaged, Warning: in.Thresholds.Warning},
		ReachableShare: v.ReachableShare, ManagedShare: v.ManagedShare, UnreachableShare: v.UnreachableShare,
		AutomaticFailover: automatic, WaitUntil: v.WaitUntil, Arbiters: arbiterResults(results),
	}
	w.publish(ctx, ev, cause)
	w.log.Info("arbitration decided", "role", role, "action", v.Action, "branch", v.Branch,
		"n", in.N, "reachable", in.Reachable, "managed", in.Managed, "unreachable", in.Unreachable)
	if in.N == 0 {
		w.publish(ctx, events.FailureDetectionFailed{Method: "arbiters", Reason: v.Description}, cause)
	}
}

// opened reports whether the active may judge its managing sessions:
// every first dial of h has ended, a session held or not, or h has had two
// probe timeouts for it (a session open that stalls must not put off the
// self-fence). False with no holder: the role is not confirmed yet, and
// the arbiter service holds sessions at its confirm timeout at the latest.
func (w *Watchdog) opened(h *probe.Holder) bool {
	if h == nil {
		return false
	}
	select {
	case <-h.Ready():
		return true
	default:
	}
	w.mu.Lock()
	since := w.heldSince
	w.mu.Unlock()
	return w.now().Sub(since) > 2*w.cfg.ProbeTimeout
}

func (w *Watchdog) setHeld(h *probe.Holder) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h != w.held {
		w.heldSince = w.now()
	}
	w.held = h
}

// verifyAll runs the standby's session-list command over each managing
// session h holds and reports which arbiters list it by this site's
// addresses (Result.Managed). With h nil no session is held and none
// does. It waits up to one probeTimeout for the sessions' first dials.
func (w *Watchdog) verifyAll(ctx context.Context, h *probe.Holder) []probe.Result {
	arbs := w.cfg.Arbiters
	if h == nil {
		res := make([]probe.Result, len(arbs))
		for i, a := range arbs {
			res[i] = probe.Result{Host: a.Host, Err: fmt.Errorf("%w: this site holds its managing sessions only once its active role is confirmed", probe.ErrNotHeld)}
		}
		return res
	}
	select {
	case <-h.Ready():
	case <-ctx.Done():
	case <-time.After(w.cfg.ProbeTimeout):
	}
	res := probe.All(ctx, len(arbs), w.cfg.ProbeTimeout, func(ctx context.Context, i int) probe.Result {
		return h.Verify(ctx, arbs[i].SSH, w.cfg.SessionCommand, w.cfg.Own)
	})
	for i := range res {
		res[i].Host = arbs[i].Host
	}
	return res
}

// reportUnlisted publishes a ConfigChecked naming each arbiter that
// answers a ping but does not list this site's managing session as the
// peer reads it (an arbiter that answers nothing is ArbiterQuorumLow's),
// when that set changes; OK once it is empty again.
func (w *Watchdog) reportUnlisted(ctx context.Context, pings, lists []probe.Result) {
	var names, problems []string
	for i, l := range lists {
		if l.Managed || !pings[i].Reachable {
			continue
		}
		names = append(names, w.cfg.Arbiters[i].SSH.Addr)
		problems = append(problems, fmt.Sprintf("watchdog.failureDetection.arbiters[%d] does not count as managed by this site: %v", i, l.Err))
	}
	key := strings.Join(names, ",")
	if key == w.unlisted {
		return
	}
	w.unlisted = key
	if len(problems) == 0 {
		w.log.Info("every answering arbiter lists this site's managing session again")
		w.publish(ctx, events.ConfigChecked{OK: true}, nil)
		return
	}
	for _, p := range problems {
		w.log.Warn("arbiter does not list this site's managing session", "problem", p)
	}
	for i := range problems {
		problems[i] = truncate(problems[i], 1000)
	}
	w.publish(ctx, events.ConfigChecked{OK: false, Problems: problems}, nil)
}

func (w *Watchdog) pingAll(ctx context.Context) []probe.Result {
	arbs := w.cfg.Arbiters
	res := probe.All(ctx, len(arbs), w.cfg.ProbeTimeout, func(ctx context.Context, i int) probe.Result {
		if w.cfg.ArbiterProbe == "tcp" || w.pinger == nil {
			return probe.TCP(ctx, arbs[i].Host, arbs[i].Port)
		}
		return w.pinger.Ping(ctx, arbs[i].Host)
	})
	for i := range res {
		res[i].Host = arbs[i].Host
	}
	return res
}

func (w *Watchdog) sshAll(ctx context.Context) []probe.Result {
	arbs := w.cfg.Arbiters
	res := probe.All(ctx, len(arbs), w.cfg.ProbeTimeout, func(ctx context.Context, i int) probe.Result {
		return w.cfg.Dialer.Check(ctx, arbs[i].SSH, w.cfg.SessionCommand, w.cfg.Peers)
	})
	for i := range res {
		res[i].Host = arbs[i].Host
		if res[i].Err != nil {
			w.log.Warn("arbiter unreachable over SSH", "arbiter", arbs[i].SSH.Addr, "err", res[i].Err)
		}
	}
	return res
}

func (w *Watchdog) checkQuorum(ctx context.Context, pings []probe.Result) {
	reachable := 0
	var down []string
	for _, r := range pings {
		if r.Reachable {
			reachable++
		} else {
			down = append(down, r.Host)
		}
	}
	share, low := verdict.QuorumLow(len(pings), reachable, w.cfg.Thresholds.Warning)
	if !low {
		if w.quorumLow >= 0 {
			w.log.Info("reachable arbiters back above warning", "reachable", reachable, "n", len(pings))
		}
		w.quorumLow = -1
		return
	}
	if w.quorumLow == reachable {
		return
	}
	w.quorumLow = reachable
	slices.Sort(down)
	w.log.Warn("reachable arbiters below warning", "reachable", reachable, "n", len(pings), "share", share)
	w.publish(ctx, events.ArbiterQuorumLow{N: len(pings), Reachable: reachable, Share: share, Warning: w.cfg.Thresholds.Warning, Unreachable: down}, nil)
}

func (w *Watchdog) runScript(ctx context.Context, role events.Role, automatic bool, cause *events.Envelope) {
	path := w.cfg.Script.Path
	cfgJSON, err := w.cfg.ConfigJSON(role)
	if err != nil {
		w.publish(ctx, events.FailureDetectionFailed{Method: "script", Script: path, Reason: "render the config JSON for the script: " + err.Error()}, cause)
		return
	}
	a, err := w.cfg.Script.Run(ctx, cfgJSON)
	var se *script.Error
	switch {
	case errors.As(err, &se):
		w.log.Error("failure-detection script gave no verdict", "script", path, "reason", se.Reason)
		w.publish(ctx, events.FailureDetectionFailed{Method: "script", Script: path, Reason: truncate(se.Reason, 2000), Output: se.Output}, cause)
		return
	case err != nil:
		return // ctx ended
	}
	ev := events.ArbitrationDecided{
		Role: role, Method: "script", Action: a.Action, Branch: "script", Description: truncate(a.Description, 1800),
		N: len(w.cfg.Arbiters), AutomaticFailover: automatic, WaitUntil: a.WaitUntil, Details: a.Details,
		Thresholds: events.Thresholds{Failover: w.cfg.Thresholds.Failover, AdjustManaged: w.cfg.Thresholds.AdjustManaged, Warning: w.cfg.Thresholds.Warning},
	}
	if a.State != role {
		ev.Description += fmt.Sprintf(" (the script reports state %s; this site is %s)", a.State, role)
	}
	if !automatic && (a.Action == events.ActionBeActive || a.Action == events.ActionBeStandby && role != events.RoleActive) {
		ev.Branch = "script-automatic-off"
		ev.Description += fmt.Sprintf(" (the script asks %s, but automatic failover is off)", a.Action)
		ev.Action = events.ActionNothing
	}
	w.publish(ctx, ev, cause)
	w.log.Info("failure-detection script decided", "script", path, "action", ev.Action, "branch", ev.Branch)
}

func (w *Watchdog) publish(ctx context.Context, ev events.Event, parent *events.Envelope) {
	if _, err := w.pub.Publish(ctx, ev, parent); err != nil && ctx.Err() == nil {
		w.log.Error("publish", "type", ev.EventType(), "err", err)
	}
}

// standbyCounts are what a standby's SSH round found: arbiters listing a
// session of the peer, and arbiters it could not log in to.
func standbyCounts(results []probe.Result) (managed, unreachable int) {
	for _, r := range results {
		switch {
		case !r.Reachable:
			unreachable++
		case r.Managed:
			managed++
		}
	}
	return managed, unreachable
}

func countManaged(rs []probe.Result) int {
	n := 0
	for _, r := range rs {
		if r.Managed {
			n++
		}
	}
	return n
}

func arbiterResults(rs []probe.Result) []events.ArbiterResult {
	out := make([]events.ArbiterResult, 0, len(rs))
	for _, r := range rs {
		ar := events.ArbiterResult{Host: r.Host, Reachable: r.Reachable, ManagedByActive: r.Managed}
		if r.Err != nil {
			ar.Error = truncate(r.Err.Error(), 1000)
		}
		out = append(out, ar)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
