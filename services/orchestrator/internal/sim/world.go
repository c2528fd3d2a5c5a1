// Package sim is a deterministic simulator of a drwatch pair: two sites,
// three arbiters and the links between them, run in virtual time against
// the orchestrator's real decision code — pair.State.Apply folds every
// event, decide.Decide and decide.Restart decide, saga.Executor.Plan plans
// and saga.JudgePosition judges positions — while the rest of the world
// (the heartbeat, the arbiter service and its sessions, the saga's step
// effects, the log and its sourcing, the databases and the VIP) is a small
// documented model. Faults are drawn from a seed; the same seed gives the
// same run, byte for byte. Invariants are checked after every simulated
// event (check.go).
package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// t0 is the virtual epoch: every site clock reads t0 plus the virtual time
// plus its own skew and drift.
var t0 = time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC)

// Break deliberately breaks the simulated world so tests can prove the
// checker sees what it must.
type Break int

const (
	// BreakNone: the world as modelled.
	BreakNone Break = iota
	// BreakNoFence: the demotion's release-vip and demote steps record
	// success but change nothing, and the VIP monitor never removes the
	// address: a cut-off active keeps serving.
	BreakNoFence
	// BreakNoHold: TakeoverHold 0 and a self-fence that takes two
	// minutes: the standby takes over before the isolated active has
	// fenced itself.
	BreakNoHold
)

// Options shape a run. The zero value is completed by defaults.
type Options struct {
	// Span is the window in which faults start (default 15m).
	Span time.Duration
	// MaxFaults bounds the faults drawn per seed (default 6).
	MaxFaults int
	// Trace records the run as text lines (Result.Trace).
	Trace bool
	// Strict validates every event as it is built (a bug in the
	// simulator's events would otherwise be dropped silently by Apply).
	Strict bool
	Break  Break
	// BootReadOnly: a database boots read-only after a power cut. Off (the
	// default), it boots in the mode it had: a PostgreSQL primary stays a
	// primary, its fence (default_transaction_read_only) persists.
	BootReadOnly bool
	// StrictFence counts as a second primary a writable database that
	// nothing can fence — its site's process down or in its restart hold
	// — and that serves no client (no VIP). Off, such a window is
	// tolerated and counted (Result.Unfenced): it ends when the restarted
	// process stands down or the epoch fence demotes it.
	StrictFence bool
	// SyncAlways stores every write of the logs synced (the embedded
	// server's default); otherwise half the seeds sync every 1–120 s
	// and a power cut loses the unsynced tail.
	SyncAlways bool
	// LongPauses draws process pauses up to a minute, past the arbiters'
	// session timeout; by default they stay under it (20 s at most).
	LongPauses bool
}

func (o Options) withDefaults() Options {
	if o.Span <= 0 {
		o.Span = 15 * time.Minute
	}
	if o.MaxFaults <= 0 {
		o.MaxFaults = 6
	}
	return o
}

// Result is the outcome of one run.
type Result struct {
	Seed uint64
	// Violation is empty when every invariant held.
	Violation string
	// At is the virtual time of the violation (or of the end).
	At     time.Duration
	Faults []Fault
	// Events is how many events the sites' logs received (own events).
	Events int
	// LostWrites counts acknowledged writes missing from the final
	// history (a takeover behind a cut loses what the old primary
	// acknowledged and could not ship: asynchronous replication).
	LostWrites int
	// Unfenced counts the tolerated windows of a writable database beside
	// the primary on a site whose process was down or held (Options.StrictFence).
	Unfenced int
	// Trace is the run as text, when Options.Trace.
	Trace string
}

// Failed reports a violated invariant.
func (r Result) Failed() bool { return r.Violation != "" }

// Node indices: the two sites, then the arbiters.
const (
	nodeA     = 0
	nodeB     = 1
	nArbiters = 3
	nNodes    = 2 + nArbiters
)

// Timers is the configuration the simulated pair runs with and the
// timings derived from it by the real config.Timing.
type Timers struct {
	Interval, Timeout time.Duration
	Retries           int
	ProbeTimeout      time.Duration
	SessionTimeout    time.Duration
	Timing            config.Timing
	FenceTimeout      time.Duration
	// FenceAnswerTimeout is the orchestrator's (options.go): how long an
	// idle peer has to answer a fence.
	FenceAnswerTimeout time.Duration
	DecisionTick       time.Duration
	// Bound is how long after the last fault heals the pair must have
	// exactly one active site.
	Bound time.Duration
}

// DefaultTimers are the seed's defaults with a VIP heartbeat line, three
// arbiters and MariaDB: 30 s interval, 5 s timeout, 4 retries.
func DefaultTimers() Timers {
	c := config.Defaults()
	c.Core.PeerVIP = "192.0.2.10"
	c.Watchdog.FailureDetection.Arbiters = make([]config.Arbiter, nArbiters)
	c.MySQL.Enabled = true
	// As Parse does: the arbiter probe defaults to the heartbeat timeout.
	c.Watchdog.FailureDetection.ProbeTimeout = c.Watchdog.Heartbeat.Timeout
	t := Timers{
		Interval:           c.Watchdog.Heartbeat.Interval.D(),
		Timeout:            c.Watchdog.Heartbeat.Timeout.D(),
		Retries:            c.Watchdog.Heartbeat.Retries,
		ProbeTimeout:       c.Watchdog.FailureDetection.ProbeTimeout.D(),
		SessionTimeout:     c.Watchdog.FailureDetection.ArbiterSessionTimeout.D(),
		Timing:             c.Timing(),
		FenceTimeout:       2 * time.Minute,
		FenceAnswerTimeout: 15 * time.Second,
		DecisionTick:       time.Second,
	}
	tm := t.Timing
	// After the heal: the heartbeat hears the peer again (an interval),
	// a restarted site's hold and claim, a saga in flight (claim, fence,
	// two database commands), the liveness rule's yield, then its own
	// saga — and a minute of slack for the log's sourcing and ticks.
	saga := tm.ClaimTimeout + t.FenceTimeout + 2*tm.DBTimeout + 10*time.Second
	t.Bound = t.Interval + tm.StartupHold + tm.ClaimTimeout + saga + tm.RestartYield + saga + time.Minute
	return t
}

// item is one scheduled callback.
type item struct {
	at  time.Duration
	seq uint64
	fn  func()
}

// world is one run.
type world struct {
	opt   Options
	tm    Timers
	rng   *rand.Rand
	now   time.Duration
	queue []item
	seq   uint64

	sites [2]*site
	arbs  [nArbiters]*arbiter
	// up[i][j]: packets from node i reach node j.
	up [nNodes][nNodes]bool

	// latency of the log's sourcing between the sites; replDelay of the
	// database replication.
	latency, replDelay time.Duration
	writeEvery         time.Duration
	dbLatency          time.Duration
	hookDelay          time.Duration
	hooks              bool
	syncEvery          time.Duration // 0: every write is synced

	writes   writeTree
	lastAck  int32 // the latest acknowledged write
	acked    []int32
	faults   []Fault
	end      time.Duration
	violated string
	events   int
	// unfenced counts tolerated unfenced windows.
	unfenced int

	trace *strings.Builder
}

func (w *world) at(d time.Duration, fn func()) {
	w.seq++
	it := item{at: w.now + max(d, 0), seq: w.seq, fn: fn}
	w.queue = append(w.queue, it)
	// sift up
	i := len(w.queue) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(w.queue[i], w.queue[p]) {
			break
		}
		w.queue[i], w.queue[p] = w.queue[p], w.queue[i]
		i = p
	}
}

func less(a, b item) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (w *world) pop() item {
	q := w.queue
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && less(q[l], q[m]) {
			m = l
		}
		if r < n && less(q[r], q[m]) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	w.queue = q
	return top
}

// reach reports whether nodes i and j exchange packets both ways (ICMP,
// TCP, SSH and the leafnode all need both directions; a one-way cut
// therefore acts on them as a full one, and differs only in what each end
// last heard).
func (w *world) reach(i, j int) bool {
	return w.up[i][j] && w.up[j][i] && w.powered(i) && w.powered(j)
}

func (w *world) powered(i int) bool {
	if i < 2 {
		return w.sites[i].powered
	}
	return true
}

func (w *world) tracef(format string, args ...any) {
	if w.trace == nil {
		return
	}
	fmt.Fprintf(w.trace, "%9.3f ", w.now.Seconds())
	fmt.Fprintf(w.trace, format, args...)
	w.trace.WriteByte('\n')
}

// Run simulates seed with the faults drawn from it.
func Run(seed uint64, o Options) Result {
	o = o.withDefaults()
	return Replay(seed, Draw(seed, o), o)
}

// Replay simulates seed with the given faults (a subset of Draw's when
// shrinking): the world's own randomness still comes from seed.
func Replay(seed uint64, faults []Fault, o Options) Result {
	o = o.withDefaults()
	w := newWorld(seed, faults, o)
	w.run()
	res := Result{Seed: seed, Violation: w.violated, At: w.now, Faults: faults, Events: w.events}
	res.LostWrites = w.lostWrites()
	res.Unfenced = w.unfenced
	if w.trace != nil {
		res.Trace = w.trace.String()
	}
	return res
}

func newWorld(seed uint64, faults []Fault, o Options) *world {
	w := &world{opt: o, tm: DefaultTimers(), rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	if o.Trace {
		w.trace = &strings.Builder{}
	}
	switch o.Break {
	case BreakNoHold:
		w.tm.Timing.TakeoverHold = 0
	}
	w.faults = faults
	for i := range w.up {
		for j := range w.up[i] {
			w.up[i][j] = true
		}
	}
	w.latency = time.Duration(5+w.rng.IntN(500)) * time.Millisecond
	w.replDelay = time.Duration(10+w.rng.IntN(900)) * time.Millisecond
	w.writeEvery = time.Duration(2+w.rng.IntN(9)) * time.Second
	w.dbLatency = time.Duration(20+w.rng.IntN(400)) * time.Millisecond
	w.hooks = w.rng.IntN(3) == 0
	w.hookDelay = time.Duration(w.rng.IntN(20000)) * time.Millisecond
	if w.rng.IntN(2) == 0 && !o.SyncAlways {
		w.syncEvery = time.Duration(1+w.rng.IntN(120)) * time.Second
	}
	w.writes = writeTree{{parent: -1}}
	for i := range w.arbs {
		w.arbs[i] = &arbiter{}
	}
	w.sites[nodeA] = newSite(w, nodeA, "a", "b", events.RoleActive)
	w.sites[nodeB] = newSite(w, nodeB, "b", "a", events.RoleStandby)
	w.tracef("world: latency %s, replication %s, a write every %s, db %s, hooks %v (%s), sync %s, skew a %s b %s; liveness bound %s",
		w.latency, w.replDelay, w.writeEvery, w.dbLatency, w.hooks, w.hookDelay, w.syncEvery,
		w.sites[0].skew, w.sites[1].skew, w.tm.Bound)
	return w
}

func (w *world) run() {
	w.genesis()
	heal := time.Duration(0)
	for _, f := range w.faults {
		f := f
		w.at(f.At, func() { w.inject(f) })
		heal = max(heal, f.At+f.Dur)
	}
	w.end = heal + w.tm.Bound
	w.at(w.end, func() { w.checkLiveness() })
	w.at(w.writeEvery, w.writeTick)
	if w.syncEvery > 0 {
		w.at(w.syncEvery, w.syncTick)
	}
	for len(w.queue) > 0 && w.violated == "" {
		it := w.pop()
		if it.at > w.end {
			break
		}
		w.now = it.at
		it.fn()
		if w.violated == "" {
			w.checkSafety()
		}
	}
}

// genesis is the pair at the start: a active at epoch 1 with the VIP and
// the primary, b standby replicating from it, both logs holding both
// roles.
func (w *world) genesis() {
	a, b := w.sites[nodeA], w.sites[nodeB]
	a.db = database{writable: true}
	b.db = database{follows: true}
	a.vip = true
	a.proc, b.proc = true, true
	a.publish(&events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "the pair's first start", Lineage: 1})
	b.publish(&events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Epoch: 0, Reason: "the pair's first start"})
	a.confirmed = true
	// The pair's history before the run is sourced and synced.
	for _, s := range w.sites {
		p := s.other()
		for i, e := range p.log {
			if e.Site == p.id {
				s.store(e, i)
				s.cursor = i + 1
			}
		}
	}
	for _, s := range w.sites {
		s.synced = len(s.log)
		s.start(true)
	}
}

func (w *world) syncTick() {
	for _, s := range w.sites {
		if s.busUp() {
			s.synced = len(s.log)
		}
	}
	w.at(w.syncEvery, w.syncTick)
}
