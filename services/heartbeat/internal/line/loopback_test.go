package line

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/heartbeat/internal/probe"
)

// peer is a TCP listener standing for one peer address.
type peer struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func (p *peer) start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(p.stop)
}

func (p *peer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// peers starts listeners on one port shared by every host, as the TCP
// prober probes every target of a line on the same port.
func peers(t testing.TB, hosts ...string) (int, []*peer) {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		var out []*peer
		ok := true
		for _, h := range hosts {
			p := &peer{addr: net.JoinHostPort(h, strconv.Itoa(port))}
			ln, err := net.Listen("tcp", p.addr)
			if err != nil {
				ok = false
				break
			}
			ln.Close()
			out = append(out, p)
		}
		if !ok {
			continue
		}
		for _, p := range out {
			p.start(t)
		}
		return port, out
	}
	t.Fatal("no port free on every host")
	return 0, nil
}

type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) emit(ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) snapshot() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

func waitEvents(t *testing.T, r *recorder, n int, timeout time.Duration) []events.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := r.snapshot()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d events within %s, got %d: %+v", n, timeout, len(evs), evs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counting counts probes and keeps the failures it saw.
type counting struct {
	Prober
	n     atomic.Int64
	fails atomic.Int64
	first atomic.Value
}

func (c *counting) Probe(ctx context.Context, target string, timeout time.Duration) error {
	c.n.Add(1)
	err := c.Prober.Probe(ctx, target, timeout)
	if err != nil {
		c.fails.Add(1)
		c.first.CompareAndSwap(nil, err.Error())
	}
	return err
}

func start(t *testing.T, c Config, p Prober, status Status) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, NewMachine(c, status, time.Time{}), p, time.Now, r.emit, slog.New(slog.DiscardHandler))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// TestNoFalseAlarmOnHealthyPeer probes healthy loopback listeners 10 000
// times over four independent lines and wants no event at all.
func TestNoFalseAlarmOnHealthyPeer(t *testing.T) {
	const lines, perLine = 4, 2500
	var counters []*counting
	var recs []*recorder
	for i := range lines {
		vip, node := fmt.Sprintf("127.0.1.%d", 2*i+1), fmt.Sprintf("127.0.1.%d", 2*i+2)
		port, _ := peers(t, vip, node)
		c := &counting{Prober: probe.TCP{Port: port}}
		counters = append(counters, c)
		recs = append(recs, start(t, Config{
			Name: "line" + strconv.Itoa(i), Peer: "b", VIP: vip, Nodes: []string{node}, Kind: "tcp",
			Interval: 2 * time.Millisecond, Timeout: 1500 * time.Microsecond, Retries: 4,
		}, c, Unknown))
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		total, done := int64(0), true
		for _, c := range counters {
			total += c.n.Load()
			done = done && c.n.Load() >= perLine
		}
		if done {
			t.Logf("%d probes", total)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d probes in 90s", total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, r := range recs {
		if evs := r.snapshot(); len(evs) != 0 {
			t.Errorf("line %d: false alarm on a healthy peer: %+v", i, evs)
		}
		// A probe may time out on a loaded box now and then; the retries
		// are there to forgive it. Report, don't fail.
		if f := counters[i].fails.Load(); f > 0 {
			t.Logf("line %d: %d single probes failed and were retried (first: %v)", i, f, counters[i].first.Load())
		}
	}
}

func TestDeathAndReturnOnLoopback(t *testing.T) {
	port, ps := peers(t, "127.0.2.1", "127.0.2.2", "127.0.2.3")
	vip, n1, n2 := ps[0], ps[1], ps[2]
	c := Config{Name: "default", Peer: "b", VIP: "127.0.2.1", Nodes: []string{"127.0.2.2", "127.0.2.3"}, Kind: "tcp",
		Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Retries: 2}
	r := start(t, c, probe.TCP{Port: port}, Unknown)

	time.Sleep(100 * time.Millisecond)
	if evs := r.snapshot(); len(evs) != 0 {
		t.Fatalf("healthy peer: %+v", evs)
	}
	// The whole peer dies.
	vip.stop()
	n1.stop()
	n2.stop()
	evs := waitEvents(t, r, 1, 5*time.Second)
	un, ok := evs[0].(*events.RemoteUnreachable)
	if !ok {
		t.Fatalf("want RemoteUnreachable, got %#v", evs[0])
	}
	var targets []string
	for _, f := range un.Failed {
		targets = append(targets, fmt.Sprintf("%s×%d", f.Target, f.Attempts))
		if f.Error == "" || f.Kind != "tcp" {
			t.Errorf("failed probe %+v lacks kind or error", f)
		}
	}
	if diff := cmp.Diff([]string{"127.0.2.1×3", "127.0.2.2×1", "127.0.2.3×1"}, targets); diff != "" {
		t.Errorf("failed targets (-want +got):\n%s", diff)
	}
	// It comes back.
	vip.start(t)
	n1.start(t)
	n2.start(t)
	evs = waitEvents(t, r, 2, 5*time.Second)
	re, ok := evs[1].(*events.RemoteReachable)
	if !ok || re.Target != "127.0.2.1" || re.DownForSeconds <= 0 {
		t.Fatalf("want RemoteReachable via the VIP, got %#v", evs[1])
	}
	// Only the VIP goes: the peer moved it inside its cluster.
	vip.stop()
	evs = waitEvents(t, r, 3, 5*time.Second)
	mv, ok := evs[2].(*events.PeerVIPMovedLocally)
	if !ok {
		t.Fatalf("want PeerVIPMovedLocally, got %#v", evs[2])
	}
	if diff := cmp.Diff([]string{"127.0.2.2", "127.0.2.3"}, mv.AnsweringNodes); diff != "" {
		t.Errorf("answering nodes (-want +got):\n%s", diff)
	}
	time.Sleep(100 * time.Millisecond)
	if evs := r.snapshot(); len(evs) != 3 {
		t.Errorf("want no more events while the VIP stays moved, got %+v", evs[3:])
	}
}
