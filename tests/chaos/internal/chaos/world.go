package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// arbiterUser is the login the sites use on the arbiters: a system user
// with /bin/sh and no start-up files (drbench found root's ~/.bashrc slow
// enough to miss probe timeouts).
const arbiterUser = "drchaos"

// Test-only credentials; the servers listen inside the namespaces only.
// appUser is the client's: no SUPER, so read_only refuses its writes.
const (
	dbAdmin, dbAdminPass = "drwatch", "drwatch"
	replUser, replPass   = "repl", "repl"
	appUser, appPass     = "app", "app"
)

// world is one run's pair: two drwatch sites with a MariaDB each, three
// sshd arbiters, and the processes the faults act on.
type world struct {
	dir     string
	bin     string // the built drwatch binary
	drwatch map[string]*proc
	db      map[string]*proc
	sshd    []*proc
}

func (w *world) siteDir(s node) string { return filepath.Join(w.dir, "site-"+s.name) }
func (w *world) cfgPath(s node) string { return filepath.Join(w.siteDir(s), "site.yaml") }
func (w *world) storeDir(s node) string {
	return filepath.Join(w.siteDir(s), "nats")
}

func (w *world) startArbiters(ctx context.Context) error {
	keys := filepath.Join(w.dir, "ssh")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	var auth, known strings.Builder
	for _, s := range sites {
		k := filepath.Join(keys, "site_"+s.name)
		if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drwatch-"+s.name, "-f", k); err != nil {
			return err
		}
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			return err
		}
		auth.Write(pub)
	}
	if err := run(ctx, "id", "-u", arbiterUser); err != nil {
		if err := run(ctx, "useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh",
			"--password", "*", "--comment", "drchaos arbiter logins", arbiterUser); err != nil {
			return err
		}
	}
	authKeys := filepath.Join(w.dir, "ssh-authorized_keys")
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
		if err := writeFile(filepath.Join(keys, "sshd_"+a.name), cfg, 0o600); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(keys, "known_hosts"), known.String(), 0o644); err != nil {
		return err
	}
	w.sshd = make([]*proc, len(arbs))
	for i := range arbs {
		if err := w.startSSHD(i); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) startSSHD(i int) error {
	a := arbs[i]
	p, err := start(w.dir, a, "sshd-"+a.name, "/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(w.dir, "ssh", "sshd_"+a.name))
	w.sshd[i] = p
	return err
}

// MariaDB: one server per site on the site's address, GTID replication
// b ← a. read_only is on in both configuration files, so a server that
// restarts comes back refusing writes until drwatch promotes it; the
// harness turns it off on site a once at the start.

func (w *world) myDir(s node) string  { return filepath.Join(w.siteDir(s), "mysql") }
func (w *world) mySock(s node) string { return filepath.Join(w.myDir(s), "mysqld.sock") }

func (w *world) my(ctx context.Context, s node, sql string) (string, error) {
	c := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-uroot", "--socket="+w.mySock(s), "-N", "-e", sql)
	out, err := c.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadb site %s: %q: %w: %s", s.name, sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (w *world) initDB(ctx context.Context, s node) error {
	d := w.myDir(s)
	if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
		return err
	}
	sid := 1
	if s == siteB {
		sid = 2
	}
	cnf := fmt.Sprintf(`[mariadbd]
datadir=%[1]s/data
socket=%[2]s
pid-file=%[1]s/mysqld.pid
log-error=%[1]s/error.log
bind-address=0.0.0.0
port=3306
server_id=%[3]d
log_bin=%[1]s/data/binlog
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
gtid_domain_id=0
slave_net_timeout=4
read_only=ON
skip-name-resolve
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
performance_schema=OFF
max_connections=300
`, d, w.mySock(s), sid)
	if err := writeFile(filepath.Join(d, "my.cnf"), cnf, 0o644); err != nil {
		return err
	}
	if err := run(ctx, "chown", "-R", "mysql:mysql", d); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mariadb-install-db", "--defaults-file="+filepath.Join(d, "my.cnf"), "--user=mysql",
		"--auth-root-authentication-method=socket", "--skip-test-db").CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db site %s: %w: %s", s.name, err, out)
	}
	return nil
}

func (w *world) startDB(ctx context.Context, s node) error {
	p, err := start(w.dir, s, "mariadb-"+s.name, "mariadbd", "--defaults-file="+filepath.Join(w.myDir(s), "my.cnf"), "--user=mysql")
	if err != nil {
		return err
	}
	w.db[s.name] = p
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := w.my(ctx, s, "SELECT 1"); err == nil {
			return nil
		}
		if p.exited() || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(w.myDir(s), "error.log"))
			return fmt.Errorf("mariadb site %s did not start: %s", s.name, lastLines(string(b), 5))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// setupDBs makes the pair: accounts on each server outside the binlog
// (so they are no GTIDs), the table on a, b replicating from a.
func (w *world) setupDBs(ctx context.Context) error {
	for _, s := range sites {
		if err := w.initDB(ctx, s); err != nil {
			return err
		}
		if err := w.startDB(ctx, s); err != nil {
			return err
		}
		if _, err := w.my(ctx, s, fmt.Sprintf(`SET SESSION sql_log_bin=0;
CREATE USER '%[1]s'@'%%' IDENTIFIED BY '%[2]s'; GRANT ALL PRIVILEGES ON *.* TO '%[1]s'@'%%' WITH GRANT OPTION;
CREATE USER '%[3]s'@'%%' IDENTIFIED BY '%[4]s'; GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%[3]s'@'%%';
CREATE USER '%[5]s'@'%%' IDENTIFIED BY '%[6]s'; GRANT SELECT, INSERT ON chaos.* TO '%[5]s'@'%%';`,
			dbAdmin, dbAdminPass, replUser, replPass, appUser, appPass)); err != nil {
			return err
		}
	}
	if _, err := w.my(ctx, siteA, `SET GLOBAL read_only=OFF;
CREATE DATABASE chaos; CREATE TABLE chaos.appends (id BIGINT PRIMARY KEY, via VARCHAR(8) NOT NULL, at BIGINT NOT NULL)`); err != nil {
		return err
	}
	if _, err := w.my(ctx, siteB, fmt.Sprintf(`SET GLOBAL gtid_slave_pos='';
CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;
START SLAVE;`, siteA.addr, replUser, replPass)); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, err := w.my(ctx, siteB, "SELECT count(*) FROM information_schema.tables WHERE table_schema='chaos'"); err == nil && out == "1" {
			return nil
		}
		if time.Now().After(deadline) {
			st, _ := w.my(ctx, siteB, "SHOW SLAVE STATUS\\G")
			return fmt.Errorf("site b does not replicate from a: %s", st)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func (w *world) siteConfig(s node) string {
	peer := peerOf(s)
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
			filepath.Join(w.dir, "ssh", "site_"+s.name), filepath.Join(w.dir, "ssh", "known_hosts"))
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
      key: %[14]s
%[7]s
vip:
  address: %[8]s/24
  interface: eth0
core:
  peerVip: %[4]s
watchdog:
  heartbeat:
    probe: tcp
    port: 8480
    interval: 1s
    timeout: 750ms
    retries: 3
  failureDetection:
    sessionCommand: "ss -tnH state established '( sport = :22 )'"
    arbiterProbe: icmp
    arbiterSessionTimeout: 3s
    arbiters:
%[9]sfailover:
  automatic: true
  failback: manual
  blockWindow: 0s
mysql:
  enabled: true
  peerNodes: [%[4]s]
  dsn: %[10]s:%[11]s@tcp(%[5]s:3306)/
  replicationUser: %[12]s
  replicationPassword: %[13]s
  checkInterval: 1s
http:
  listen: %[5]s:8480
`, s.name, peer.name, role, peer.addr, s.addr, w.storeDir(s), leaf, vipAddr, arb.String(),
		dbAdmin, dbAdminPass, replUser, replPass, w.leafKey())
}

// leafKey is the pair's leafnode key, outside both stores (a wiped store
// keeps the pair linked), written by writeConfigs.
func (w *world) leafKey() string { return filepath.Join(w.dir, "leaf.nk") }

func (w *world) writeConfigs() error {
	if _, err := os.Stat(w.leafKey()); errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return fmt.Errorf("leafnode key: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return fmt.Errorf("leafnode key: %w", err)
		}
		if err := writeFile(w.leafKey(), string(seed)+"\n", 0o600); err != nil {
			return err
		}
	}
	for _, s := range sites {
		if err := writeFile(w.cfgPath(s), w.siteConfig(s), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) startDrwatch(ctx context.Context, s node) error {
	p, err := start(w.dir, s, "drwatch-"+s.name, w.bin, "run", "-config", w.cfgPath(s))
	if err != nil {
		return err
	}
	w.drwatch[s.name] = p
	return nil
}

// drw runs a drwatch command in the site's namespace.
func (w *world) drw(ctx context.Context, s node, args ...string) (string, error) {
	argv := append([]string{"netns", "exec", s.ns(), w.bin}, args...)
	argv = append(argv, "-config", w.cfgPath(s))
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("drwatch %s in site %s: %w: %s", strings.Join(args, " "), s.name, err, lastLines(string(out), 3))
	}
	return string(out), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
