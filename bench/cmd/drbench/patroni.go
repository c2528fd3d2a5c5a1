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

// patroni runs a 3-node etcd in the arbiter namespaces and one Patroni +
// PostgreSQL per site; the VIP follows the leader through Patroni's
// callbacks (its usual deployment without vip-manager or HAProxy).
type patroni struct {
	dir, self string
	etcd      []*proc
	procs     map[string]*proc
}

const pgBin = "/usr/lib/postgresql/15/bin"

func (p *patroni) name() string { return "patroni" }

func (p *patroni) settings(r *report.Report) {
	r.Setf(p.name(), "ttl / loop_wait / retry_timeout", "20s / 1s / 3s (ttl 20 s is Patroni's minimum: a dead leader's key lives that long)")
	r.Setf(p.name(), "maximum_lag_on_failover", "1048576 bytes (drwatch failover.maxLagBytes default)")
	r.Setf(p.name(), "replication", "asynchronous streaming (synchronous_mode off, as drwatch's PostgreSQL pair), use_pg_rewind on; a killed site returns with its data directory wiped (rebuilt by pg_basebackup)")
	r.Setf(p.name(), "DCS", "etcd 3 nodes in the arbiter namespaces, heartbeat-interval 100ms, election-timeout 1000ms")
	r.Setf(p.name(), "VIP", "%s/24 added by the on_role_change/on_start callback (netlink address add + arping -U)", pgVIP)
}

func (p *patroni) setup(ctx context.Context) error {
	p.procs = map[string]*proc{}
	// The callback runs as postgres: give its own copies of ip and arping
	// the capabilities to move the VIP.
	bin := filepath.Join(p.dir, "pgbin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	arping, err := osexec.LookPath("arping")
	if err != nil {
		return err
	}
	// ip drops file capabilities when run by a non-root user, so the VIP
	// is moved by this binary's own "vip" helper (netlink).
	for name, b := range map[string]string{"drbench": p.self, "arping": arping} {
		dst := filepath.Join(bin, name)
		if err := run(ctx, "cp", b, dst); err != nil {
			return err
		}
	}
	cb := fmt.Sprintf(`#!/bin/sh
# patroni callback: $1 action, $2 role, $3 scope
echo "$(date +%%s%%N) $1 $2" >> %[1]s/patroni-$(cat %[1]s/pgsite-$PGSITE).state
case "$2" in
master|primary) %[2]s/drbench vip add %[3]s/24 eth0; %[2]s/arping -q -U -c 1 -I eth0 %[3]s >/dev/null 2>&1 & ;;
*) %[2]s/drbench vip del %[3]s/24 eth0 ;;
esac
exit 0
`, p.dir, bin, pgVIP)
	if err := writeFile(filepath.Join(p.dir, "patroni-cb.sh"), cb, 0o755); err != nil {
		return err
	}
	var cluster []string
	for _, a := range arbs {
		cluster = append(cluster, fmt.Sprintf("%s=http://%s:2380", a.name, a.addr))
	}
	for _, a := range arbs {
		e, err := start(p.dir, a, "", "etcd-"+a.name, nil, "etcd", "--name", a.name, "--data-dir", filepath.Join(p.dir, "etcd-"+a.name),
			"--listen-client-urls", "http://"+a.addr+":2379", "--advertise-client-urls", "http://"+a.addr+":2379",
			"--listen-peer-urls", "http://"+a.addr+":2380", "--initial-advertise-peer-urls", "http://"+a.addr+":2380",
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--heartbeat-interval", "100", "--election-timeout", "1000", "--enable-v2=true")
		if err != nil {
			return err
		}
		p.etcd = append(p.etcd, e)
	}
	for _, a := range arbs {
		if err := waitTCP(ctx, client, a.addr+":2379", 30*time.Second); err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
	}
	return nil
}

func (p *patroni) config(s node) string {
	var hosts []string
	for _, a := range arbs {
		hosts = append(hosts, a.addr+":2379")
	}
	return fmt.Sprintf(`scope: drbench
name: pg-%[1]s
restapi:
  listen: %[2]s:8008
  connect_address: %[2]s:8008
etcd3:
  hosts: %[3]s
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_log_hints: "on"
        synchronous_commit: "on"
  initdb: [{encoding: UTF8}, data-checksums]
  pg_hba:
    - local all all trust
    - host replication replicator 10.77.0.0/24 trust
    - host all all 10.77.0.0/24 trust
postgresql:
  listen: 0.0.0.0:5432
  connect_address: %[2]s:5432
  data_dir: %[4]s
  bin_dir: %[5]s
  pgpass: %[6]s/pgpass-%[1]s
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  authentication:
    replication: {username: replicator, password: repl}
    superuser: {username: postgres, password: postgres}
    rewind: {username: postgres, password: postgres}
  parameters:
    unix_socket_directories: %[6]s/sock-%[1]s
  callbacks:
    on_start: %[6]s/patroni-cb.sh
    on_role_change: %[6]s/patroni-cb.sh
`, s.name, s.addr, strings.Join(hosts, ","), filepath.Join(p.dir, "pg-"+s.name), pgBin, p.dir)
}

func (p *patroni) startSite(ctx context.Context, s node, first bool) error {
	cfg := filepath.Join(p.dir, "patroni-"+s.name+".yaml")
	if err := writeFile(cfg, p.config(s), 0o644); err != nil {
		return err
	}
	if !first {
		// A SIGKILLed primary that rejoins stays in crash recovery and
		// rewind for minutes on this box; the returning site is rebuilt
		// from the leader (pg_basebackup by Patroni) so each run starts
		// from a whole pair. This does not touch the failover measured.
		if err := os.RemoveAll(filepath.Join(p.dir, "pg-"+s.name)); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(p.dir, "pgsite-"+s.name), s.name, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(p.dir, "sock-"+s.name), 0o755); err != nil {
		return err
	}
	if err := run(ctx, "chown", "-R", "postgres:postgres", p.dir); err != nil {
		return err
	}
	// After the chown, which clears file capabilities.
	for _, b := range []string{"drbench", "arping"} {
		if err := run(ctx, "setcap", "cap_net_admin,cap_net_raw+ep", filepath.Join(p.dir, "pgbin", b)); err != nil {
			return err
		}
	}
	pr, err := start(p.dir, s, "postgres", "patroni-"+s.name, []string{"PGSITE=" + s.name, "HOME=" + p.dir}, "patroni", cfg)
	if err != nil {
		return err
	}
	p.procs[s.name] = pr
	if first && s == siteA {
		if err := p.waitRole(ctx, s, "primary", 2*time.Minute); err != nil {
			return err
		}
		return run(ctx, "ip", "netns", "exec", client.ns(), "psql", "-h", s.addr, "-U", "postgres", "-d", "postgres", "-qc", "CREATE TABLE IF NOT EXISTS bench(id bigint PRIMARY KEY)")
	}
	if first {
		return p.waitRole(ctx, s, "replica", 3*time.Minute)
	}
	return nil
}

// waitRole polls Patroni's REST API (/primary or /replica answer 200).
func (p *patroni) waitRole(ctx context.Context, s node, role string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if p.is(ctx, s, role) {
			return nil
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("patroni pg-%s not %s after %s (see %s)", s.name, role, limit, filepath.Join(p.dir, "patroni-"+s.name+".log"))
}

func (p *patroni) is(ctx context.Context, s node, role string) bool {
	out, _ := output(ctx, "ip", "netns", "exec", client.ns(), "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://"+s.addr+":8008/"+role)
	return strings.TrimSpace(out) == "200"
}

func (p *patroni) writer() (string, string) {
	return "pg", fmt.Sprintf("postgres://postgres:postgres@%s:5432/postgres?sslmode=disable&connect_timeout=1", pgVIP)
}

func (p *patroni) vip() string { return pgVIP }

func isPrimary(s string) bool { return s == "on_role_change master" || s == "on_role_change primary" }

func (p *patroni) detected(standby node, t0 time.Time) (time.Time, bool) {
	ts := stateLog{filepath.Join(p.dir, "patroni-"+standby.name+".state")}.after(t0, isPrimary)
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

func (p *patroni) takeovers(s node, t0 time.Time) int {
	return len(stateLog{filepath.Join(p.dir, "patroni-"+s.name+".state")}.after(t0, isPrimary))
}

func (p *patroni) ready(ctx context.Context, active node, _ time.Time) bool {
	return p.is(ctx, site(peerOf(active.name)), "replica")
}

func (p *patroni) hasData() bool { return true }

func (p *patroni) switchover(ctx context.Context, to node) error {
	cfg := filepath.Join(p.dir, "patroni-"+to.name+".yaml")
	out, err := execAs(ctx, to, "postgres", "patronictl", "-c", cfg, "switchover", "--candidate", "pg-"+to.name, "--force")
	if err != nil {
		return fmt.Errorf("patronictl switchover: %w: %s", err, lastLines(out, 3))
	}
	return p.waitRole(ctx, to, "primary", time.Minute)
}

// execAs runs a command in n as user and returns its output.
func execAs(ctx context.Context, n node, user string, argv ...string) (string, error) {
	args := []string{"netns", "exec", n.ns(), "setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"}
	c := commandIn(ctx, "/", append([]string{"ip"}, append(args, argv...)...)...)
	c.Env = append(os.Environ(), "HOME=/tmp")
	b, err := c.CombinedOutput()
	return string(b), err
}

func (p *patroni) teardown() {
	for _, pr := range p.procs {
		pr.stop()
	}
	for _, e := range p.etcd {
		e.stop()
	}
}
