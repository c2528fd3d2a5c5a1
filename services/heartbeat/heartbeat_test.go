package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/ping"
	"github.com/drwatch/drwatch/pkg/service"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const baseYAML = `
site: {name: a, peer: b, role: active, node: a1}
nats: {embedded: {storeDir: /tmp/x}}
`

func TestCheckConfig(t *testing.T) {
	arbiter := `
  failureDetection:
    arbiters: [{username: u, password: p, host: 10.0.0.9, knownHosts: /k}]`
	tests := []struct {
		name string
		yaml string
		role events.Role
		want []string
	}{
		{"complete", `
core: {peerVip: 10.0.1.10, peerLoadBalancerNodes: [10.0.1.11, 10.0.1.12]}
watchdog:` + arbiter, events.RoleActive, nil},
		{"nothing to probe, no arbiters", ``, events.RoleStandby, []string{
			"no peer address to probe: set core.peerVip and core.peerLoadBalancerNodes (or watchdog.heartbeat.lines)",
			"watchdog.failureDetection.arbiters is empty and isCustom is false: arbitration cannot decide, so there will be no automatic failover",
		}},
		{"standalone", `
core: {peerVip: 10.0.1.10}
watchdog:` + arbiter, events.RoleStandalone, []string{
			"site is standalone: it is not in a DR pair, so the peer is not probed (run init to pair it)",
		}},
		{"extra line is enough to probe", `
watchdog:
  heartbeat: {lines: [{name: l2, vip: 10.0.2.10}]}` + arbiter, events.RoleStandby, nil},
		{"peer vip is our own", `
vip: {address: 10.0.1.10/24, interface: eth0}
core: {peerVip: 10.0.1.10, peerLoadBalancerNodes: [10.0.1.10]}
watchdog:` + arbiter, events.RoleActive, []string{
			"core.peerVip 10.0.1.10 is this site's own vip.address: the heartbeat would probe itself",
			"core.peerLoadBalancerNodes[0] 10.0.1.10 is the peer VIP itself: it cannot tell a moved VIP from a dead peer",
		}},
		{"nodes without vip", `
core: {peerLoadBalancerNodes: [10.0.1.11]}
watchdog:
  failureDetection: {isCustom: true, script: /bin/true}`, events.RoleStandby, []string{
			"core.peerVip is empty: only the peer's nodes are probed, so a VIP moved inside the peer cannot be told apart",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkConfig(parse(t, baseYAML+tt.yaml), tt.role)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionsFromConfig(t *testing.T) {
	cfg := parse(t, baseYAML+`
core: {peerVip: 10.0.1.10, peerLoadBalancerNodes: [10.0.1.11]}
watchdog:
  heartbeat:
    probe: tcp
    port: 443
    lines:
      - {name: mgmt, nodes: [10.9.0.2], probe: icmp}
      - {name: off, vip: 10.9.0.3, disable: true}
      - {name: alt, vip: 10.9.0.4, port: 8443}
  monitors:
    - {name: web, kind: service, target: nginx}
`)
	o := OptionsFromConfig(cfg)
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range o.Lines {
		got = append(got, fmt.Sprintf("%s %s %v %s:%d %s/%s/%d", l.Name, l.VIP, l.Nodes, l.Kind, l.Port, l.Interval, l.Timeout, l.Retries))
	}
	want := []string{
		"default 10.0.1.10 [10.0.1.11] tcp:443 30s/5s/4",
		"mgmt  [10.9.0.2] icmp:443 30s/5s/4",
		"alt 10.9.0.4 [] tcp:8443 30s/5s/4",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	m := o.Monitors[0]
	if m.Interval != 2*time.Second || m.MaxFailures != 5 || m.Scope != "both" {
		t.Errorf("monitor defaults of seed 004 not applied: %+v", m)
	}
}

func TestOptionsValidate(t *testing.T) {
	cfg := parse(t, baseYAML+`
core: {peerVip: 10.0.1.10}
watchdog:
  heartbeat: {lines: [{name: default, vip: 10.0.3.1}]}
`)
	o := OptionsFromConfig(cfg)
	o.Lines[1].Kind = "tcp"
	o.Monitors = append(o.Monitors, o.Monitors...)
	err := o.validate()
	for _, want := range []string{
		`line name "default" is used twice ("default" is the core.peerVip line)`,
		`line "default": port 0 must be 1-65535 for a tcp probe`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// log collects this site's events as the bus stores them.
type logWatch struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *logWatch) follow(t *testing.T, ctx context.Context, b *bus.Bus, durable string) {
	go func() {
		_ = b.Consume(ctx, bus.ConsumerSpec{
			Durable: durable,
			Filters: []string{events.SiteEvents("a")},
			Handler: func(_ context.Context, env *events.Envelope) error {
				ev, err := events.Decode(env)
				if err != nil {
					return err
				}
				l.mu.Lock()
				l.evs = append(l.evs, ev)
				l.mu.Unlock()
				return nil
			},
		})
	}()
}

func (l *logWatch) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		out = append(out, string(e.EventType()))
	}
	return out
}

func (l *logWatch) count(typ string) int {
	n := 0
	for _, s := range l.types() {
		if s == typ {
			n++
		}
	}
	return n
}

func (l *logWatch) last(typ string) events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.evs) - 1; i >= 0; i-- {
		if string(l.evs[i].EventType()) == typ {
			return l.evs[i]
		}
	}
	return nil
}

type listener struct {
	addr string
	ln   net.Listener
}

func (l *listener) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	l.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
}

func (l *listener) down() { l.ln.Close() }

func freePort(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, h := range hosts[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func startRun(t *testing.T, deps service.Deps, opts Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, deps, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestRunEndToEnd runs the service against a real embedded JetStream with
// loopback listeners as the peer, a local monitor script, an ICMP line when
// root, and a restart in the middle of an outage.
func TestRunEndToEnd(t *testing.T) {
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "heartbeat", "b")
	port := freePort(t, "127.0.3.1", "127.0.3.2")
	vip := &listener{addr: fmt.Sprintf("127.0.3.1:%d", port)}
	node := &listener{addr: fmt.Sprintf("127.0.3.2:%d", port)}
	vip.up(t)
	node.up(t)

	dir := t.TempDir()
	flag := filepath.Join(dir, "down")
	script := filepath.Join(dir, "mon.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nif [ -e "+flag+" ]; then echo false; else echo true; fi > "+dir+"/result\n"), 0o755)

	icmpLine := ""
	if os.Geteuid() == 0 {
		icmpLine = "\n      - {name: icmp-lo, vip: 127.0.0.1, probe: icmp}"
	} else if os.Getenv("CI") == "true" {
		t.Fatal("CI must run as root to cover the ICMP line")
	}
	cfg := parse(t, fmt.Sprintf(baseYAML+`
core: {peerVip: 127.0.3.1, peerLoadBalancerNodes: [127.0.3.2]}
watchdog:
  heartbeat:
    interval: 50ms
    timeout: 20ms
    retries: 2
    probe: tcp
    port: %d
    lines:%s
  failureDetection: {probeTimeout: 20ms}
  monitors:
    - {name: app, kind: script, target: %s, resultFile: %s/result, interval: 20ms, maxFailures: 3, scope: primary}
`, port, icmpLine, script, dir))
	if icmpLine == "" {
		cfg.Watchdog.Heartbeat.Lines = nil
	}
	deps := service.Deps{Config: cfg, Bus: b, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	opts := OptionsFromConfig(cfg)
	opts.PublishRetry = 50 * time.Millisecond
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	var lw logWatch
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lw.follow(t, ctx, b, "test-watch")

	stop := startRun(t, deps, opts)
	bustest.WaitFor(t, 10*time.Second, "ConfigChecked", func() bool { return lw.count("ConfigChecked") == 1 })
	cc := lw.last("ConfigChecked").(events.ConfigChecked)
	if cc.OK || len(cc.Problems) != 1 || !strings.Contains(cc.Problems[0], "arbiters is empty") {
		t.Errorf("ConfigChecked = %+v, want the missing arbiters reported", cc)
	}

	// The peer dies.
	vip.down()
	node.down()
	bustest.WaitFor(t, 10*time.Second, "RemoteUnreachable", func() bool { return lw.count("RemoteUnreachable") == 1 })
	un := lw.last("RemoteUnreachable").(events.RemoteUnreachable)
	if un.Line != "default" || un.Peer != "b" || len(un.Failed) != 2 || un.Failed[0].Attempts != 3 {
		t.Errorf("RemoteUnreachable = %+v", un)
	}

	// Restart while the peer is still down: no second RemoteUnreachable.
	stop()
	stop = startRun(t, deps, opts)
	bustest.WaitFor(t, 10*time.Second, "second ConfigChecked", func() bool { return lw.count("ConfigChecked") == 2 })
	time.Sleep(500 * time.Millisecond)
	if n := lw.count("RemoteUnreachable"); n != 1 {
		t.Errorf("a restart during the outage announced it %d times", n)
	}

	// The peer returns; the outage length spans the restart. The node
	// comes back only once the VIP answered: a round in flight whose VIP
	// probe failed just before would otherwise hear the peer through it.
	vip.up(t)
	bustest.WaitFor(t, 10*time.Second, "RemoteReachable", func() bool { return lw.count("RemoteReachable") == 1 })
	node.up(t)
	re := lw.last("RemoteReachable").(events.RemoteReachable)
	if re.Target != "127.0.3.1" || re.DownForSeconds < 0.5 {
		t.Errorf("RemoteReachable = %+v, want via the VIP after more than 0.5s", re)
	}

	// Only the VIP goes.
	vip.down()
	bustest.WaitFor(t, 10*time.Second, "PeerVIPMovedLocally", func() bool { return lw.count("PeerVIPMovedLocally") == 1 })

	// The local monitor trips and recovers.
	os.WriteFile(flag, nil, 0o644)
	bustest.WaitFor(t, 10*time.Second, "MonitorTripped", func() bool { return lw.count("MonitorTripped") == 1 })
	os.Remove(flag)
	bustest.WaitFor(t, 10*time.Second, "MonitorRecovered", func() bool { return lw.count("MonitorRecovered") == 1 })
	tr := lw.last("MonitorTripped").(events.MonitorTripped)
	if tr.Monitor != "app" || tr.Kind != "script" || tr.Failures != 3 {
		t.Errorf("MonitorTripped = %+v", tr)
	}

	stop()
	if icmpLine != "" {
		for _, e := range lw.types() {
			if e == "RemoteUnreachable" && lw.last("RemoteUnreachable").(events.RemoteUnreachable).Line == "icmp-lo" {
				t.Error("the ICMP line to 127.0.0.1 reported the peer unreachable")
			}
		}
	}
	t.Logf("log: %v", lw.types())
}

// TestRunICMPNotPermitted: when the host allows no ICMP socket, Run says so
// in ConfigChecked and returns an error naming the fix.
func TestRunICMPNotPermitted(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	fmt.Sscan(string(raw), &lo, &hi)
	if gid := os.Getgid(); gid >= lo && gid <= hi {
		t.Skipf("this host lets gid %d open ping sockets (ping_group_range %q); probe.TestICMPNotPermitted covers the refusal", gid, strings.TrimSpace(string(raw)))
	}
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "heartbeat", "b")
	cfg := parse(t, baseYAML+`core: {peerVip: 127.0.0.1}`)
	opts := OptionsFromConfig(cfg)
	opts.ICMPMode = ping.Unprivileged
	deps := service.Deps{Config: cfg, Bus: b, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	err = run(context.Background(), deps, opts)
	if !errors.Is(err, ping.ErrNotPermitted) || !strings.Contains(err.Error(), "net.ipv4.ping_group_range") {
		t.Fatalf("want ping.ErrNotPermitted naming the sysctl, got %v", err)
	}
	var got events.ConfigChecked
	_, err = b.Replay(context.Background(), 0, []string{events.SiteTypeFilter("a", "ConfigChecked")}, func(_ uint64, env *events.Envelope) error {
		got, err = events.DecodeInto[events.ConfigChecked](env)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.OK || !strings.Contains(strings.Join(got.Problems, "\n"), "probe: tcp") {
		t.Errorf("ConfigChecked = %+v, want the ICMP problem", got)
	}
}
