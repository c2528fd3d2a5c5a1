// Package pingtest runs a test inside a fresh network namespace whose ICMP
// policy the test chooses, so the paths that a host's sysctl and
// capabilities decide (ping sockets allowed, ICMP refused, a silent peer)
// are covered whatever the host running the tests allows.
package pingtest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Policy is what a namespace allows.
type Policy string

// The namespaces a test can ask for. Each has its loopback up.
const (
	// PingSockets lets every group open unprivileged ping sockets.
	PingSockets Policy = "ping-sockets"
	// Silent routes 10.9.9.0/24 to loopback with no address in it, so an
	// echo request to SilentAddr vanishes as if sent to a dead peer.
	Silent Policy = "silent"
	// Denied lets no group open ping sockets and drops CAP_NET_RAW: the
	// process can open no ICMP socket at all.
	Denied Policy = "denied"
)

// SilentAddr never answers inside a Silent namespace.
const SilentAddr = "10.9.9.2"

// envPolicy tells the re-executed test binary which namespace it is in.
const envPolicy = "DRWATCH_PINGTEST_POLICY"

var setup = map[Policy]string{
	PingSockets: `ip link set lo up && sysctl -qw net.ipv4.ping_group_range="0 2147483647" && exec "$0" "$@"`,
	Silent:      `ip link set lo up && ip route add 10.9.9.0/24 dev lo && exec "$0" "$@"`,
	Denied:      `ip link set lo up && sysctl -qw net.ipv4.ping_group_range="1 0" && exec setpriv --inh-caps=-net_raw --bounding-set=-net_raw "$0" "$@"`,
}

// In reports whether the calling test runs inside a namespace of policy p.
// Outside one, it re-runs just this test (or subtest) of the test binary
// inside a new namespace of policy p, fails t unless it passes there, and
// returns false: the caller then returns.
//
//	if !pingtest.In(t, pingtest.Denied) {
//		return
//	}
//
// Creating namespaces needs root and util-linux (unshare, setpriv); without
// them the test is skipped, or fails when CI=true.
func In(t *testing.T, p Policy) bool {
	t.Helper()
	if Policy(os.Getenv(envPolicy)) == p {
		return true
	}
	script, ok := setup[p]
	if !ok {
		t.Fatalf("pingtest: unknown policy %q", p)
	}
	need(t, os.Geteuid() == 0, "root is needed to create a network namespace")
	_, errU := exec.LookPath("unshare")
	_, errS := exec.LookPath("setpriv")
	need(t, errU == nil && errS == nil, "unshare and setpriv (util-linux) are needed")

	parts := strings.Split(t.Name(), "/")
	for i, s := range parts {
		parts[i] = "^" + regexp.QuoteMeta(s) + "$"
	}
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", script,
		os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envPolicy+"="+string(p))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" (") {
		t.Fatalf("in a %s network namespace: %v\n%s", p, err, out)
	}
	return false
}

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
