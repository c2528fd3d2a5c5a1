package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drwatch/drwatch/bench/internal/report"
)

// drwatchTool runs `drwatch run` in each site namespace (embedded NATS,
// leafnode b→a), the services the all-in-one binary does not compose yet
// as their standalone binaries against the site's server, and three
// arbiters as sshd in their own namespaces.
type drwatchTool struct {
	dir, self, repo string
	bins            map[string]string // name → built binary
	standalone      []string          // services run as their own binary
	placedVIP       bool              // the harness, not drwatch, put the first VIP
	procs           map[string][]*proc
	arbiters        []*proc
}

// needed are the services a failover needs: detection, arbitration, action.
var needed = []string{"heartbeat", "arbiter", "orchestrator"}

func (d *drwatchTool) name() string { return report.Drwatch }

func (d *drwatchTool) settings(r *report.Report) {
	r.Setf(d.name(), "watchdog.heartbeat", "probe icmp, interval 1s, timeout 750ms, retries 3 → 4 × 750 ms = 3 s of silence (keepalived: 3.61 s)")
	r.Setf(d.name(), "watchdog.failureDetection", "3 arbiters (sshd), thresholds failover 0.5 / adjustManaged 0.5 / warning 0.7, sessionCommand ss, arbiterProbe icmp")
	r.Setf(d.name(), "arbiter sshd", "ClientAliveInterval 1 × ClientAliveCountMax 3 = a dead site's session listed for ≤ 3 s")
	r.Setf(d.name(), "failover", "automatic true, failback manual, blockWindow 0s (so 20 runs can alternate)")
	r.Setf(d.name(), "nats.embedded", "syncAlways true, leafnode b → a:7422 (no TLS inside the bench)")
	r.Setf(d.name(), "vip", "%s/24 on eth0, taken by the orchestrator over netlink with gratuitous ARP", dwVIP)
	if d.placedVIP {
		r.Setf(d.name(), "initial VIP", "added to site a by the harness once: the active site's orchestrator did not claim it within 10 s of start")
	} else {
		r.Setf(d.name(), "initial VIP", "claimed by site a's orchestrator at start")
	}
	if len(d.standalone) > 0 {
		r.Setf(d.name(), "services run standalone", "%s (not yet composed by cmd/drwatch/internal/cli/services.go)", strings.Join(d.standalone, ", "))
	} else {
		r.Setf(d.name(), "services", "all in `drwatch run` (heartbeat, arbiter, orchestrator and the rest composed by cmd/drwatch)")
	}
}

func (d *drwatchTool) setup(ctx context.Context) error {
	d.procs = map[string][]*proc{}
	d.bins = map[string]string{}
	src, err := os.ReadFile(filepath.Join(d.repo, "cmd/drwatch/internal/cli/services.go"))
	if err != nil {
		return fmt.Errorf("read the composed service list: %w", err)
	}
	build := map[string]string{"drwatch": "./cmd/drwatch"}
	for _, s := range needed {
		if !strings.Contains(string(src), `Name: "`+s+`"`) {
			d.standalone = append(d.standalone, s)
			build[s] = "./services/" + s + "/cmd/" + s
		}
	}
	for name, pkg := range build {
		out := filepath.Join(d.dir, "bin", name)
		cmd := []string{"go", "build", "-o", out, pkg}
		c := commandIn(ctx, d.repo, cmd...)
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w: %s", pkg, err, b)
		}
		d.bins[name] = out
	}
	return d.startArbiters(ctx)
}

// startArbiters generates host keys, one client key per site and a
// known_hosts, and runs sshd in each arbiter namespace.
func (d *drwatchTool) startArbiters(ctx context.Context) error {
	keys := filepath.Join(d.dir, "ssh")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	var auth, known strings.Builder
	for _, s := range []string{"a", "b"} {
		k := filepath.Join(keys, "site_"+s)
		if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drwatch-"+s, "-f", k); err != nil {
			return err
		}
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			return err
		}
		auth.Write(pub)
	}
	if err := writeFile(filepath.Join(keys, "authorized_keys"), auth.String(), 0o600); err != nil {
		return err
	}
	for _, a := range arbs {
		hk := filepath.Join(keys, "host_"+a.name)
		if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk); err != nil {
			return err
		}
		pub, err := os.ReadFile(hk + ".pub")
		if err != nil {
			return err
		}
		f := strings.Fields(string(pub))
		fmt.Fprintf(&known, "%s %s %s\n", a.addr, f[0], f[1])
		cfg := fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
ClientAliveInterval 1
ClientAliveCountMax 3
MaxStartups 100:30:200
`, a.addr, hk, filepath.Join(keys, a.name+".pid"), filepath.Join(keys, "authorized_keys"))
		cf := filepath.Join(keys, "sshd_"+a.name)
		if err := writeFile(cf, cfg, 0o600); err != nil {
			return err
		}
		p, err := start(d.dir, a, "", "sshd-"+a.name, nil, "/usr/sbin/sshd", "-D", "-e", "-f", cf)
		if err != nil {
			return err
		}
		d.arbiters = append(d.arbiters, p)
	}
	return writeFile(filepath.Join(keys, "known_hosts"), known.String(), 0o644)
}

func (d *drwatchTool) config(s node) string {
	peer := site(peerOf(s.name))
	role := "standby"
	if s == siteA {
		role = "active"
	}
	leaf := "      listen: " + siteA.addr + ":7422"
	if s == siteB {
		leaf = "      remotes: [nats-leaf://" + siteA.addr + ":7422]"
	}
	var arb strings.Builder
	for _, a := range arbs {
		fmt.Fprintf(&arb, "      - {host: %s, username: root, privateKey: %s, knownHosts: %s}\n", a.addr,
			filepath.Join(d.dir, "ssh", "site_"+s.name), filepath.Join(d.dir, "ssh", "known_hosts"))
	}
	return fmt.Sprintf(`site:
  name: %[1]s
  peer: %[2]s
  role: %[3]s
  node: site-%[1]s
  peerAddresses: [%[4]s]
nats:
  embedded:
    host: %[5]s
    port: 4222
    storeDir: %[6]s
    syncAlways: true
    leafnode:
%[7]s
vip:
  address: %[8]s/24
  interface: eth0
core:
  peerVip: %[4]s
watchdog:
  heartbeat:
    probe: icmp
    interval: 1s
    timeout: 750ms
    retries: 3
  failureDetection:
    sessionCommand: "ss -tnH state established '( sport = :22 )'"
    arbiterProbe: icmp
    arbiters:
%[9]sfailover:
  automatic: true
  failback: manual
  blockWindow: 0s
http:
  listen: %[5]s:8480
`, s.name, peer.name, role, peer.addr, s.addr, filepath.Join(d.dir, "dw-"+s.name, "nats"), leaf, dwVIP, arb.String())
}

func (d *drwatchTool) startSite(ctx context.Context, s node, first bool) error {
	cfg := filepath.Join(d.dir, "dw-"+s.name+".yaml")
	if err := writeFile(cfg, d.config(s), 0o644); err != nil {
		return err
	}
	var ps []*proc
	add := func(p *proc, err error) error {
		if err == nil {
			ps = append(ps, p)
		}
		return err
	}
	if err := add(start(d.dir, s, "", "kvserve-dw-"+s.name, nil, d.self, "kvserve", "-listen", fmt.Sprintf(":%d", kvPort), "-file", filepath.Join(d.dir, "dwkv-"+s.name+".data"))); err != nil {
		return err
	}
	if err := add(start(d.dir, s, "", "drwatch-"+s.name, nil, d.bins["drwatch"], "run", "-config", cfg)); err != nil {
		return err
	}
	url := "nats://" + s.addr + ":4222"
	if err := waitTCP(ctx, s, s.addr+":4222", 30*time.Second); err != nil {
		return fmt.Errorf("drwatch site %s: %w (see %s)", s.name, err, filepath.Join(d.dir, "drwatch-"+s.name+".log"))
	}
	for _, svc := range d.standalone {
		if err := add(start(d.dir, s, "", svc+"-"+s.name, nil, d.bins[svc], "-config", cfg, "-nats", url)); err != nil {
			return err
		}
	}
	if err := add(start(d.dir, s, "", "natswatch-"+s.name, nil, d.self, "natswatch", "-url", url)); err != nil {
		return err
	}
	d.procs[s.name] = ps
	if first && s == siteA {
		// An active site's orchestrator should claim the VIP at start;
		// when it does not within 10 s the harness places it once, as an
		// operator's initial setup would, and says so.
		deadline := time.Now().Add(10 * time.Second)
		for !d.holdsVIP(ctx, s) {
			if time.Now().After(deadline) {
				d.placedVIP = true
				return run(ctx, "ip", "-n", s.ns(), "addr", "add", dwVIP+"/24", "dev", "eth0")
			}
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *drwatchTool) holdsVIP(ctx context.Context, s node) bool {
	out, _ := output(ctx, "ip", "-n", s.ns(), "-4", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+dwVIP+"/")
}

func (d *drwatchTool) events(s node) stateLog {
	return stateLog{filepath.Join(d.dir, "natswatch-"+s.name+".log")}
}

func (d *drwatchTool) vip() string { return dwVIP }

func (d *drwatchTool) writer() (string, string) { return "kv", fmt.Sprintf("%s:%d", dwVIP, kvPort) }

func (d *drwatchTool) detected(standby node, t0 time.Time) (time.Time, bool) {
	subj := "drwatch." + standby.name + ".evt.heartbeat.RemoteUnreachable"
	ts := d.events(standby).after(t0, func(s string) bool { return s == subj })
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

// takeovers counts RoleChanged events published by the site; a standby
// that changes role under netem is a false failover.
func (d *drwatchTool) takeovers(s node, t0 time.Time) int {
	return len(d.events(s).after(t0, func(x string) bool { return x == "drwatch."+s.name+".evt.orchestrator.RoleChanged" }))
}

// unreachables counts false detections (RemoteUnreachable) under netem.
func (d *drwatchTool) unreachables(s node, t0 time.Time) int {
	return len(d.events(s).after(t0, func(x string) bool { return x == "drwatch."+s.name+".evt.heartbeat.RemoteUnreachable" }))
}

func (d *drwatchTool) ready(ctx context.Context, active node, since time.Time) bool {
	// The returning site hears the active again.
	other := site(peerOf(active.name))
	return len(d.events(other).after(since, func(x string) bool {
		return x == "drwatch."+other.name+".evt.heartbeat.ConfigChecked"
	})) > 0
}

// hasData is false: drwatch's PostgreSQL pair (dbmonitor promoting a
// streaming replica) is not set up by the harness yet, so its RPO is not
// measured; measureTool records that in the notes.
func (d *drwatchTool) hasData() bool { return false }

func (d *drwatchTool) switchover(context.Context, node) error {
	return fmt.Errorf("not measured")
}

func (d *drwatchTool) teardown() {
	for _, ps := range d.procs {
		for _, p := range ps {
			p.stop()
		}
	}
	for _, p := range d.arbiters {
		p.stop()
	}
}
