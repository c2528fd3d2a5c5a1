package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const childEnv = "DRWATCH_VIP_TEST_CHILD"

// needRoot skips without root, except in CI where a skip would hide the
// one test that moves a real address.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "moving a real VIP needs root (network namespaces, CAP_NET_ADMIN); run the tests as root"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New("10.0.0.10", "eth0"); err == nil || !strings.Contains(err.Error(), "vip.address") {
		t.Errorf("address without prefix: %v", err)
	}
	if _, err := New("10.0.0.10/24", ""); err == nil || !strings.Contains(err.Error(), "vip.interface") {
		t.Errorf("no interface: %v", err)
	}
	a, _ := New("10.0.0.10/24", "no-such-if0")
	if err := a.Take(context.Background()); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("missing interface: %v", err)
	}
}

func TestPermissionErrorIsClear(t *testing.T) {
	err := wrap("add 10.0.0.10/24 on eth0", unix.EPERM)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Fatalf("%v", err)
	}
}

// TestVIPMovesInNamespace creates a network namespace with a veth pair and
// runs TestVIPChild inside it: a real address taken and released, and the
// gratuitous ARP seen on the other end of the pair.
func TestVIPMovesInNamespace(t *testing.T) {
	needRoot(t)
	ns := fmt.Sprintf("drwatch-vip-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run("-n", ns, "link", "set", "v0", "up")
	run("-n", ns, "link", "set", "v1", "up")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestVIPChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestVIPChild") {
		t.Fatalf("child in namespace %s: %v\n%s", ns, err, out)
	}
}

func TestVIPChild(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("runs inside the namespace made by TestVIPMovesInNamespace")
	}
	ctx := context.Background()
	// Listen on the far end before the address moves.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(ethPARP)))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifc, err := netInterfaceIndex("v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: ifc}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	a, err := New("10.77.0.10/24", "v0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if held, err := a.Held(ctx); err != nil || !held {
		t.Fatalf("after Take: held=%v err=%v", held, err)
	}
	if err := a.Take(ctx); err != nil {
		t.Fatalf("second Take must be a no-op: %v", err)
	}
	buf := make([]byte, 128)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("no gratuitous ARP seen on v1: %v", err)
	}
	f := buf[:n]
	if n < 42 || binary.BigEndian.Uint16(f[12:14]) != ethPARP {
		t.Fatalf("not an ARP frame: %x", f)
	}
	spa, tpa := netip.AddrFrom4([4]byte(f[28:32])), netip.AddrFrom4([4]byte(f[38:42]))
	if spa.String() != "10.77.0.10" || tpa != spa {
		t.Fatalf("ARP sender %s target %s, want gratuitous for 10.77.0.10", spa, tpa)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, _ := a.Held(ctx); held {
		t.Fatal("still held after Release")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("second Release must be a no-op: %v", err)
	}
}

func netInterfaceIndex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}
