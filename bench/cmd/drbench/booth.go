package main

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/drwatch/drwatch/bench/internal/report"
)

// booth runs the booth ticket manager — a site daemon in each site, an
// arbitrator in arb1 — without Pacemaker. What is measured is booth's own
// ticket failover: the standby's lease of the holder expires, it wins the
// election, and its before-acquire-handler (run before every acquire and
// renewal) moves the VIP. No corosync or Pacemaker runs, so booth's
// crm_ticket calls fail (booth logs them and goes on): nothing here says
// how long Pacemaker would take to start resources once granted.
type booth struct {
	dir, self string
	arbiter   *proc
	procs     map[string][]*proc
}

const (
	boothVIP    = subnet + ".53"
	boothTicket = "vip"
	// boothUser is the user boothd runs a site's handler as (its default
	// site-user, made by the package for Pacemaker).
	boothUser = "hacluster"
)

// boothArb is the arbitrator's namespace: booth needs a third member.
var boothArb = arbs[0]

func (b *booth) name() string { return "booth" }

func (b *booth) settings(r *report.Report) {
	ver, _ := output(context.Background(), "dpkg-query", "-W", "-f", "${Version}", "booth")
	r.Setf(b.name(), "what is measured", "booth %s's own ticket failover, no Pacemaker: the before-acquire-handler moves the VIP (netlink + arping -U) when the site is about to acquire (before its election completes) or renews; crm_ticket is absent and its calls fail (booth logs exit 127 and goes on)", ver)
	r.Setf(b.name(), "members", "sites 10.77.0.1 and .2, arbitrator %s (booth needs three), UDP 9929", boothArb.addr)
	r.Setf(b.name(), "expire / renewal-freq", "3 s / 1 s (the others' 3 s of silence and 1 s probe); the holder renews every second and runs the handler each time")
	r.Setf(b.name(), "timeout / retries", "200ms / 3 (timeout × (retries+1) = 0.8 s < renewal 1 s, as booth requires; 3 is booth's minimum)")
	r.Setf(b.name(), "acquire-after", "0 (no extra wait after the lease expires)")
	r.Setf(b.name(), "ticket mode", "automatic; granted once to site a at start (booth grant), failover by booth afterwards")
	r.Setf(b.name(), "IPv6 in the booth namespaces", "disabled while booth runs: Debian bookworm's booth hangs at start on kernels from 6.9 on (its address lookup waits for an NLMSG_DONE the kernel now sends inside the last reply; fixed upstream in ClusterLabs/booth PR #139); with no IPv6 address that reply is a lone NLMSG_DONE, and this kernel still sends the IPv4 one apart")
	r.Setf(b.name(), "VIP", "%s/24, added by the handler when absent; nothing removes it from a site that loses the ticket alive (that is Pacemaker's job), so a false failover would leave two holders", boothVIP)
	r.Setf(b.name(), "service behind the VIP", "drbench kvserve :%d in each site (fsynced append); no replication, so no RPO", kvPort)
}

func (b *booth) conf() string  { return filepath.Join(b.dir, "booth.conf") }
func (b *booth) state() string { return filepath.Join(b.dir, "booth-state") }
func (b *booth) bin() string   { return filepath.Join(b.dir, "boothbin") }

func (b *booth) setup(ctx context.Context) error {
	b.procs = map[string][]*proc{}
	for _, n := range []node{siteA, siteB, boothArb} {
		if err := setIPv6(ctx, n, false); err != nil {
			return err
		}
	}
	if err := b.handlerFiles(ctx); err != nil {
		return err
	}
	conf := fmt.Sprintf(`transport = UDP
port = 9929
site = %s
site = %s
arbitrator = %s
ticket = "%s"
    expire = 3
    renewal-freq = 1
    timeout = 200ms
    retries = 3
    acquire-after = 0
    before-acquire-handler = %s
`, siteA.addr, siteB.addr, boothArb.addr, boothTicket, filepath.Join(b.bin(), "handler.sh"))
	if err := writeFile(b.conf(), conf, 0o644); err != nil {
		return err
	}
	p, err := b.daemon(boothArb)
	if err != nil {
		return err
	}
	b.arbiter = p
	return nil
}

// handlerFiles writes the before-acquire-handler and gives the copies of
// drbench (its vip helper) and arping it runs as hacluster the
// capabilities to move the VIP, as for Patroni's callback.
func (b *booth) handlerFiles(ctx context.Context) error {
	if err := os.MkdirAll(b.bin(), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(b.state(), 0o755); err != nil {
		return err
	}
	if err := run(ctx, "chown", boothUser, b.state()); err != nil {
		return err
	}
	arping, err := osexec.LookPath("arping")
	if err != nil {
		return err
	}
	for name, src := range map[string]string{"drbench": b.self, "arping": arping} {
		dst := filepath.Join(b.bin(), name)
		if err := run(ctx, "cp", src, dst); err != nil {
			return err
		}
		if err := run(ctx, "setcap", "cap_net_admin,cap_net_raw+ep", dst); err != nil {
			return err
		}
	}
	// One "handler" line per call (the first at a standby is its decision
	// to acquire), one "take" line when it adds the VIP.
	h := fmt.Sprintf(`#!/bin/sh
# booth before-acquire-handler: before every acquire and renewal
PATH=/usr/sbin:/usr/bin:/sbin:/bin
now=$(date +%%s%%N)
state=%[1]s/booth-$BOOTH_LOCAL.state
echo "$now handler" >> "$state"
if ! ip -4 -o addr show dev eth0 | grep -q " %[3]s/"; then
  %[2]s/drbench vip add %[3]s/24 eth0 || exit 1
  echo "$now take" >> "$state"
  %[2]s/arping -q -U -c 1 -I eth0 %[3]s >/dev/null 2>&1 &
fi
exit 0
`, b.state(), b.bin(), boothVIP)
	return writeFile(filepath.Join(b.bin(), "handler.sh"), h, 0o755)
}

// setIPv6 turns IPv6 on or off in n's namespace (see settings: booth's
// address lookup).
func setIPv6(ctx context.Context, n node, on bool) error {
	v := "1"
	if on {
		v = "0"
	}
	for _, dev := range []string{"all", "default", "lo", "eth0"} {
		if err := run(ctx, "ip", "netns", "exec", n.ns(), "sysctl", "-qw", "net.ipv6.conf."+dev+".disable_ipv6="+v); err != nil {
			return err
		}
	}
	return nil
}

func (b *booth) daemon(n node) (*proc, error) {
	return start(b.dir, n, "", "boothd-"+n.name, nil, "boothd", "daemon", "-S", "-D", "-c", b.conf(),
		"-l", filepath.Join(b.dir, "boothd-"+n.name+".pid"))
}

func (b *booth) startSite(ctx context.Context, s node, first bool) error {
	kv, err := start(b.dir, s, "", "kvserve-booth-"+s.name, nil, b.self, "kvserve", "-listen", fmt.Sprintf(":%d", kvPort), "-file", filepath.Join(b.dir, "boothkv-"+s.name+".data"))
	if err != nil {
		return err
	}
	bd, err := b.daemon(s)
	if err != nil {
		return err
	}
	b.procs[s.name] = []*proc{kv, bd}
	if first && s == siteB {
		return b.grant(ctx, siteA)
	}
	return nil
}

// grant gives the ticket to s once every member runs, and waits until s
// holds the VIP.
func (b *booth) grant(ctx context.Context, s node) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, err := b.client(ctx, s, "grant", boothTicket)
		if err == nil {
			break
		}
		last = lastLines(out, 2)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	for time.Now().Before(deadline) {
		if len(b.log(s).after(time.Time{}, isTake)) > 0 {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("booth grant %s to site %s: no VIP within 30s (last answer: %s; logs in %s)", boothTicket, s.name, last, b.dir)
}

// client runs the booth client in n's namespace; it talks to n's daemon.
func (b *booth) client(ctx context.Context, n node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := append([]string{"netns", "exec", n.ns(), "booth"}, args...)
	argv = append(argv, "-c", b.conf())
	out, err := osexec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	return string(out), err
}

func (b *booth) log(s node) stateLog {
	return stateLog{filepath.Join(b.state(), "booth-"+s.addr+".state")}
}

func isTake(s string) bool { return s == "take" }

func (b *booth) writer() (string, string) { return "kv", fmt.Sprintf("%s:%d", boothVIP, kvPort) }

func (b *booth) vip() string { return boothVIP }

// detected is the standby's first handler call after t0: booth found the
// holder's lease expired and is about to acquire.
func (b *booth) detected(standby node, t0 time.Time) (time.Time, bool) {
	ts := b.log(standby).after(t0, func(x string) bool { return x == "handler" })
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

func (b *booth) takeovers(s node, t0 time.Time) int { return len(b.log(s).after(t0, isTake)) }

// ready: the returning site's daemon knows the active as the ticket's
// leader.
func (b *booth) ready(ctx context.Context, active node, _ time.Time) bool {
	out, err := b.client(ctx, site(peerOf(active.name)), "list")
	return err == nil && strings.Contains(out, "leader: "+active.addr+",")
}

func (b *booth) hasData() bool { return false }

func (b *booth) switchover(context.Context, node) error {
	return fmt.Errorf("booth fronts no data here")
}

func (b *booth) teardown() {
	for _, ps := range b.procs {
		for _, p := range ps {
			p.stop()
		}
	}
	b.arbiter.stop()
	for _, n := range []node{siteA, siteB, boothArb} {
		_ = setIPv6(context.Background(), n, true)
	}
}
