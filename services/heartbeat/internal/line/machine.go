// Package line probes the peer site along one heartbeat line: the peer VIP
// with retries, then every peer load-balancer node, and turns the outcome of
// each round into RemoteUnreachable, RemoteReachable and PeerVIPMovedLocally
// events on transitions.
//
// The sequencing is a Machine that does no I/O and never reads a clock: it is
// fed the time with every input and answers with the probes to start, the
// instant it wants to be woken and the events to publish. Run drives it with
// real probers and timers; tests drive it on a virtual clock.
package line

import (
	"fmt"
	"slices"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Config is one heartbeat line.
type Config struct {
	// Name identifies the line in events ("default" for core.peerVip).
	Name string
	Peer events.SiteID
	// VIP is probed first; empty means the line has only nodes.
	VIP   string
	Nodes []string
	// Kind is the probe kind reported in events: icmp or tcp.
	Kind     string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
}

// Status is what the last completed round found.
type Status int

// The line statuses. Unknown is the status before the first round when the
// log holds nothing for the line.
const (
	Unknown Status = iota
	Up
	// Moved: the VIP failed but a node answered; the peer moved its VIP
	// inside its own cluster.
	Moved
	Down
)

func (s Status) String() string {
	switch s {
	case Up:
		return "up"
	case Moved:
		return "moved"
	case Down:
		return "down"
	}
	return "unknown"
}

// Probe asks the driver to probe Target once, waiting at most Timeout. The
// driver answers with Result carrying the same ID.
type Probe struct {
	ID      uint64
	Target  string
	Timeout time.Duration
}

// Result is the outcome of a Probe.
type Result struct {
	ID     uint64
	Target string
	Err    error
}

// Output is what the machine wants done after an input.
type Output struct {
	Probes []Probe
	Events []events.Event
	// Wake is when Tick must be called next; zero means not before a probe
	// result arrives.
	Wake time.Time
}

type phase int

const (
	idle phase = iota
	vipPhase
	nodePhase
)

// Machine sequences one line's rounds. It is not safe for concurrent use.
type Machine struct {
	cfg Config

	status    Status
	downSince time.Time
	// lastReply is when a probe of this line last got an answer (zero
	// since the machine started: a restored machine never heard one).
	lastReply time.Time

	phase      phase
	roundStart time.Time
	nextRound  time.Time
	attempt    int       // VIP attempts made in this round
	retryAt    time.Time // when the next VIP attempt is due; zero: none
	nextID     uint64
	waiting    map[uint64]string // outstanding probe id → target
	vipErr     error
	nodeErrs   map[string]error
	answered   []string
}

// NewMachine returns a machine for cfg starting from status (restored from
// the log after a restart; Unknown on a fresh site). downSince is when the
// peer became unreachable when status is Down.
func NewMachine(cfg Config, status Status, downSince time.Time) *Machine {
	return &Machine{cfg: cfg, status: status, downSince: downSince}
}

// Status returns the line's status and, when Down, since when.
func (m *Machine) Status() (Status, time.Time) { return m.status, m.downSince }

// Start begins the first round at now.
func (m *Machine) Start(now time.Time) Output {
	return m.startRound(now)
}

// Tick is called at (or after) the Wake instant of the last output.
func (m *Machine) Tick(now time.Time) Output {
	switch {
	case m.phase == idle && !now.Before(m.nextRound):
		return m.startRound(now)
	case m.phase == vipPhase && !m.retryAt.IsZero() && !now.Before(m.retryAt):
		return m.probeVIP(now)
	}
	return Output{Wake: m.wake()}
}

// Done feeds the result of a probe. Results of probes the machine no longer
// waits for are ignored.
func (m *Machine) Done(now time.Time, r Result) Output {
	if _, ok := m.waiting[r.ID]; !ok {
		return Output{Wake: m.wake()}
	}
	delete(m.waiting, r.ID)
	if r.Err == nil {
		m.lastReply = now
	}
	switch m.phase {
	case vipPhase:
		if r.Err == nil {
			return m.finish(now, Up, r.Target)
		}
		m.vipErr = r.Err
		if m.attempt <= m.cfg.Retries {
			// Attempts are spaced one timeout apart from the round's start,
			// so a peer that refuses instantly (restarting, ARP settling)
			// gets the same grace as one that times out.
			m.retryAt = m.roundStart.Add(time.Duration(m.attempt) * m.cfg.Timeout)
			if !now.Before(m.retryAt) {
				return m.probeVIP(now)
			}
			return Output{Wake: m.retryAt}
		}
		return m.probeNodes(now)
	case nodePhase:
		if r.Err == nil {
			m.answered = append(m.answered, r.Target)
		} else {
			m.nodeErrs[r.Target] = r.Err
		}
		if len(m.waiting) > 0 {
			return Output{}
		}
		if len(m.answered) == 0 {
			return m.finish(now, Down, "")
		}
		if m.cfg.VIP == "" {
			return m.finish(now, Up, m.answered[0])
		}
		return m.finish(now, Moved, m.answered[0])
	}
	return Output{Wake: m.wake()}
}

func (m *Machine) wake() time.Time {
	switch m.phase {
	case idle:
		return m.nextRound
	case vipPhase:
		return m.retryAt
	}
	return time.Time{}
}

func (m *Machine) startRound(now time.Time) Output {
	m.roundStart = now
	m.attempt = 0
	m.retryAt = time.Time{}
	m.waiting = map[uint64]string{}
	m.vipErr = nil
	m.nodeErrs = map[string]error{}
	m.answered = nil
	if m.cfg.VIP == "" {
		return m.probeNodes(now)
	}
	return m.probeVIP(now)
}

func (m *Machine) probeVIP(now time.Time) Output {
	m.phase = vipPhase
	m.retryAt = time.Time{}
	m.attempt++
	return Output{Probes: []Probe{m.newProbe(m.cfg.VIP)}}
}

func (m *Machine) probeNodes(now time.Time) Output {
	m.phase = nodePhase
	if len(m.cfg.Nodes) == 0 {
		return m.finish(now, Down, "")
	}
	// Nodes are probed together so that one dead node costs one timeout,
	// not one per node.
	out := Output{}
	for _, n := range m.cfg.Nodes {
		out.Probes = append(out.Probes, m.newProbe(n))
	}
	return out
}

func (m *Machine) newProbe(target string) Probe {
	m.nextID++
	m.waiting[m.nextID] = target
	return Probe{ID: m.nextID, Target: target, Timeout: m.cfg.Timeout}
}

// finish closes the round with status and returns the transition's events.
func (m *Machine) finish(now time.Time, status Status, answering string) Output {
	m.phase = idle
	m.nextRound = m.roundStart.Add(m.cfg.Interval)
	if m.nextRound.Before(now) {
		m.nextRound = now
	}
	evs := m.transition(now, status, answering)
	return Output{Events: evs, Wake: m.nextRound}
}

// transition decides the events of a status change. Only changes are
// published: a peer that stays down is not announced again every round
// (at a 100 ms interval that would flood the log); RemoteUnreachable carries
// Since, so a reader knows how long it has been down at any instant, and
// RemoteReachable carries the whole outage's length.
func (m *Machine) transition(now time.Time, to Status, answering string) []events.Event {
	from := m.status
	m.status = to
	var evs []events.Event
	switch to {
	case Down:
		if from != Down {
			m.downSince = m.roundStart
			evs = append(evs, &events.RemoteUnreachable{
				Peer:           m.cfg.Peer,
				Line:           m.cfg.Name,
				Since:          m.downSince,
				LastReply:      m.lastReply,
				DownForSeconds: now.Sub(m.downSince).Seconds(),
				Failed:         m.failed(),
			})
		}
	case Up, Moved:
		if from == Down {
			evs = append(evs, &events.RemoteReachable{
				Peer:           m.cfg.Peer,
				Line:           m.cfg.Name,
				Target:         answering,
				DownForSeconds: now.Sub(m.downSince).Seconds(),
			})
			m.downSince = time.Time{}
		}
		if to == Moved && from != Moved {
			evs = append(evs, &events.PeerVIPMovedLocally{
				Peer:           m.cfg.Peer,
				Line:           m.cfg.Name,
				VIP:            m.cfg.VIP,
				AnsweringNodes: slices.Sorted(slices.Values(m.answered)),
			})
		}
	}
	return evs
}

func (m *Machine) failed() []events.ProbeResult {
	var out []events.ProbeResult
	if m.cfg.VIP != "" {
		out = append(out, events.ProbeResult{
			Target: m.cfg.VIP, Kind: m.cfg.Kind, Attempts: m.attempt, Error: errText(m.vipErr),
		})
	}
	for _, n := range m.cfg.Nodes {
		out = append(out, events.ProbeResult{
			Target: n, Kind: m.cfg.Kind, Attempts: 1, Error: errText(m.nodeErrs[n]),
		})
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// Validate checks a line's settings against each other.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("line: name is required")
	case c.VIP == "" && len(c.Nodes) == 0:
		return fmt.Errorf("line %q: needs a vip or nodes to probe", c.Name)
	case c.Interval <= 0:
		return fmt.Errorf("line %q: interval %s must be positive", c.Name, c.Interval)
	case c.Timeout <= 0 || c.Timeout >= c.Interval:
		return fmt.Errorf("line %q: timeout %s must be positive and less than interval %s", c.Name, c.Timeout, c.Interval)
	case c.Retries < 0:
		return fmt.Errorf("line %q: retries %d must not be negative", c.Name, c.Retries)
	case c.Kind != "icmp" && c.Kind != "tcp":
		return fmt.Errorf("line %q: probe %q must be icmp or tcp", c.Name, c.Kind)
	}
	return nil
}
