package orchestrator

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
)

const vipChildEnv = "DRWATCH_ORCH_VIP_CHILD"

// TestVIPFollowsRoleInNamespace runs a whole orchestrator, with its
// embedded JetStream, inside a fresh network namespace holding a veth pair,
// and checks that the real address follows the role outside any saga (see
// TestVIPFollowsRoleChild). It needs root: it skips otherwise, and fails
// when CI=true so the one test of the real VIP cannot silently vanish.
func TestVIPFollowsRoleInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "the VIP monitor test needs root (a network namespace, CAP_NET_ADMIN); run the tests as root"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ns := fmt.Sprintf("drwatch-orch-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up") // the embedded NATS listens on loopback
	ip("-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ip("-n", ns, "link", "set", "v0", "up")
	ip("-n", ns, "link", "set", "v1", "up")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestVIPFollowsRoleChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), vipChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestVIPFollowsRoleChild") {
		t.Fatalf("child in namespace %s: %v\n%s", ns, err, out)
	}
}

func TestVIPFollowsRoleChild(t *testing.T) {
	if os.Getenv(vipChildEnv) != "1" {
		t.Skip("runs inside the namespace made by TestVIPFollowsRoleInNamespace")
	}
	const cidr = "10.78.0.10/24"
	addr, err := vip.New(cidr, "v0")
	if err != nil {
		t.Fatal(err)
	}
	held := func() bool {
		ok, err := addr.Held(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	changes := func(h *harness, wantHeld bool) int {
		n := 0
		for _, c := range decodeAll[events.VIPChanged](h) {
			if c.Held == wantHeld && c.Address == cidr && c.Interface == "v0" {
				n++
			}
		}
		return n
	}

	h := newHarness(t, events.RoleActive)
	h.opts.VIP = addr
	h.opts.VIPInterval = 50 * time.Millisecond
	if held() {
		t.Fatal("the fresh namespace already holds the VIP")
	}

	// A site that starts active takes the VIP without any failover.
	h.start()
	h.waitFor("the active site holds the VIP", held)
	h.waitFor("VIPChanged held=true recorded", func() bool { return changes(h, true) == 1 })
	if n := len(decodeAll[events.FailoverStarted](h)); n != 0 {
		t.Fatalf("%d sagas; the VIP must follow the role without one", n)
	}

	// An operator removes it by hand: it comes back.
	ip("addr", "del", cidr, "dev", "v0")
	h.waitFor("the VIP back after removal by hand", held)
	h.waitFor("second VIPChanged held=true", func() bool { return changes(h, true) == 2 })

	// A stop releases it (before the arbiter's sessions end, in the
	// drwatch process); the restarted active site takes it back once its
	// startup hold ends.
	h.stop()
	if held() {
		t.Error("the VIP is still held after the orchestrator stopped")
	}
	h.opts.StartupHold = time.Second // no peer here to learn a role from
	h.start()
	h.waitFor("the VIP back after the restart", held)
	h.waitFor("third VIPChanged held=true", func() bool { return changes(h, true) == 3 })

	// Switched to standby: the demotion saga releases it.
	h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleStandby, Manual: true, Reason: "maintenance", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	h.waitRole(events.RoleStandby, 1)
	h.waitFor("the VIP gone on the standby", func() bool { return !held() })

	// Someone puts it back on the standby: fenced off again.
	ip("addr", "add", cidr, "dev", "v0")
	h.waitFor("the VIP removed from the standby", func() bool { return !held() })
	h.waitFor("VIPChanged held=false recorded", func() bool { return changes(h, false) == 1 })
	for _, c := range decodeAll[events.VIPChanged](h) {
		if !c.Held && (c.Role != events.RoleStandby || !strings.Contains(c.Reason, "never answers")) {
			t.Errorf("fence record %+v", c)
		}
	}

	// drwatch exits holding it (a kill leaves the host's address in
	// place): the supervisor's ExecStopPost releases it.
	h.stop()
	ip("addr", "add", cidr, "dev", "v0")
	cfg := config.Defaults()
	cfg.VIP.Address, cfg.VIP.Interface = cidr, "v0"
	if err := ReleaseVIP(context.Background(), &cfg); err != nil {
		t.Fatalf("ReleaseVIP: %v", err)
	}
	if held() {
		t.Error("ReleaseVIP left the VIP on v0")
	}
	if err := ReleaseVIP(context.Background(), &cfg); err != nil {
		t.Errorf("ReleaseVIP of a VIP not held: %v", err)
	}
}
