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
// arbiters as sshd in their own namespaces. Its VIP fronts a PostgreSQL
// streaming pair that its dbmonitor promotes, fences and returns to
// standby.
type drwatchTool struct {
	dir, self, repo string
	pg              pgPair
	bins            map[string]string // name → built binary
	standalone      []string          // services run as their own binary
	placedVIP       bool              // the harness, not drwatch, put the first VIP
	procs           map[string][]*proc
	arbiters        []*proc
	source          string // the commit drwatch was built from
}

// arbiterUser is the login drwatch's sites use on the arbiters: a system
// user with /bin/sh and no shell start-up files. Logging in as root ran
// root's ~/.bashrc for every session listing (bash reads it for commands
// run by sshd), and on the machine the results come from that starts pyenv,
// whose rehash lock piled up dozens of waiting shells until the arbiters
// missed the 750 ms probe timeout and no takeover happened.
const arbiterUser = "drbench"

// needed are the services a failover needs: detection, arbitration, action.
var needed = []string{"heartbeat", "arbiter", "orchestrator"}

func (d *drwatchTool) name() string { return report.Drwatch }

func (d *drwatchTool) settings(r *report.Report) {
	r.Setf(d.name(), "watchdog.heartbeat", "probe icmp, interval 1s, timeout 750ms, retries 3 → 4 × 750 ms = 3 s of silence (keepalived: 3.61 s)")
	r.Setf(d.name(), "watchdog.failureDetection", "3 arbiters (sshd), thresholds failover 0.5 / adjustManaged 0.5 / warning 0.7, sessionCommand ss, arbiterProbe icmp")
	r.Setf(d.name(), "arbiter sshd", "ClientAliveInterval 1 × ClientAliveCountMax 3 = a dead site's session listed for ≤ 3 s; login user %s (/bin/sh, no start-up files), not root", arbiterUser)
	r.Setf(d.name(), "failover", "automatic true, failback manual, blockWindow 0s (so 20 runs can alternate)")
	r.Setf(d.name(), "nats.embedded", "syncAlways true, leafnode b → a:7422 (no TLS inside the bench)")
	r.Setf(d.name(), "vip", "%s/24 on eth0, taken by the orchestrator over netlink with gratuitous ARP", dwVIP)
	r.Setf(d.name(), "service behind the VIP", "PostgreSQL 15, one server per site, asynchronous streaming (synchronous_commit on locally, wal_log_hints, data checksums, wal_keep_size 512MB, no slots); the harness makes the first primary (initdb) and standby (pg_basebackup) only")
	r.Setf(d.name(), "pgsql", "enabled, checkInterval 1s, dataDir/binDir/osUser set (dbmonitor returns a former primary to standby: pg_rewind, else pg_basebackup), peerNodes the other site; failover.maxLagBytes 1048576 (default; Patroni's maximum_lag_on_failover)")
	r.Setf(d.name(), "returning site", "its PostgreSQL restarted by the harness as it was on disk (a killed primary recovers and comes up primary); drwatch's orchestrator re-points it (DatabaseCommand repoint → dbmonitor pg_rewind) — the next run waits until it streams from the new primary")
	r.Setf(d.name(), "planned switchover", "`drwatch manualFailover -a` in the standby site once it streams from the primary; ends when the saga completes (fence peer → check position → promote → VIP)")
	if d.placedVIP {
		r.Setf(d.name(), "initial VIP", "added to site a by the harness once: the active site's orchestrator did not claim it within 10 s of start")
	} else {
		r.Setf(d.name(), "initial VIP", "claimed by site a's orchestrator at start")
	}
	r.Setf(d.name(), "built from", "%s", d.source)
	if len(d.standalone) > 0 {
		r.Setf(d.name(), "services run standalone", "%s (not yet composed by cmd/drwatch/internal/cli/services.go)", strings.Join(d.standalone, ", "))
	} else {
		r.Setf(d.name(), "services", "all in `drwatch run` (heartbeat, arbiter, orchestrator and the rest composed by cmd/drwatch)")
	}
}

func (d *drwatchTool) setup(ctx context.Context) error {
	d.procs = map[string][]*proc{}
	d.pg = pgPair{dir: d.dir}
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
	d.source = buildSource(ctx, d.repo)
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

// buildSource names the commit of repo and whether files outside bench/
// differ from it: the figures belong to that code.
func buildSource(ctx context.Context, repo string) string {
	rev, err := output(ctx, "git", "-C", repo, "log", "-1", "--format=%h %cI %s")
	if err != nil {
		return "unknown (" + repo + " is not a git checkout)"
	}
	src := "commit " + strings.TrimSpace(rev)
	if changed, _ := output(ctx, "git", "-C", repo, "status", "--porcelain", "--", ".", ":(exclude)bench"); strings.TrimSpace(changed) != "" {
		src += ", with uncommitted changes outside bench/"
	}
	return src
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
	if err := ensureArbiterUser(ctx); err != nil {
		return err
	}
	// sshd reads the keys as the user logging in: outside the private
	// key directory, readable.
	authKeys := filepath.Join(d.dir, "ssh-authorized_keys")
	if err := writeFile(authKeys, auth.String(), 0o644); err != nil {
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
PermitRootLogin no
AllowUsers %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
ClientAliveInterval 1
ClientAliveCountMax 3
MaxStartups 100:30:200
`, a.addr, hk, filepath.Join(keys, a.name+".pid"), authKeys, arbiterUser)
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

// ensureArbiterUser creates the arbiters' login user once.
func ensureArbiterUser(ctx context.Context) error {
	if err := run(ctx, "id", "-u", arbiterUser); err == nil {
		return nil
	}
	// Password "*": no password, but not locked ("!"), which sshd
	// refuses without PAM even for keys.
	return run(ctx, "useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh",
		"--password", "*", "--comment", "drbench arbiter logins", arbiterUser)
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
		fmt.Fprintf(&arb, "      - {host: %s, username: %s, privateKey: %s, knownHosts: %s}\n", a.addr, arbiterUser,
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
    keysDir: %[14]s
    leafnode:
      key: %[15]s
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
pgsql:
  enabled: true
  peerNodes: [%[4]s]
  dsn: postgres://postgres:postgres@%[5]s:5432/postgres?sslmode=disable
  replicationUser: %[10]s
  replicationPassword: %[11]s
  checkInterval: 1s
  dataDir: %[12]s
  binDir: %[13]s
  osUser: postgres
http:
  listen: %[5]s:8480
`, s.name, peer.name, role, peer.addr, s.addr, filepath.Join(d.dir, "dw-"+s.name, "nats"), leaf, dwVIP, arb.String(),
		pgReplUser, pgReplPass, d.pg.data(s), pgBin, d.keys(s), filepath.Join(d.dir, "leaf.nk"))
}

// keys is site s's NATS keys directory, made by its drwatch on the first
// start; the pair's leafnode key beside the sites' folders is made by
// site a, which starts first, and read by site b.
func (d *drwatchTool) keys(s node) string { return filepath.Join(d.dir, "dw-"+s.name, "keys") }

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
	if err := d.startPostgres(ctx, s, first); err != nil {
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
	if err := add(start(d.dir, s, "", "natswatch-"+s.name, nil, d.self, "natswatch", "-url", url, "-key", filepath.Join(d.keys(s), "cli.nk"))); err != nil {
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

// startPostgres creates the pair at the very beginning (a primary, b its
// standby) and otherwise starts the site's server as it was left.
func (d *drwatchTool) startPostgres(ctx context.Context, s node, first bool) error {
	switch {
	case !first:
		return d.pg.start(ctx, s)
	case s == siteA:
		return d.pg.initPrimary(ctx, s)
	default:
		if err := d.pg.cloneStandby(ctx, s, siteA); err != nil {
			return err
		}
		return d.pg.waitStreaming(ctx, siteA, s, time.Minute)
	}
}

func (d *drwatchTool) holdsVIP(ctx context.Context, s node) bool {
	out, _ := output(ctx, "ip", "-n", s.ns(), "-4", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+dwVIP+"/")
}

func (d *drwatchTool) events(s node) stateLog {
	return stateLog{filepath.Join(d.dir, "natswatch-"+s.name+".log")}
}

func (d *drwatchTool) vip() string { return dwVIP }

func (d *drwatchTool) writer() (string, string) {
	return "pg", fmt.Sprintf("postgres://postgres:postgres@%s:5432/postgres?sslmode=disable&connect_timeout=1", dwVIP)
}

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

// ready: the returning site's orchestrator ended its restart hold
// (RoleConfirmed: it learned the active's role and stood down) and its
// PostgreSQL, returned to standby by drwatch, streams from the active's.
// (The heartbeat's ConfigChecked, used before, is published before the
// site's event watcher subscribes, so the wait always ran to -run-limit.)
func (d *drwatchTool) ready(ctx context.Context, active node, since time.Time) bool {
	other := site(peerOf(active.name))
	confirmed := len(d.events(other).after(since, func(x string) bool {
		return x == "drwatch."+other.name+".evt.orchestrator.RoleConfirmed"
	})) > 0
	return confirmed && d.pg.streaming(ctx, active, other)
}

func (d *drwatchTool) hasData() bool { return true }

// switchover is the operator's planned switchover: `drwatch manualFailover
// -a` in the site to promote, once its server streams from the primary (the
// previous switchover's former primary is rewound by drwatch first).
func (d *drwatchTool) switchover(ctx context.Context, to node) error {
	from := site(peerOf(to.name))
	if err := d.pg.waitStreaming(ctx, from, to, time.Minute); err != nil {
		return fmt.Errorf("before the switchover: %w", err)
	}
	cfg := filepath.Join(d.dir, "dw-"+to.name+".yaml")
	c := commandIn(ctx, "/", "ip", "netns", "exec", to.ns(), d.bins["drwatch"], "manualFailover", "-a", "-config", cfg,
		"--timeout", "1m", "--reason", "drbench planned switchover")
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("drwatch manualFailover -a in site %s: %w: %s", to.name, err, lastLines(string(out), 3))
	}
	return nil
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
