package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The topology: every namespace hangs off one bridge that lives in its own
// namespace, so nothing is added to the host's network.
const (
	nsPrefix = "drb-"
	nsBridge = nsPrefix + "br"
	subnet   = "10.77.0"
)

// node is one namespace of the topology with its address on the bridge.
type node struct {
	name string // short name: a, b, arb1..3, cl
	addr string
}

func (n node) ns() string   { return nsPrefix + n.name }
func (n node) port() string { return "h-" + n.name } // its veth end on the bridge

var (
	siteA   = node{"a", subnet + ".1"}
	siteB   = node{"b", subnet + ".2"}
	arbs    = []node{{"arb1", subnet + ".11"}, {"arb2", subnet + ".12"}, {"arb3", subnet + ".13"}}
	client  = node{"cl", subnet + ".100"}
	allNode = append([]node{siteA, siteB, client}, arbs...)
)

func site(name string) node {
	if name == "a" {
		return siteA
	}
	return siteB
}

func peerOf(name string) string {
	if name == "a" {
		return "b"
	}
	return "a"
}

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// cleanTopology removes every namespace a previous run left, killing what
// still runs inside it first (a crashed run leaves daemons behind).
func cleanTopology(ctx context.Context) {
	out, _ := output(ctx, "ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		killNamespace(ctx, f[0])
		_ = run(ctx, "ip", "netns", "del", f[0])
	}
}

// killNamespace SIGKILLs every process in a namespace.
func killNamespace(ctx context.Context, ns string) {
	out, _ := output(ctx, "ip", "netns", "pids", ns)
	for _, p := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// buildTopology creates the bridge namespace and one namespace per node.
func buildTopology(ctx context.Context) error {
	steps := [][]string{
		{"netns", "add", nsBridge},
		{"-n", nsBridge, "link", "set", "lo", "up"},
		{"-n", nsBridge, "link", "add", "br0", "type", "bridge"},
		{"-n", nsBridge, "link", "set", "br0", "up"},
	}
	for _, n := range allNode {
		steps = append(steps,
			[]string{"netns", "add", n.ns()},
			[]string{"-n", n.ns(), "link", "set", "lo", "up"},
			[]string{"-n", nsBridge, "link", "add", n.port(), "type", "veth", "peer", "name", "eth0", "netns", n.ns()},
			[]string{"-n", nsBridge, "link", "set", n.port(), "master", "br0", "up"},
			[]string{"-n", n.ns(), "addr", "add", n.addr + "/24", "dev", "eth0"},
			[]string{"-n", n.ns(), "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	// Ping sockets for unprivileged helpers; raw sockets work as root anyway.
	for _, n := range allNode {
		_ = run(ctx, "ip", "netns", "exec", n.ns(), "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	}
	return nil
}

// powerOff is a site losing power: its processes die and its link goes
// silent (no RST, no ICMP), as a pulled cable on the bridge side.
func powerOff(ctx context.Context, n node) error {
	killNamespace(ctx, n.ns())
	return run(ctx, "ip", "-n", nsBridge, "link", "set", n.port(), "down")
}

// powerOn brings the site's link back with its base address only: a VIP it
// held died with it.
func powerOn(ctx context.Context, n node) error {
	if err := run(ctx, "ip", "-n", n.ns(), "addr", "flush", "dev", "eth0"); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", n.ns(), "addr", "add", n.addr+"/24", "dev", "eth0"); err != nil {
		return err
	}
	return run(ctx, "ip", "-n", nsBridge, "link", "set", n.port(), "up")
}

// impairment is loss and jitter applied to the inter-site link.
type impairment struct {
	how     string
	nodes   []node
	delays  []*proc // the NFQUEUE delayers, when tc netem is missing
	workDir string
}

// nfqNum is the NFQUEUE number the delayers bind in the site namespaces.
const nfqNum = "7"

// impair adds loss and jitter on both sites' egress towards the other
// site (its address and the VIPs it probes) — the inter-site link — and
// leaves arbiters and the client untouched. It uses tc netem behind a prio
// filter. On a kernel without sch_netem/sch_prio it drops with iptables'
// statistic match and delays with an NFQUEUE rule whose packets drbench's
// own delayer (package nfqdelay) holds for delay±jitter each, as netem
// would.
func impair(ctx context.Context, o options, loss float64, delay, jitter time.Duration, peers map[node][]string) (*impairment, error) {
	im := &impairment{nodes: nodesOf(peers), workDir: o.work}
	var tcErr error
	for n, dsts := range peers {
		steps := [][]string{
			{"qdisc", "add", "dev", "eth0", "root", "handle", "1:", "prio", "bands", "4", "priomap", "1", "2", "2", "2", "1", "2", "0", "0", "1", "1", "1", "1", "1", "1", "1", "1"},
			{"qdisc", "add", "dev", "eth0", "parent", "1:4", "handle", "40:", "netem", "loss", fmt.Sprintf("%g%%", loss), "delay", delay.String(), jitter.String()},
		}
		for _, d := range dsts {
			steps = append(steps, []string{"filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst", d + "/32", "flowid", "1:4"})
		}
		for _, s := range steps {
			if tcErr = run(ctx, "ip", append([]string{"netns", "exec", n.ns(), "tc"}, s...)...); tcErr != nil {
				break
			}
		}
		if tcErr != nil {
			break
		}
	}
	if tcErr == nil {
		im.how = fmt.Sprintf("tc netem loss %g%% delay %s %s", loss, delay, jitter)
		return im, nil
	}
	im.clearRules(ctx)
	for n, dsts := range peers {
		p, err := start(o.work, n, "", "nfqdelay-"+n.name, nil, o.self, "nfqdelay", "-queue", nfqNum, "-delay", delay.String(), "-jitter", jitter.String())
		if err != nil {
			im.clear(ctx)
			return nil, err
		}
		im.delays = append(im.delays, p)
		for _, d := range dsts {
			drop := []string{"netns", "exec", n.ns(), "iptables", "-A", "OUTPUT", "-d", d, "-m", "statistic", "--mode", "random", "--probability", fmt.Sprintf("%g", loss/100), "-j", "DROP"}
			// --queue-bypass: should the delayer die, packets pass
			// undelayed instead of being dropped.
			queue := []string{"netns", "exec", n.ns(), "iptables", "-A", "OUTPUT", "-d", d, "-j", "NFQUEUE", "--queue-num", nfqNum, "--queue-bypass"}
			for _, rule := range [][]string{drop, queue} {
				if err := run(ctx, "ip", rule...); err != nil {
					im.clear(ctx)
					return nil, fmt.Errorf("tc netem failed (%v) and so did iptables: %w", lastLines(tcErr.Error(), 1), err)
				}
			}
		}
	}
	im.how = fmt.Sprintf("iptables statistic drop %g%% and NFQUEUE delay %s ±%s uniform per packet (drbench's nfqdelay; this kernel has no tc netem: %s)", loss, delay, jitter, lastLines(tcErr.Error(), 1))
	return im, nil
}

// clear removes the impairment and says what the delayers did.
func (im *impairment) clear(ctx context.Context) string {
	im.clearRules(ctx)
	var did []string
	for _, p := range im.delays {
		p.stop()
		b, _ := os.ReadFile(filepath.Join(im.workDir, p.name+".log"))
		last := lastLines(string(b), 1)
		if !strings.Contains(last, "packets delayed") {
			last = "no figures (" + last + ")"
		}
		did = append(did, p.name+": "+last)
	}
	im.delays = nil
	return strings.Join(did, "; ")
}

func (im *impairment) clearRules(ctx context.Context) {
	for _, n := range im.nodes {
		_ = run(ctx, "ip", "netns", "exec", n.ns(), "tc", "qdisc", "del", "dev", "eth0", "root")
		_ = run(ctx, "ip", "netns", "exec", n.ns(), "iptables", "-F", "OUTPUT")
	}
}

func nodesOf(m map[node][]string) []node {
	var out []node
	for n := range m {
		out = append(out, n)
	}
	return out
}

// proc is a daemon started inside a namespace, logging to a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs argv inside ns (as user when not empty), output to dir/name.log.
func start(dir string, n node, user, name string, env []string, argv ...string) (*proc, error) {
	args := []string{"netns", "exec", n.ns()}
	if user != "" {
		args = append(args, "setpriv", "--reuid", user, "--regid", user, "--init-groups", "--")
	}
	args = append(args, argv...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s in %s: %w", name, n.ns(), err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stop ends the process group: SIGTERM, then SIGKILL after a grace.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
