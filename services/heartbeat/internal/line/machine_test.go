package line

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/drwatch/drwatch/pkg/events"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var errTimeout = errors.New("i/o timeout")

// answer says how a fake target answers: ok or not, and after how long
// (capped by the probe's timeout, as a real prober is).
type answer struct {
	ok    bool
	after time.Duration
}

// probeLog is one probe started on the virtual clock.
type probeLog struct {
	At     time.Duration // since t0
	Target string
}

// sim drives a Machine on a virtual clock: every probe completes at its
// start plus its answer delay, every wake happens exactly on time. It is the
// whole of Run without goroutines or timers.
type sim struct {
	m       *Machine
	now     time.Time
	answers func(target string, at time.Duration) answer
	pending []pendingResult
	wake    time.Time
	probes  []probeLog
	events  []stamped
}

type pendingResult struct {
	at time.Time
	r  Result
}

type stamped struct {
	At time.Duration
	Ev events.Event
}

func (s *sim) apply(out Output) {
	for _, p := range out.Probes {
		at := s.now.Sub(t0)
		s.probes = append(s.probes, probeLog{At: at, Target: p.Target})
		a := s.answers(p.Target, at)
		d := min(a.after, p.Timeout)
		var err error
		if !a.ok {
			err = errTimeout
			if a.after >= p.Timeout {
				err = fmt.Errorf("probe %s: %w", p.Target, errTimeout)
			}
		}
		if a.ok && a.after >= p.Timeout {
			err = errTimeout // answered too late
		}
		s.pending = append(s.pending, pendingResult{at: s.now.Add(d), r: Result{ID: p.ID, Target: p.Target, Err: err}})
	}
	for _, ev := range out.Events {
		s.events = append(s.events, stamped{At: s.now.Sub(t0), Ev: ev})
	}
	if !out.Wake.IsZero() {
		s.wake = out.Wake
	}
}

// runUntil advances the virtual clock, delivering results and wakes in time
// order, until end.
func (s *sim) runUntil(end time.Duration) {
	s.now = t0
	s.apply(s.m.Start(s.now))
	for {
		// earliest pending result
		idx := -1
		for i, p := range s.pending {
			if idx < 0 || p.at.Before(s.pending[idx].at) {
				idx = i
			}
		}
		if idx >= 0 && (s.wake.IsZero() || !s.wake.Before(s.pending[idx].at)) {
			p := s.pending[idx]
			if p.at.Sub(t0) > end {
				return
			}
			s.pending = append(s.pending[:idx], s.pending[idx+1:]...)
			s.now = p.at
			s.apply(s.m.Done(s.now, p.r))
			continue
		}
		if s.wake.IsZero() || s.wake.Sub(t0) > end {
			return
		}
		s.now = s.wake
		s.wake = time.Time{}
		s.apply(s.m.Tick(s.now))
	}
}

func cfg() Config {
	return Config{
		Name: "default", Peer: "b", VIP: "vip", Nodes: []string{"n1", "n2"},
		Kind: "icmp", Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 4,
	}
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// TestExactSequence checks the probe/retry/fallback schedule with the seed's
// defaults (30 s / 5 s / 4 retries) when the peer dies at 10 s.
func TestExactSequence(t *testing.T) {
	dead := sec(10)
	s := &sim{m: NewMachine(cfg(), Unknown, time.Time{}), answers: func(target string, at time.Duration) answer {
		if at < dead {
			return answer{ok: true, after: sec(0.001)}
		}
		return answer{ok: false, after: time.Hour} // silent: every probe times out
	}}
	s.runUntil(sec(100))

	want := []probeLog{
		{0, "vip"},
		// round 2 at 30 s: the VIP times out 1+4 times, one timeout apart
		{sec(30), "vip"}, {sec(35), "vip"}, {sec(40), "vip"}, {sec(45), "vip"}, {sec(50), "vip"},
		// then every node at once
		{sec(55), "n1"}, {sec(55), "n2"},
		// round 3 starts when round 2 ended (it overran the interval)
		{sec(60), "vip"}, {sec(65), "vip"}, {sec(70), "vip"}, {sec(75), "vip"}, {sec(80), "vip"},
		{sec(85), "n1"}, {sec(85), "n2"},
		{sec(90), "vip"}, {sec(95), "vip"}, {sec(100), "vip"},
	}
	if diff := cmp.Diff(want, s.probes); diff != "" {
		t.Errorf("probe schedule (-want +got):\n%s", diff)
	}
	// Since is the failing round's start; the peer last answered the
	// first round's probe, a millisecond in, half a minute before it.
	wantEv := []stamped{{At: sec(60), Ev: &events.RemoteUnreachable{
		Peer: "b", Line: "default", Since: t0.Add(sec(30)), LastReply: t0.Add(sec(0.001)), DownForSeconds: 30,
		Failed: []events.ProbeResult{
			{Target: "vip", Kind: "icmp", Attempts: 5, Error: "probe vip: i/o timeout"},
			{Target: "n1", Kind: "icmp", Attempts: 1, Error: "probe n1: i/o timeout"},
			{Target: "n2", Kind: "icmp", Attempts: 1, Error: "probe n2: i/o timeout"},
		},
	}}}
	if diff := cmp.Diff(wantEv, s.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestFastRefusalKeepsSpacing: a peer that refuses at once is retried on the
// same one-timeout grid, not five times in a millisecond.
func TestFastRefusalKeepsSpacing(t *testing.T) {
	c := cfg()
	c.Nodes = []string{"n1"}
	s := &sim{m: NewMachine(c, Up, time.Time{}), answers: func(string, time.Duration) answer {
		return answer{ok: false, after: sec(0.002)}
	}}
	s.runUntil(sec(29))
	want := []probeLog{{0, "vip"}, {sec(5), "vip"}, {sec(10), "vip"}, {sec(15), "vip"}, {sec(20), "vip"}, {sec(20.002), "n1"}}
	if diff := cmp.Diff(want, s.probes); diff != "" {
		t.Errorf("probe schedule (-want +got):\n%s", diff)
	}
	if len(s.events) != 1 || s.events[0].At != sec(20.004) {
		t.Fatalf("want one RemoteUnreachable at 20.004s, got %+v", s.events)
	}
}

// TestTransitions drives the status through every change and checks which
// events each one yields.
func TestTransitions(t *testing.T) {
	type phase struct {
		until       time.Duration
		vip, n1, n2 bool
	}
	tests := []struct {
		name   string
		start  Status
		phases []phase
		want   []string
	}{
		{"healthy peer says nothing", Unknown, []phase{{sec(300), true, true, true}}, nil},
		{"unknown to down", Unknown, []phase{{sec(100), false, false, false}}, []string{"RemoteUnreachable"}},
		{"stays down: announced once", Up, []phase{{sec(500), false, false, false}}, []string{"RemoteUnreachable"}},
		{"down then back", Up, []phase{{sec(100), false, false, false}, {sec(200), true, true, true}},
			[]string{"RemoteUnreachable", "RemoteReachable"}},
		{"vip moved locally", Up, []phase{{sec(200), false, false, true}}, []string{"PeerVIPMovedLocally"}},
		{"moved then down then moved", Up, []phase{{sec(100), false, true, false}, {sec(200), false, false, false}, {sec(300), false, true, false}},
			[]string{"PeerVIPMovedLocally", "RemoteUnreachable", "RemoteReachable", "PeerVIPMovedLocally"}},
		{"moved then vip back", Up, []phase{{sec(100), false, true, true}, {sec(200), true, true, true}}, []string{"PeerVIPMovedLocally"}},
		{"restored down, peer answers", Down, []phase{{sec(50), true, true, true}}, []string{"RemoteReachable"}},
		{"restored down, still down", Down, []phase{{sec(200), false, false, false}}, nil},
		{"one blip is forgiven by the retries", Up, []phase{{sec(31), true, true, true}, {sec(36), false, false, false}, {sec(300), true, true, true}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sim{m: NewMachine(cfg(), tt.start, t0.Add(-time.Minute)), answers: func(target string, at time.Duration) answer {
				for _, p := range tt.phases {
					if at < p.until {
						ok := map[string]bool{"vip": p.vip, "n1": p.n1, "n2": p.n2}[target]
						return answer{ok: ok, after: sec(0.01)}
					}
				}
				return answer{ok: false, after: time.Hour}
			}}
			s.runUntil(tt.phases[len(tt.phases)-1].until)
			var got []string
			for _, e := range s.events {
				got = append(got, string(e.Ev.EventType()))
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReachableCarriesOutageLength(t *testing.T) {
	c := cfg()
	c.Interval, c.Timeout, c.Retries = sec(1), sec(0.1), 2
	s := &sim{m: NewMachine(c, Up, time.Time{}), answers: func(target string, at time.Duration) answer {
		if at >= sec(3) && at < sec(10) {
			return answer{ok: false, after: sec(0.001)}
		}
		return answer{ok: true, after: sec(0.001)}
	}}
	s.runUntil(sec(12))
	if len(s.events) != 2 {
		t.Fatalf("want 2 events, got %+v", s.events)
	}
	un := s.events[0].Ev.(*events.RemoteUnreachable)
	re := s.events[1].Ev.(*events.RemoteReachable)
	if !un.Since.Equal(t0.Add(sec(3))) {
		t.Errorf("since = %s, want t0+3s", un.Since.Sub(t0))
	}
	if re.Target != "vip" || re.DownForSeconds < 6.9 || re.DownForSeconds > 7.1 {
		t.Errorf("reachable = %+v, want target vip, down ~7s", re)
	}
}

func TestNodesOnlyLine(t *testing.T) {
	c := cfg()
	c.VIP = ""
	s := &sim{m: NewMachine(c, Down, t0), answers: func(target string, _ time.Duration) answer {
		return answer{ok: target == "n2", after: sec(0.01)}
	}}
	s.runUntil(sec(1))
	if len(s.events) != 1 {
		t.Fatalf("want one event, got %+v", s.events)
	}
	re, ok := s.events[0].Ev.(*events.RemoteReachable)
	if !ok || re.Target != "n2" {
		t.Fatalf("want RemoteReachable via n2, got %#v", s.events[0].Ev)
	}
}

func TestEventsAreValid(t *testing.T) {
	s := &sim{m: NewMachine(cfg(), Up, time.Time{}), answers: func(target string, at time.Duration) answer {
		if at < sec(60) {
			return answer{ok: target != "vip", after: sec(0.01)}
		}
		if at < sec(120) {
			return answer{ok: false, after: sec(0.01)}
		}
		return answer{ok: true, after: sec(0.01)}
	}}
	s.runUntil(sec(200))
	if len(s.events) != 3 {
		t.Fatalf("want moved, unreachable, reachable, got %d events", len(s.events))
	}
	for _, e := range s.events {
		if _, err := events.New(events.Source{Site: "a", Node: "n", Service: "heartbeat"}, e.Ev, t0, nil); err != nil {
			t.Errorf("%s: %v", e.Ev.EventType(), err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := cfg()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no targets", func(c *Config) { c.VIP, c.Nodes = "", nil }, `line "default": needs a vip or nodes to probe`},
		{"timeout too long", func(c *Config) { c.Timeout = c.Interval }, `line "default": timeout 30s must be positive and less than interval 30s`},
		{"bad kind", func(c *Config) { c.Kind = "udp" }, `line "default": probe "udp" must be icmp or tcp`},
		{"negative retries", func(c *Config) { c.Retries = -1 }, `line "default": retries -1 must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
