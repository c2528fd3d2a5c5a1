package probe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/ping"
	"github.com/drwatch/drwatch/pkg/ping/pingtest"
	"github.com/drwatch/drwatch/services/arbiter/internal/probe"
	"github.com/drwatch/drwatch/services/arbiter/internal/sshtest"
)

func TestSessionAddresses(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
	}{
		{"who", "root     pts/0        2025-03-01 12:00 (10.0.0.1)\nadmin    pts/1        2025-03-01 12:05 (192.168.1.7)\n", []string{"10.0.0.1", "192.168.1.7"}},
		{"who without address", "root     tty1         2025-03-01 12:00\n", nil},
		{"who X display", "root pts/2 2025-03-01 12:00 (10.0.0.3:S.0)", []string{"10.0.0.3"}},
		{"ss -tn", "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB  0      0      10.0.0.9:22        10.0.0.1:53422\n", []string{"10.0.0.9", "10.0.0.1"}},
		{"ss ipv6", "ESTAB 0 0 [2001:db8::9]:22 [2001:db8::1]:40000", []string{"2001:db8::9", "2001:db8::1"}},
		{"ss mapped", "ESTAB 0 0 [::ffff:10.0.0.9]:22 [::ffff:10.0.0.1]:40000", []string{"10.0.0.9", "10.0.0.1"}},
		{"one per line", "10.0.0.1\n 10.0.0.2 \n\n", []string{"10.0.0.1", "10.0.0.2"}},
		{"junos show system users", "USER TTY FROM LOGIN@ IDLE WHAT\nspace p0 10.0.0.1 12:00PM - -cli (cli)", []string{"10.0.0.1"}},
		{"garbage", "hello world 12:00 999.1.1.1 (host.example)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range probe.SessionAddresses(tt.out) {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPeerSet(t *testing.T) {
	ps, err := probe.ParsePeerSet([]string{"10.0.0.1", "192.168.8.0/29", "::ffff:172.16.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.0.0.1": true, "10.0.0.2": false, "192.168.8.7": true, "192.168.8.8": false, "172.16.0.1": true} {
		if got := ps.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if _, ok := probe.ManagedBy("root pts/0 2025-03-01 12:00 (192.168.8.3)", ps); !ok {
		t.Error("session from 192.168.8.3 not counted as the peer's")
	}
	_, err = probe.ParsePeerSet([]string{"10.0.0.1", "site-a.example"})
	if err == nil || !strings.Contains(err.Error(), "site.peerAddresses[1]") {
		t.Errorf("hostname in peerAddresses: err = %v, want one naming site.peerAddresses[1]", err)
	}
}

var siteA = &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}
var siteB = &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}

func peersA(t *testing.T) probe.PeerSet {
	ps, err := probe.ParsePeerSet([]string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func target(t *testing.T, s *sshtest.Server, o probe.SSHTargetOptions) *probe.SSHTarget {
	t.Helper()
	o.Host, o.Port, o.Field = s.Host, s.Port, "watchdog.failureDetection.arbiters[0]"
	if o.Username == "" {
		o.Username = "arbiter"
	}
	if o.KnownHosts == "" {
		o.KnownHosts = sshtest.KnownHosts(t, nil, s)
	}
	tg, err := probe.NewSSHTarget(o)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestSSHCheck(t *testing.T) {
	keyPath, pub := sshtest.WritePrivateKey(t)
	srv := sshtest.New(t, sshtest.Options{Password: "s3cret", AuthorizedKey: pub})
	ctx := context.Background()
	standby := probe.Dialer{LocalAddr: siteB}

	t.Run("reachable, not managed", func(t *testing.T) {
		srv.SetExtra("other    pts/9        2025-03-01 12:00 (10.9.9.9)")
		r := standby.Check(ctx, target(t, srv, probe.SSHTargetOptions{Password: "s3cret"}), "who", peersA(t))
		if r.Err != nil || !r.Reachable || r.Managed {
			t.Fatalf("got %+v, want reachable and not managed", r)
		}
		if got := srv.Commands(); got[len(got)-1] != "who" {
			t.Errorf("command run = %q, want who", got)
		}
	})
	t.Run("managed: a who line from site a", func(t *testing.T) {
		srv.SetExtra("space    pts/3        2025-03-01 11:00 (127.0.0.2)")
		defer srv.SetExtra()
		r := standby.Check(ctx, target(t, srv, probe.SSHTargetOptions{PrivateKey: keyPath}), "who", peersA(t))
		if r.Err != nil || !r.Reachable || !r.Managed {
			t.Fatalf("got %+v, want reachable and managed", r)
		}
	})
	t.Run("managed: a session held by site a's holder", func(t *testing.T) {
		srv.SetExtra()
		tg := target(t, srv, probe.SSHTargetOptions{Password: "s3cret"})
		hctx, cancel := context.WithCancel(ctx)
		h := &probe.Holder{Dialer: probe.Dialer{LocalAddr: siteA}, Targets: []*probe.SSHTarget{tg},
			Timeout: 2 * time.Second, Keepalive: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
		done := make(chan struct{})
		go func() { h.Run(hctx); close(done) }()
		waitFor(t, "holder connected", func() bool { return h.Connected() == 1 })
		r := standby.Check(ctx, tg, "who", peersA(t))
		if !r.Managed {
			t.Fatalf("got %+v, want managed while site a holds a session (server sees %v)", r, srv.Sessions())
		}
		cancel()
		<-done
		waitFor(t, "session gone from the arbiter", func() bool { return !contains(srv.Sessions(), "127.0.0.2") })
		if r := standby.Check(ctx, tg, "who", peersA(t)); r.Managed || !r.Reachable {
			t.Fatalf("after the holder stopped got %+v, want reachable, not managed", r)
		}
	})
	t.Run("wrong host key refused", func(t *testing.T) {
		other := sshtest.NewSigner(t).PublicKey()
		tg := target(t, srv, probe.SSHTargetOptions{Password: "s3cret", KnownHosts: sshtest.KnownHosts(t, other, srv)})
		r := standby.Check(ctx, tg, "who", peersA(t))
		if r.Reachable || !errors.Is(r.Err, probe.ErrHostKey) || !strings.Contains(r.Err.Error(), "does not match knownHosts") {
			t.Fatalf("got %+v, want unreachable with a host key mismatch error", r)
		}
	})
	t.Run("unknown host refused", func(t *testing.T) {
		other := sshtest.New(t, sshtest.Options{Password: "x"})
		tg := target(t, srv, probe.SSHTargetOptions{Password: "s3cret", KnownHosts: sshtest.KnownHosts(t, nil, other)})
		r := standby.Check(ctx, tg, "who", peersA(t))
		if r.Reachable || !errors.Is(r.Err, probe.ErrHostKey) || !strings.Contains(r.Err.Error(), "is not in knownHosts") {
			t.Fatalf("got %+v, want unreachable with an unknown host error", r)
		}
	})
	t.Run("bad password", func(t *testing.T) {
		r := standby.Check(ctx, target(t, srv, probe.SSHTargetOptions{Password: "wrong"}), "who", peersA(t))
		if r.Reachable || r.Err == nil || !strings.Contains(r.Err.Error(), "unable to authenticate") {
			t.Fatalf("got %+v, want an authentication error", r)
		}
	})
}

// TestHolderVerify: the active site runs the standby's command over its
// own managing session and counts the arbiter only when the list names
// the session by one of this site's addresses.
func TestHolderVerify(t *testing.T) {
	srv := sshtest.New(t, sshtest.Options{Password: "s3cret"})
	noTerminal := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", NoTerminal: true})
	useDNS := sshtest.NewWho(t, sshtest.WhoOptions{Password: "s3cret", Origin: func(string) string { return "site-a.example" }})
	kh := sshtest.KnownHostsOf(t, srv.HostEntry(), noTerminal.HostEntry(), useDNS.HostEntry())
	tg := target(t, srv, probe.SSHTargetOptions{Password: "s3cret", KnownHosts: kh})
	at := func(host string, port int) *probe.SSHTarget {
		tg, err := probe.NewSSHTarget(probe.SSHTargetOptions{Host: host, Port: port, Username: "arbiter", Password: "s3cret", KnownHosts: kh, Field: "arbiters[1]"})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	noTerminalTarget, useDNSTarget := at(noTerminal.Host, noTerminal.Port), at(useDNS.Host, useDNS.Port)
	h := &probe.Holder{Dialer: probe.Dialer{LocalAddr: siteA}, Targets: []*probe.SSHTarget{tg, noTerminalTarget, useDNSTarget},
		Timeout: 2 * time.Second, Keepalive: time.Second, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-h.Ready()
	own := func(items ...string) probe.PeerSet {
		ps, err := probe.ParseAddressSet("site.addresses", "this site's", items)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := []struct {
		name    string
		target  *probe.SSHTarget
		own     probe.PeerSet
		managed bool
		err     error
		says    string
	}{
		{"listed by the session's own address", tg, nil, true, nil, ""},
		{"listed by a configured address", tg, own("127.0.0.0/29"), true, nil, ""},
		{"listed by another address than the configured one", tg, own("10.20.0.1"), false, probe.ErrNotListed, "(127.0.0.2)"},
		{"no terminal, so who lists nothing", noTerminalTarget, nil, false, probe.ErrNotListed, "lists no session"},
		{"UseDNS lists a host name", useDNSTarget, nil, false, probe.ErrNotListed, "UseDNS no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vctx, vcancel := context.WithTimeout(ctx, 2*time.Second)
			defer vcancel()
			r := h.Verify(vctx, tt.target, "who", tt.own)
			if r.Managed != tt.managed || !errors.Is(r.Err, tt.err) || !strings.Contains(fmt.Sprint(r.Err), tt.says) {
				t.Fatalf("Verify = %+v, want managed %v, error %v saying %q", r, tt.managed, tt.err, tt.says)
			}
		})
	}
	t.Run("not held", func(t *testing.T) {
		other := at(srv.Host, srv.Port) // configured, but not one of the holder's targets
		if r := h.Verify(ctx, other, "who", nil); r.Managed || !errors.Is(r.Err, probe.ErrNotHeld) {
			t.Fatalf("Verify = %+v, want ErrNotHeld", r)
		}
	})
}

func TestNewSSHTargetErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := dir + "/garbage"
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := dir + "/kh"
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    probe.SSHTargetOptions
		want string
	}{
		{"no credentials", probe.SSHTargetOptions{KnownHosts: kh}, "arb[0]: needs a password or a privateKey"},
		{"missing key file", probe.SSHTargetOptions{PrivateKey: dir + "/nope", KnownHosts: kh}, "arb[0].privateKey"},
		{"garbage key", probe.SSHTargetOptions{PrivateKey: garbage, KnownHosts: kh}, "unencrypted OpenSSH or PEM key"},
		{"no known hosts", probe.SSHTargetOptions{Password: "x"}, "arb[0].knownHosts: is required"},
		{"missing known hosts", probe.SSHTargetOptions{Password: "x", KnownHosts: dir + "/nope"}, "arb[0].knownHosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Host, tt.o.Port, tt.o.Username, tt.o.Field = "127.0.0.1", 22, "u", "arb[0]"
			_, err := probe.NewSSHTarget(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A server that accepts TCP and never speaks must not hold the round
// beyond one timeout: the others' results arrive and it counts unreachable.
func TestStalledArbiterBoundedByTimeout(t *testing.T) {
	srv := sshtest.New(t, sshtest.Options{Password: "s3cret"})
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	stalled := target(t, srv, probe.SSHTargetOptions{Password: "s3cret"})
	// Point a copy of the target at the silent listener; its host key
	// never gets checked because no banner ever comes.
	silent := *stalled
	silent.Addr = stall.Addr().String()
	targets := []*probe.SSHTarget{stalled, &silent, stalled}

	const timeout = 300 * time.Millisecond
	start := time.Now()
	res := probe.All(context.Background(), len(targets), timeout, func(ctx context.Context, i int) probe.Result {
		return probe.Dialer{LocalAddr: siteB}.Check(ctx, targets[i], "who", peersA(t))
	})
	took := time.Since(start)
	if !res[0].Reachable || !res[2].Reachable {
		t.Errorf("healthy arbiters: %+v %+v", res[0], res[2])
	}
	if res[1].Reachable || !errors.Is(res[1].Err, probe.ErrTimeout) {
		t.Errorf("stalled arbiter: %+v, want unreachable with ErrTimeout", res[1])
	}
	// Not a timing assertion on speed, a bound on stalling: the round must
	// end near one timeout, never several.
	if took > 2*timeout+500*time.Millisecond {
		t.Errorf("round took %s with probeTimeout %s: a stalled arbiter delayed the verdict", took, timeout)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r := probe.TCP(ctx, "127.0.0.1", port); !r.Reachable {
		t.Errorf("listening arbiter: %+v", r)
	}
	ln.Close()
	if r := probe.TCP(ctx, "127.0.0.1", port); r.Reachable || r.Err == nil {
		t.Errorf("closed arbiter: %+v, want unreachable", r)
	}
}

func TestPing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := probe.NewPinger(ctx)
	if errors.Is(err, ping.ErrNotPermitted) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs ICMP: %v", err)
		}
		t.Skipf("no ICMP socket on this machine (run as root or widen net.ipv4.ping_group_range): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	res := probe.All(ctx, 3, 500*time.Millisecond, func(ctx context.Context, i int) probe.Result {
		return p.Ping(ctx, []string{"127.0.0.1", "127.0.0.5", "203.0.113.1"}[i])
	})
	if !res[0].Reachable || !res[1].Reachable {
		t.Errorf("loopback pings: %+v %+v", res[0], res[1])
	}
	// TEST-NET-3 is never routed to a host that answers.
	if res[2].Reachable || res[2].Err == nil {
		t.Errorf("203.0.113.1: %+v, want unreachable", res[2])
	}
	if r := p.Ping(ctx, "::1"); !errors.Is(r.Err, ping.ErrNotIPv4) || !strings.Contains(r.Err.Error(), "watchdog.failureDetection.arbiterProbe: tcp") {
		t.Errorf("IPv6 ping: %+v, want an error pointing to arbiterProbe: tcp", r)
	}
}

// TestPingNotPermitted runs in a network namespace that allows no ICMP
// socket: the error names the host's fixes and the arbiter's own, the TCP
// probe.
func TestPingNotPermitted(t *testing.T) {
	if !pingtest.In(t, pingtest.Denied) {
		return
	}
	_, err := probe.NewPinger(context.Background())
	if !errors.Is(err, ping.ErrNotPermitted) {
		t.Fatalf("want ping.ErrNotPermitted, got %v", err)
	}
	for _, want := range []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "or set watchdog.failureDetection.arbiterProbe: tcp"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
