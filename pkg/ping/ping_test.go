package ping_test

import (
	"context"
	"errors"
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

func listen(t *testing.T, mode ping.Mode) *ping.Pinger {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := ping.Listen(ctx, mode)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pingAll pings every host at once and returns the errors in host order.
func pingAll(p *ping.Pinger, timeout time.Duration, hosts []string) []error {
	errs := make([]error, len(hosts))
	done := make(chan struct{})
	for i, h := range hosts {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			errs[i] = p.Ping(ctx, h)
			done <- struct{}{}
		}()
	}
	for range hosts {
		<-done
	}
	return errs
}

func TestPrivilegedLoopback(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	p := listen(t, ping.Privileged)
	if !p.Privileged() {
		t.Fatal("want a raw socket")
	}
	for _, target := range []string{"127.0.0.1", "127.0.0.2", "localhost", "::ffff:127.0.0.3"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := p.Ping(ctx, target); err != nil {
			t.Errorf("ping %s: %v", target, err)
		}
		cancel()
	}
}

// TestConcurrentOneSocket is the arbiter's case: a thousand echoes at once
// over the one socket, each finding its own reply.
func TestConcurrentOneSocket(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	p := listen(t, ping.Auto)
	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)).String()
	}
	for i, err := range pingAll(p, 5*time.Second, hosts) {
		if err != nil {
			t.Errorf("ping %s: %v", hosts[i], err)
		}
	}
}

func TestAutoPrefersRaw(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	if p := listen(t, ping.Auto); !p.Privileged() {
		t.Error("auto mode as root should pick the raw socket")
	}
}

func TestBadMode(t *testing.T) {
	if _, err := ping.Listen(context.Background(), "raw"); err == nil || !strings.Contains(err.Error(), `icmp mode "raw"`) {
		t.Fatalf("got %v", err)
	}
}

func TestNotIPv4(t *testing.T) {
	need(t, os.Geteuid() == 0, "root is needed for a raw ICMP socket")
	p := listen(t, ping.Auto)
	err := p.Ping(context.Background(), "::1")
	if !errors.Is(err, ping.ErrNotIPv4) || !strings.Contains(err.Error(), "::1") {
		t.Fatalf("want ErrNotIPv4 naming the host, got %v", err)
	}
}

// TestLifetime: when the pinger's context ends its socket closes, a ping
// in flight returns at once and later pings fail instead of waiting.
func TestLifetime(t *testing.T) {
	if !pingtest.In(t, pingtest.Silent) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := ping.Listen(ctx, ping.Auto)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Ping(context.Background(), pingtest.SilentAddr) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ping in flight: want net.ErrClosed, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a ping in flight outlived its pinger")
	}
	if err := p.Ping(context.Background(), "127.0.0.1"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ping after close: want net.ErrClosed, got %v", err)
	}
}

// TestSilentPeer: an echo that is never answered ends with the ping's
// context, as a deadline or a cancellation.
func TestSilentPeer(t *testing.T) {
	if !pingtest.In(t, pingtest.Silent) {
		return
	}
	p := listen(t, ping.Auto)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Ping(ctx, pingtest.SilentAddr)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), pingtest.SilentAddr) {
		t.Fatalf("want context.DeadlineExceeded naming the host, got %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("ping took %s, want about its 200ms deadline", d)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := p.Ping(ctx, pingtest.SilentAddr); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ping: want context.Canceled, got %v", err)
	}
	// The silent peer does not hold up the others on the socket.
	errs := pingAll(p, time.Second, []string{"127.0.0.1", pingtest.SilentAddr, "127.0.0.2"})
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Errorf("mixed round: %v", errs)
	}
}

// TestUnprivileged: where ping_group_range allows it, the ping socket
// carries concurrent pings too (the kernel rewrites their identifier).
func TestUnprivileged(t *testing.T) {
	if !pingtest.In(t, pingtest.PingSockets) {
		return
	}
	p := listen(t, ping.Unprivileged)
	if p.Privileged() {
		t.Fatal("want a ping socket")
	}
	hosts := make([]string, 20)
	for i := range hosts {
		hosts[i] = "127.0.0." + strconv.Itoa(1+i%5)
	}
	for i, err := range pingAll(p, time.Second, hosts) {
		if err != nil {
			t.Errorf("ping %s: %v", hosts[i], err)
		}
	}
}

// TestNotPermitted: with neither socket allowed, every mode fails with
// ErrNotPermitted, keeps the socket errors and names both host fixes. The
// callers add their own config key.
func TestNotPermitted(t *testing.T) {
	if !pingtest.In(t, pingtest.Denied) {
		return
	}
	for _, tt := range []struct {
		mode ping.Mode
		want []string
	}{
		{ping.Auto, []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "raw (ip4:icmp)", "ping (udp4)"}},
		{ping.Unprivileged, []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "ping (udp4)"}},
		{ping.Privileged, []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "raw (ip4:icmp)"}},
	} {
		_, err := ping.Listen(context.Background(), tt.mode)
		if !errors.Is(err, ping.ErrNotPermitted) || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("mode %q: want ErrNotPermitted wrapping the permission error, got %v", tt.mode, err)
		}
		for _, want := range tt.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %q: error does not mention %q:\n%v", tt.mode, want, err)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("mode %q: error spans lines, so a caller's fix would not read on:\n%v", tt.mode, err)
		}
		t.Log(err)
	}
}
