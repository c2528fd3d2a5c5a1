package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/ping"
	"github.com/drwatch/drwatch/pkg/ping/pingtest"
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

func TestICMPLoopback(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewICMP(ctx, ping.Auto)
	if err != nil {
		t.Fatal(err)
	}
	// The heartbeat's lines probe at once through the one pinger.
	errs := make(chan error, 20)
	for i := range 20 {
		go func() { errs <- p.Probe(ctx, "127.0.0."+strconv.Itoa(1+i%5), time.Second) }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := p.Probe(ctx, "localhost", time.Second); err != nil {
		t.Errorf("ping localhost: %v", err)
	}
}

func TestICMPRejectsIPv6(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewICMP(ctx, ping.Auto)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Probe(ctx, "::1", time.Second)
	if !errors.Is(err, ping.ErrNotIPv4) || !strings.Contains(err.Error(), "watchdog.heartbeat.probe: tcp") {
		t.Fatalf("want an error pointing to the tcp probe, got %v", err)
	}
}

func TestICMPBadMode(t *testing.T) {
	if _, err := NewICMP(context.Background(), "raw"); err == nil || !strings.Contains(err.Error(), `icmp mode "raw"`) {
		t.Fatalf("got %v", err)
	}
}

// silent is a peer that never answers: the ping lasts as long as its
// context.
type silent struct{}

func (silent) Ping(ctx context.Context, host string) error {
	<-ctx.Done()
	return fmt.Errorf("icmp echo to %s: %w", host, ctx.Err())
}

// TestICMPTimeout: the probe's own timeout reads as a silent peer; the
// caller's cancellation stays a cancellation. (pkg/ping tests a real
// silent peer.)
func TestICMPTimeout(t *testing.T) {
	p := &ICMP{pinger: silent{}}
	err := p.Probe(context.Background(), "10.9.9.2", 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "icmp 10.9.9.2: no echo reply within 20ms") {
		t.Fatalf("want a timeout error, got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := p.Probe(ctx, "10.9.9.2", 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled probe: want context.Canceled, got %v", err)
	}
}

// TestICMPNotPermitted runs in a network namespace that allows no ICMP
// socket: the error names the host's fixes and the heartbeat's own, the
// TCP probe.
func TestICMPNotPermitted(t *testing.T) {
	if !pingtest.In(t, pingtest.Denied) {
		return
	}
	for _, mode := range []ping.Mode{ping.Auto, ping.Unprivileged} {
		_, err := NewICMP(context.Background(), mode)
		if !errors.Is(err, ping.ErrNotPermitted) {
			t.Fatalf("mode %q: want ErrNotPermitted, got %v", mode, err)
		}
		for _, want := range []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "or set watchdog.heartbeat.probe: tcp with a port"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %q: error does not mention %q:\n%v", mode, want, err)
			}
		}
		t.Log(err)
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
