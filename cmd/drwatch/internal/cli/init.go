package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
	"unsafe"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pki"
)

// pairSpec is what init needs to know about a pair.
type pairSpec struct {
	Dir                    string
	Active, Standby        string
	ActiveAddr, StandbyAdr string
	NATSPort, LeafPort     int
	HTTPPort               int
	Users                  replUsers
}

// replUsers are seed 000's replication and monitoring users.
type replUsers struct {
	MySQLRepUser, MySQLRepPass     string
	MySQLAdminUser, MySQLAdminPass string
	PgRepUser, PgRepPass           string
	PgAdminUser, PgAdminPass       string
}

// siteFiles is one site's view of the pair, for the config template.
type siteFiles struct {
	pairSpec
	Name, Peer, Role, Addr, PeerAddr string
	Listen                           bool
}

// PeerIP: site.peerAddresses takes addresses only, not names.
func (s siteFiles) PeerIP() bool { return net.ParseIP(s.PeerAddr) != nil }

// initCmd is seed 000's `jmp-dr init [-a|-s]`: it writes the site
// configurations of a pair, the pair's CA and the sites' certificates (for
// the leafnode link and database replication), the secrets, and the SQL
// that creates the replication users — and runs that SQL when DSNs are
// given.
func initCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", stderr)
	onlyA := fs.Bool("a", false, "write only the active site's files")
	onlyS := fs.Bool("s", false, "write only the standby site's files")
	var p pairSpec
	fs.StringVar(&p.Dir, "dir", "/etc/drwatch", "directory to write into")
	fs.StringVar(&p.Active, "active", "a", "name of the site that starts active")
	fs.StringVar(&p.Standby, "standby", "b", "name of the site that starts standby")
	fs.StringVar(&p.ActiveAddr, "active-addr", "", "address (IP or DNS) of the active site (its VIP)")
	fs.StringVar(&p.StandbyAdr, "standby-addr", "", "address (IP or DNS) of the standby site (its VIP)")
	fs.IntVar(&p.NATSPort, "nats-port", 4222, "client port of each site's embedded NATS server")
	fs.IntVar(&p.LeafPort, "leaf-port", 7422, "leafnode port the active site listens on")
	fs.IntVar(&p.HTTPPort, "http-port", 8480, "port of each site's HTTP API")
	u := &p.Users
	fs.StringVar(&u.MySQLRepUser, "mysql-rep-user", "repUser", "MySQL replication user")
	fs.StringVar(&u.MySQLRepPass, "mysql-rep-pass", "repPass", "its password (seed default; change it)")
	fs.StringVar(&u.MySQLAdminUser, "mysql-admin-user", "repAdmin", "MySQL user that monitors replication and fails over")
	fs.StringVar(&u.MySQLAdminPass, "mysql-admin-pass", "repAdminPass", "its password")
	fs.StringVar(&u.PgRepUser, "pgsql-rep-user", "replication", "PostgreSQL replication user")
	fs.StringVar(&u.PgRepPass, "pgsql-rep-pass", "replication", "its password")
	fs.StringVar(&u.PgAdminUser, "pgsql-admin-user", "postgres", "PostgreSQL user that monitors replication and fails over")
	fs.StringVar(&u.PgAdminPass, "pgsql-admin-pass", "postgres", "its password")
	mysqlDSN := fs.String("mysql-dsn", "", "create the MySQL users now through this admin DSN (user:pass@tcp(host:3306)/)")
	pgsqlDSN := fs.String("pgsql-dsn", "", "create the PostgreSQL users now through this admin DSN (postgres://...)")
	force := fs.Bool("force", false, "replace existing files (a new CA breaks a running link)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *onlyA && *onlyS {
		return fmt.Errorf("%w: -a and -s exclude each other", errUsage)
	}
	in := bufio.NewReader(os.Stdin)
	for _, q := range []struct {
		v    *string
		flag string
	}{{&p.ActiveAddr, "active-addr"}, {&p.StandbyAdr, "standby-addr"}} {
		if *q.v == "" {
			v, err := prompt(in, stdout, q.flag)
			if err != nil {
				return err
			}
			*q.v = v
		}
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	tlsDir := filepath.Join(p.Dir, "tls")
	now := time.Now()
	ca, err := pki.LoadCA(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "ca-key.pem"))
	if err != nil || *force {
		if ca, err = pki.NewCA("drwatch "+p.Active+"/"+p.Standby+" CA", now, 10*365*24*time.Hour); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tlsDir, "ca.pem"), ca.CertPEM, *force); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tlsDir, "ca-key.pem"), ca.KeyPEM, *force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (copy ca.pem and ca-key.pem to the other site before running init there with -a/-s)\n", filepath.Join(tlsDir, "ca.pem"))
	} else {
		fmt.Fprintf(stdout, "using the existing CA %s\n", filepath.Join(tlsDir, "ca.pem"))
	}
	// The pair's leafnode key, like the CA, is one file for both sites;
	// each site's service keys are its own.
	if _, err := os.Stat(filepath.Join(p.Dir, "nats", bus.LeafKeyFile)); err != nil || *force {
		_ = os.Remove(filepath.Join(p.Dir, "nats", bus.LeafKeyFile))
		if err := bus.WriteSeed(filepath.Join(p.Dir, "nats", bus.LeafKeyFile)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (copy it to the other site with the CA)\n", filepath.Join(p.Dir, "nats", bus.LeafKeyFile))
	}
	secrets := map[string]string{
		"mysql-rep-pass": u.MySQLRepPass, "mysql-admin-pass": u.MySQLAdminPass,
		"pgsql-rep-pass": u.PgRepPass, "pgsql-admin-pass": u.PgAdminPass,
	}
	for name, v := range secrets {
		if err := writeFile(filepath.Join(p.Dir, "secrets", name), []byte(v+"\n"), true); err != nil {
			return err
		}
	}

	sites := []siteFiles{
		{pairSpec: p, Name: p.Active, Peer: p.Standby, Role: "active", Addr: p.ActiveAddr, PeerAddr: p.StandbyAdr, Listen: true},
		{pairSpec: p, Name: p.Standby, Peer: p.Active, Role: "standby", Addr: p.StandbyAdr, PeerAddr: p.ActiveAddr},
	}
	switch {
	case *onlyA:
		sites = sites[:1]
	case *onlyS:
		sites = sites[1:]
	}
	for _, s := range sites {
		leaf, err := ca.Issue("drwatch site "+s.Name, []string{s.Addr, "localhost", "127.0.0.1"}, now, 5*365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tlsDir, s.Name+".pem"), leaf.CertPEM, *force); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tlsDir, s.Name+"-key.pem"), leaf.KeyPEM, *force); err != nil {
			return err
		}
		if _, err := bus.EnsureKeys(filepath.Join(p.Dir, "nats", s.Name), bus.Identities); err != nil {
			return err
		}
		token := make([]byte, 24)
		if _, err := rand.Read(token); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(p.Dir, "secrets", s.Name+"-http-token"), []byte(base64.RawURLEncoding.EncodeToString(token)+"\n"), *force); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := siteTemplate.Execute(&buf, s); err != nil {
			return err
		}
		cfgPath := filepath.Join(p.Dir, "site-"+s.Name+".yaml")
		// The file references its secrets; check it parses as drwatch will.
		if _, err := config.Parse(bytes.NewReader(buf.Bytes())); err != nil {
			return fmt.Errorf("generated %s does not validate (a drwatch bug): %w", cfgPath, err)
		}
		if err := writeFile(cfgPath, buf.Bytes(), *force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%s) with certificate %s\n", cfgPath, s.Role, filepath.Join(tlsDir, s.Name+".pem"))
	}

	mysqlSQL, pgSQL := p.mysqlUsers(), p.pgUsers()
	if err := writeFile(filepath.Join(p.Dir, "sql", "mysql-users.sql"), []byte(mysqlSQL), true); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(p.Dir, "sql", "pgsql-users.sql"), []byte(pgSQL), true); err != nil {
		return err
	}
	if *mysqlDSN == "" && *pgsqlDSN == "" {
		fmt.Fprintf(stdout, "\nCreate the replication users on both sites' databases (passwords are in the files, not shown):\n\n")
		fmt.Fprintf(stdout, "  mysql -u root -p < %s\n  psql -U postgres -f %s\n\n", filepath.Join(p.Dir, "sql", "mysql-users.sql"), filepath.Join(p.Dir, "sql", "pgsql-users.sql"))
		fmt.Fprint(stdout, maskSecrets(mysqlSQL+"\n"+pgSQL, secrets))
		return nil
	}
	return createUsers(ctx, *mysqlDSN, *pgsqlDSN, mysqlSQL, pgSQL, stdout)
}

// writeFile writes data with mode 0600, refusing to replace an existing
// file unless overwrite: a pair's CA must not change under a running
// link by accident.
func writeFile(path string, data []byte, overwrite bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if !overwrite {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: pass --force to replace it", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (p *pairSpec) validate() error {
	for _, n := range []struct{ flag, v string }{{"active", p.Active}, {"standby", p.Standby}} {
		if !events.ValidSiteName(n.v) {
			return fmt.Errorf("--%s %q: a site name is lower-case letters, digits and '-'", n.flag, n.v)
		}
	}
	if p.Active == p.Standby {
		return fmt.Errorf("--active and --standby are both %q: a pair needs two sites", p.Active)
	}
	for _, a := range []struct{ flag, v string }{{"active-addr", p.ActiveAddr}, {"standby-addr", p.StandbyAdr}} {
		if a.v == "" || strings.ContainsAny(a.v, " /:") {
			return fmt.Errorf("--%s %q: want an IP address or a host name", a.flag, a.v)
		}
	}
	for _, port := range []struct {
		flag string
		v    int
	}{{"nats-port", p.NATSPort}, {"leaf-port", p.LeafPort}, {"http-port", p.HTTPPort}} {
		if port.v < 1 || port.v > 65535 {
			return fmt.Errorf("--%s %d: want 1-65535", port.flag, port.v)
		}
	}
	for _, s := range []struct{ flag, v string }{
		{"mysql-rep-user", p.Users.MySQLRepUser}, {"mysql-admin-user", p.Users.MySQLAdminUser},
		{"pgsql-rep-user", p.Users.PgRepUser}, {"pgsql-admin-user", p.Users.PgAdminUser},
		{"mysql-rep-pass", p.Users.MySQLRepPass}, {"mysql-admin-pass", p.Users.MySQLAdminPass},
		{"pgsql-rep-pass", p.Users.PgRepPass}, {"pgsql-admin-pass", p.Users.PgAdminPass},
	} {
		if s.v == "" || strings.ContainsAny(s.v, "'\"\\\n;") {
			return fmt.Errorf("--%s: must be set and hold no quote, backslash, semicolon or newline", s.flag)
		}
	}
	return nil
}

func prompt(in *bufio.Reader, out io.Writer, flag string) (string, error) {
	if !isTerminal(os.Stdin) {
		return "", fmt.Errorf("%w: --%s is required (no terminal to ask on)", errUsage, flag)
	}
	fmt.Fprintf(out, "%s: ", flag)
	line, err := in.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read --%s: %w", flag, err)
	}
	return strings.TrimSpace(line), nil
}

// isTerminal: only a terminal is asked; /dev/null or a pipe means a
// script, which must pass flags.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// mysqlUsers is seed 000's MySQL users: one that replicates, one that
// monitors and fails over. Both must use TLS.
func (p *pairSpec) mysqlUsers() string {
	u := p.Users
	return fmt.Sprintf(`-- drwatch init: MySQL/MariaDB users of pair %[1]s/%[2]s; run on both sites.
CREATE USER IF NOT EXISTS '%[3]s'@'%%' IDENTIFIED BY '%[4]s' REQUIRE SSL;
GRANT REPLICATION SLAVE ON *.* TO '%[3]s'@'%%';
CREATE USER IF NOT EXISTS '%[5]s'@'%%' IDENTIFIED BY '%[6]s' REQUIRE SSL;
GRANT REPLICATION CLIENT, REPLICATION SLAVE, RELOAD, PROCESS, SUPER ON *.* TO '%[5]s'@'%%';
FLUSH PRIVILEGES;
`, p.Active, p.Standby, u.MySQLRepUser, u.MySQLRepPass, u.MySQLAdminUser, u.MySQLAdminPass)
}

// pgUsers is seed 000's PostgreSQL users, and the pg_hba lines that admit
// the replication user over TLS only.
func (p *pairSpec) pgUsers() string {
	u := p.Users
	return fmt.Sprintf(`-- drwatch init: PostgreSQL users of pair %[1]s/%[2]s; run on both sites.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[3]s') THEN
    CREATE ROLE "%[3]s" WITH REPLICATION LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[5]s') THEN
    CREATE ROLE "%[5]s" WITH SUPERUSER LOGIN;
  END IF;
END $$;
ALTER ROLE "%[3]s" WITH REPLICATION LOGIN PASSWORD '%[4]s';
ALTER ROLE "%[5]s" WITH LOGIN PASSWORD '%[6]s';
-- pg_hba.conf on both sites (replication over TLS only):
--   hostssl replication %[3]s %[7]s scram-sha-256
--   hostssl replication %[3]s %[8]s scram-sha-256
`, p.Active, p.Standby, u.PgRepUser, u.PgRepPass, u.PgAdminUser, u.PgAdminPass, hbaAddr(p.ActiveAddr), hbaAddr(p.StandbyAdr))
}

// hbaAddr is an address as pg_hba.conf wants it: a host name, or an IP
// with its full-length mask.
func hbaAddr(a string) string {
	ip := net.ParseIP(a)
	switch {
	case ip == nil:
		return a
	case ip.To4() != nil:
		return a + "/32"
	}
	return a + "/128"
}

// maskSecrets hides the passwords in SQL shown on a terminal.
func maskSecrets(s string, secrets map[string]string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, "'"+v+"'", "'********'")
	}
	return s
}

var siteTemplate = template.Must(template.New("site").Parse(`# Site {{.Name}} of pair {{.Active}}/{{.Standby}}, written by drwatch init.
# Peer site {{.Peer}} is at {{.PeerAddr}}. Secrets are read from files (file:).
site:
  name: {{.Name}}
  peer: {{.Peer}}
  role: {{.Role}}
{{- if .PeerIP}}
  peerAddresses: [{{.PeerAddr}}]
{{- else}}
  # peerAddresses: [the IP addresses {{.Peer}} connects to arbiters from]
{{- end}}
nats:
  embedded:
    # Only this site's processes connect, each with its key in keysDir.
    host: 127.0.0.1
    port: {{.NATSPort}}
    storeDir: /var/lib/drwatch/nats
    syncAlways: true
    keysDir: {{.Dir}}/nats/{{.Name}}
    leafnode:
      key: {{.Dir}}/nats/leaf.nk
{{- if .Listen}}
      listen: 0.0.0.0:{{.LeafPort}}
{{- else}}
      remotes: ["nats-leaf://{{.PeerAddr}}:{{.LeafPort}}"]
{{- end}}
      tls:
        cert: {{.Dir}}/tls/{{.Name}}.pem
        key: {{.Dir}}/tls/{{.Name}}-key.pem
        ca: {{.Dir}}/tls/ca.pem
core:
  peerVip: {{.PeerAddr}}
  peerLoadBalancerNodes: [{{.PeerAddr}}]
mysql:
  peerVip: {{.PeerAddr}}
  peerNodes: [{{.PeerAddr}}]
  replicationUser: {{.Users.MySQLRepUser}}
  replicationPassword: file:{{.Dir}}/secrets/mysql-rep-pass
  tls:
    cert: {{.Dir}}/tls/{{.Name}}.pem
    key: {{.Dir}}/tls/{{.Name}}-key.pem
    ca: {{.Dir}}/tls/ca.pem
pgsql:
  peerFmpmVip: {{.PeerAddr}}
  peerNodes: [{{.PeerAddr}}]
  replicationUser: {{.Users.PgRepUser}}
  replicationPassword: file:{{.Dir}}/secrets/pgsql-rep-pass
  tls:
    cert: {{.Dir}}/tls/{{.Name}}.pem
    key: {{.Dir}}/tls/{{.Name}}-key.pem
    ca: {{.Dir}}/tls/ca.pem
http:
  listen: 0.0.0.0:{{.HTTPPort}}
  token: file:{{.Dir}}/secrets/{{.Name}}-http-token
`))
