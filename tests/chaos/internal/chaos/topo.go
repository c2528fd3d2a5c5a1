package chaos

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

// The topology is drbench's (bench/cmd/drbench/topo.go) under its own
// prefix and subnet, so the two can run side by side: every namespace
// hangs off one bridge in its own namespace; nothing touches the host's
// network.
const (
	nsPrefix = "drc-"
	nsBridge = nsPrefix + "br"
	subnet   = "10.79.0"
	vipAddr  = subnet + ".50"
)

// node is one namespace with its address on the bridge.
type node struct {
	name string // a, b, arb1..3, cl
	addr string
}

func (n node) ns() string   { return nsPrefix + n.name }
func (n node) port() string { return "h-" + n.name }

var (
	siteA    = node{"a", subnet + ".1"}
	siteB    = node{"b", subnet + ".2"}
	arbs     = []node{{"arb1", subnet + ".11"}, {"arb2", subnet + ".12"}, {"arb3", subnet + ".13"}}
	clientNS = node{"cl", subnet + ".100"}
	sites    = []node{siteA, siteB}
	allNodes = append([]node{siteA, siteB, clientNS}, arbs...)
)

func peerOf(n node) node {
	if n == siteA {
		return siteB
	}
	return siteA
}

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

// cleanTopology deletes the namespaces a previous run left, killing what
// still runs in them.
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

func killNamespace(ctx context.Context, ns string) {
	out, _ := output(ctx, "ip", "netns", "pids", ns)
	for _, p := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func buildTopology(ctx context.Context) error {
	steps := [][]string{
		{"netns", "add", nsBridge},
		{"-n", nsBridge, "link", "set", "lo", "up"},
		{"-n", nsBridge, "link", "add", "br0", "type", "bridge"},
		{"-n", nsBridge, "link", "set", "br0", "up"},
	}
	for _, n := range allNodes {
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
	for _, n := range allNodes {
		_ = run(ctx, "ip", "netns", "exec", n.ns(), "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	}
	return nil
}

// proc is a daemon run in a namespace. `ip netns exec` execs the program,
// so the pid is the daemon's own and signals reach it directly.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func start(dir string, n node, name string, argv ...string) (*proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns()}, argv...)...)
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

func (p *proc) signal(sig syscall.Signal) {
	if p != nil && !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill is SIGKILL and waits for the exit.
func (p *proc) kill() {
	if p == nil {
		return
	}
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop is SIGTERM, then SIGKILL after a grace.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	p.signal(syscall.SIGCONT)
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

func writeFile(path, content string, mode os.FileMode) error {
	return os.WriteFile(path, []byte(content), mode)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
