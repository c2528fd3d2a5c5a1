package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// FaultKind names one kind of fault.
type FaultKind int

// The faults a seed may draw.
const (
	// Cut stops packets between two nodes (From → To only when OneWay,
	// else both ways) for Dur.
	Cut FaultKind = iota
	// Crash kills a site's drwatch process (orchestrator, heartbeat,
	// arbiter service and the embedded NATS server); the supervisor
	// releases the VIP and restarts it after Dur. Sockets close, so the
	// arbiters drop its sessions at once when they can hear it.
	Crash
	// Power cuts a site's power for Dur: the VIP and the database go
	// down, the log loses its unsynced tail, arbiters keep listing its
	// sessions until sshd's keepalive gives up.
	Power
	// Pause stops a site's process for Dur (a VM or GC stall); it goes
	// on where it was.
	Pause
	// ClockJump steps a site's clock by Delta.
	ClockJump
	// FailStep makes the site's next saga step fail.
	FailStep
	// SlowDB stalls the site's database server for Dur: no command
	// ends before the stall does.
	SlowDB
	// Operator publishes a manual FailoverRequested on site From aimed
	// at site To, with the highest epoch From's log holds.
	Operator
)

// Fault is one fault of a run.
type Fault struct {
	At     time.Duration
	Kind   FaultKind
	From   int // node: site index, or 2.. for arbiters
	To     int
	OneWay bool
	Dur    time.Duration
	Delta  time.Duration
	Role   events.Role
	Force  bool
}

var nodeNames = [nNodes]string{"a", "b", "arb1", "arb2", "arb3"}

func (f Fault) String() string {
	at := fmt.Sprintf("@%.1fs", f.At.Seconds())
	switch f.Kind {
	case Cut:
		arrow := "<->"
		if f.OneWay {
			arrow = "->"
		}
		return fmt.Sprintf("%s cut %s%s%s for %s", at, nodeNames[f.From], arrow, nodeNames[f.To], f.Dur)
	case Crash:
		return fmt.Sprintf("%s crash %s, restart after %s", at, nodeNames[f.From], f.Dur)
	case Power:
		return fmt.Sprintf("%s power cut %s for %s", at, nodeNames[f.From], f.Dur)
	case Pause:
		return fmt.Sprintf("%s pause %s for %s", at, nodeNames[f.From], f.Dur)
	case ClockJump:
		return fmt.Sprintf("%s clock of %s jumps %s", at, nodeNames[f.From], f.Delta)
	case FailStep:
		return fmt.Sprintf("%s next saga step of %s fails", at, nodeNames[f.From])
	case SlowDB:
		return fmt.Sprintf("%s database of %s stalls for %s", at, nodeNames[f.From], f.Dur)
	case Operator:
		return fmt.Sprintf("%s operator on %s asks %s to become %s (force %v)", at, nodeNames[f.From], nodeNames[f.To], f.Role, f.Force)
	}
	return at + " ?"
}

// Draw returns the faults of seed: their own random stream, so that a
// shrunk list replays with the world's randomness unchanged.
func Draw(seed uint64, o Options) []Fault {
	o = o.withDefaults()
	r := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	n := r.IntN(o.MaxFaults + 1)
	fs := make([]Fault, 0, n)
	dur := func(maxSeconds int) time.Duration {
		return time.Duration(1+r.IntN(maxSeconds*10)) * 100 * time.Millisecond
	}
	for range n {
		f := Fault{At: time.Duration(r.Int64N(int64(o.Span)))}
		switch k := r.IntN(100); {
		case k < 30:
			f.Kind, f.Dur = Cut, dur(400)
			f.From, f.To = twoNodes(r)
			f.OneWay = r.IntN(3) == 0
		case k < 42:
			f.Kind, f.From, f.Dur = Crash, r.IntN(2), dur(30)
		case k < 52:
			f.Kind, f.From, f.Dur = Power, r.IntN(2), dur(300)
		case k < 60:
			f.Kind, f.From, f.Dur = Pause, r.IntN(2), dur(20)
			if o.LongPauses {
				f.Dur = dur(60)
			}
		case k < 68:
			f.Kind, f.From = ClockJump, r.IntN(2)
			f.Delta = time.Duration(r.IntN(600)-300) * time.Second
		case k < 78:
			f.Kind, f.From = FailStep, r.IntN(2)
		case k < 85:
			f.Kind, f.From, f.Dur = SlowDB, r.IntN(2), dur(150)
		default:
			f.Kind, f.From, f.To = Operator, r.IntN(2), r.IntN(2)
			f.Role = events.RoleActive
			if r.IntN(4) == 0 {
				f.Role = events.RoleStandby
			}
			f.Force = r.IntN(4) == 0
		}
		fs = append(fs, f)
	}
	return fs
}

// twoNodes draws two distinct nodes of which at least one is a site (the
// arbiters do not talk to each other).
func twoNodes(r *rand.Rand) (int, int) {
	if r.IntN(2) == 0 {
		if r.IntN(2) == 0 {
			return nodeA, nodeB
		}
		return nodeB, nodeA
	}
	s, a := r.IntN(2), 2+r.IntN(nArbiters)
	if r.IntN(2) == 0 {
		return s, a
	}
	return a, s
}

// inject starts fault f now and schedules its end.
func (w *world) inject(f Fault) {
	w.tracef("FAULT %s", f)
	switch f.Kind {
	case Cut:
		w.setLink(f, false)
		w.at(f.Dur, func() { w.setLink(f, true); w.tracef("HEAL %s", f) })
	case Crash:
		s := w.sites[f.From]
		if s.proc && s.powered {
			s.stop(false)
			w.at(f.Dur, func() {
				if s.powered && !s.proc {
					s.start(false)
				}
			})
		}
	case Power:
		s := w.sites[f.From]
		if s.powered {
			s.powerOff()
			w.at(f.Dur, func() { s.powerOn() })
		}
	case Pause:
		s := w.sites[f.From]
		s.pausedUntil = max(s.pausedUntil, w.now+f.Dur)
		w.at(f.Dur, func() { w.tracef("%s resumes", s.id); s.kick() })
	case ClockJump:
		w.sites[f.From].skew += f.Delta
	case FailStep:
		w.sites[f.From].failNext = true
	case SlowDB:
		s := w.sites[f.From]
		s.slowUntil = max(s.slowUntil, w.now+f.Dur)
	case Operator:
		s := w.sites[f.From]
		if !s.running() {
			return
		}
		target := w.sites[f.To].id
		s.publish(&events.FailoverRequested{Target: target, ToRole: f.Role, Manual: true, Force: f.Force,
			Reason: "operator's manualFailover", RequestedBy: "operator@" + string(s.id), Epoch: s.st.MaxEpoch})
	}
}

func (w *world) setLink(f Fault, up bool) {
	w.up[f.From][f.To] = up
	if !f.OneWay {
		w.up[f.To][f.From] = up
	}
	if up {
		w.linksChanged()
	}
}

// linksChanged lets what waits on a link go on: the sourcing backlog and
// replication.
func (w *world) linksChanged() {
	for _, s := range w.sites {
		s.pumpLater()
	}
	w.kickReplication()
}
