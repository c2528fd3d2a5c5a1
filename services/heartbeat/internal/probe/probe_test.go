package probe

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// need skips a test whose prerequisite is missing on a user's machine, and
// fails it in CI, where the prerequisite must be there.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing in CI: %s", what)
	}
	t.Skipf("skipped: %s", what)
}

func TestICMPPrivilegedLoopback(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	p, err := NewICMP(ICMPPrivileged)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Privileged() {
		t.Fatal("want a raw socket")
	}
	for _, target := range []string{"127.0.0.1", "127.0.0.2", "localhost"} {
		if err := p.Probe(context.Background(), target, time.Second); err != nil {
			t.Errorf("ping %s: %v", target, err)
		}
	}
	// Several probes at once must each find their own reply on the shared
	// raw traffic.
	errs := make(chan error, 20)
	for i := range 20 {
		go func() { errs <- p.Probe(context.Background(), "127.0.0."+strconv.Itoa(1+i%5), time.Second) }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestICMPAutoPrefersRaw(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	p, err := NewICMP(ICMPAuto)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Privileged() {
		t.Error("auto mode as root should pick the raw socket")
	}
}

func TestICMPRejectsIPv6(t *testing.T) {
	p := &ICMP{network: "udp4"}
	err := p.Probe(context.Background(), "::1", time.Second)
	if err == nil || !strings.Contains(err.Error(), "probe: tcp") {
		t.Fatalf("want an error pointing to the tcp probe, got %v", err)
	}
}

func TestICMPBadMode(t *testing.T) {
	if _, err := NewICMP("raw"); err == nil || !strings.Contains(err.Error(), `icmp mode "raw"`) {
		t.Fatalf("got %v", err)
	}
}

// TestICMPInNetns runs the ICMP socket checks in a fresh network namespace
// whose net.ipv4.ping_group_range the test sets, so both host policies are
// covered whatever the host's own sysctl says.
func TestICMPInNetns(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed to create a network namespace")
	_, errU := exec.LookPath("unshare")
	_, errS := exec.LookPath("setpriv")
	need(t, errU == nil && errS == nil, "unshare and setpriv (util-linux) are needed")
	tests := []struct {
		name, childCase, script string
	}{
		{"unprivileged allowed", "unprivileged-ok",
			`ip link set lo up && sysctl -qw net.ipv4.ping_group_range="0 2147483647" && exec "$0" -test.run='^TestICMPNetnsChild$' -test.v`},
		{"no reply times out", "timeout",
			`ip link set lo up && ip route add 10.9.9.0/24 dev lo && exec "$0" -test.run='^TestICMPNetnsChild$' -test.v`},
		{"neither allowed", "denied",
			`ip link set lo up && sysctl -qw net.ipv4.ping_group_range="1 0" && exec setpriv --inh-caps=-net_raw --bounding-set=-net_raw "$0" -test.run='^TestICMPNetnsChild$' -test.v`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("unshare", "--net", "--", "sh", "-c", tt.script, os.Args[0])
			cmd.Env = append(os.Environ(), "HB_NETNS_CASE="+tt.childCase)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestICMPNetnsChild") {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
		})
	}
}

// TestICMPNetnsChild is the half of TestICMPInNetns that runs inside the
// namespace; on its own it does nothing.
func TestICMPNetnsChild(t *testing.T) {
	switch os.Getenv("HB_NETNS_CASE") {
	case "":
		t.Skip("runs only inside TestICMPInNetns")
	case "unprivileged-ok":
		p, err := NewICMP(ICMPUnprivileged)
		if err != nil {
			t.Fatal(err)
		}
		if p.Privileged() {
			t.Fatal("want a ping socket")
		}
		if err := p.Probe(context.Background(), "127.0.0.1", time.Second); err != nil {
			t.Fatal(err)
		}
	case "timeout":
		// 10.9.9.2 is routed to lo but is no local address: the echo
		// request is dropped silently, as by a dead peer.
		p, err := NewICMP(ICMPPrivileged)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = p.Probe(context.Background(), "10.9.9.2", 200*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "no echo reply within 200ms") {
			t.Fatalf("want a timeout error, got %v", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Errorf("probe took %s, want about the 200ms timeout", d)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if err := p.Probe(ctx, "10.9.9.2", 10*time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled probe: want context.Canceled, got %v", err)
		}
	case "denied":
		_, err := NewICMP(ICMPAuto)
		if !errors.Is(err, ErrICMPNotPermitted) {
			t.Fatalf("want ErrICMPNotPermitted, got %v", err)
		}
		for _, want := range []string{"net.ipv4.ping_group_range", "probe: tcp", "CAP_NET_RAW", "raw (ip4:icmp)", "ping (udp4)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
		t.Log(err)
		// Forcing the unprivileged socket gives the same clear error.
		if _, err := NewICMP(ICMPUnprivileged); !errors.Is(err, ErrICMPNotPermitted) {
			t.Fatalf("unprivileged: want ErrICMPNotPermitted, got %v", err)
		}
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	p := TCP{Port: port}
	if err := p.Probe(context.Background(), "127.0.0.1", time.Second); err != nil {
		t.Fatalf("live listener: %v", err)
	}
	ln.Close()
	err = p.Probe(context.Background(), "127.0.0.1", time.Second)
	if err == nil || !strings.Contains(err.Error(), "tcp 127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("closed listener: want an error naming the address, got %v", err)
	}
}
