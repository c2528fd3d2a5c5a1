package mysqlrepl

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ErrBadDSN marks a DSN that does not parse.
var ErrBadDSN = errors.New("bad mysql dsn")

// Client talks to one MariaDB/MySQL server.
type Client struct {
	db  *sql.DB
	cfg *mysql.Config
}

// Open parses dsn (go-sql-driver form) and prepares a pool; it does not
// connect yet, so a server that is down is a check failure, not a start
// failure.
func Open(dsn string) (*Client, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (want user:password@tcp(host:port)/)", ErrBadDSN, err)
	}
	cfg.Timeout = 3 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.MultiStatements = false
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	return &Client{db: db, cfg: cfg}, nil
}

// Close releases the pool.
func (c *Client) Close() error { return c.db.Close() }

// Addr is host:port of the server.
func (c *Client) Addr() string { return c.cfg.Addr }

// WithAddr returns a client for another server with the same credentials,
// used to reach the primary a replica names.
func (c *Client) WithAddr(addr string) (*Client, error) {
	cfg := c.cfg.Clone()
	cfg.Addr = addr
	return Open(cfg.FormatDSN())
}

// DB exposes the pool to tests and to the position query of commands.
func (c *Client) DB() *sql.DB { return c.db }

// Read takes one reading of replication state.
func (c *Client) Read(ctx context.Context) (Server, error) {
	var s Server
	rows, err := queryMaps(ctx, c.db, "SHOW ALL SLAVES STATUS")
	if err != nil {
		// MySQL has no ALL SLAVES; one unnamed connection.
		rows, err = queryMaps(ctx, c.db, "SHOW SLAVE STATUS")
	}
	if err != nil {
		return s, fmt.Errorf("read replica status of %s: %w", c.cfg.Addr, err)
	}
	for _, row := range rows {
		r, err := ParseReplica(row)
		if err != nil {
			return s, fmt.Errorf("read replica status of %s: %w", c.cfg.Addr, err)
		}
		s.Replicas = append(s.Replicas, r)
	}
	var ro int
	err = c.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_state, @@gtid_binlog_pos, @@gtid_slave_pos, @@read_only").
		Scan(&s.BinlogState, &s.BinlogPos, &s.SlavePos, &ro)
	if err != nil {
		return s, fmt.Errorf("read gtid positions of %s: %w", c.cfg.Addr, err)
	}
	s.ReadOnly = ro != 0
	return s, nil
}

// BinlogState is the server's @@gtid_binlog_state.
func (c *Client) BinlogState(ctx context.Context) (string, error) {
	var st string
	if err := c.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_state").Scan(&st); err != nil {
		return "", fmt.Errorf("read gtid_binlog_state of %s: %w", c.cfg.Addr, err)
	}
	return st, nil
}

// Position is the GTID position for in-sync checks: everything the server
// has applied, whether written locally or replicated.
func (c *Client) Position(ctx context.Context) (string, error) {
	var p string
	if err := c.db.QueryRowContext(ctx, "SELECT @@gtid_current_pos").Scan(&p); err != nil {
		return "", fmt.Errorf("read gtid_current_pos of %s: %w", c.cfg.Addr, err)
	}
	return p, nil
}

// StartReplica restarts stopped replica threads.
func (c *Client) StartReplica(ctx context.Context) error {
	return c.exec(ctx, "START ALL SLAVES")
}

// StopReplica stops every replica connection.
func (c *Client) StopReplica(ctx context.Context) error {
	return c.exec(ctx, "STOP ALL SLAVES")
}

// PromoteOptions say how a promotion treats transactions the replica has
// received but not yet applied.
type PromoteOptions struct {
	// ApplyTimeout bounds the wait for the SQL thread to apply what the IO
	// thread received (ctx's deadline bounds it too).
	ApplyTimeout time.Duration
	// Force promotes even when the received transactions could not all be
	// applied; they are thrown away with the relay logs and named in
	// Promoted.Discarded.
	Force bool
}

// Promoted is what a promotion did.
type Promoted struct {
	// Position is gtid_current_pos once writable.
	Position string
	// Discarded names the received transactions a forced promotion threw
	// away ("" when none were).
	Discarded string
}

// ErrUnapplied marks a promotion refused because transactions the replica
// received were not applied (SQL thread too slow or stopped on an error).
var ErrUnapplied = errors.New("received transactions not applied")

// UnappliedError is the evidence of ErrUnapplied.
type UnappliedError struct {
	// Received is the merged Gtid_IO_Pos after the IO thread stopped;
	// Applied is gtid_slave_pos when the wait ended.
	Received, Applied string
	// Missing lists, per domain, the last received GTID not applied.
	Missing []string
	// Transactions is how many were received and not applied.
	Transactions int64
	// SQLError is the SQL thread's Last_SQL_Errno/Error when it stopped on
	// one; "" when it was merely slow.
	SQLError string
	Waited   time.Duration
}

func (e *UnappliedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d received transaction(s) not applied (received up to %s, applied up to %s; not applied: %s)",
		e.Transactions, e.Received, e.Applied, strings.Join(e.Missing, ", "))
	if e.SQLError != "" {
		fmt.Fprintf(&b, "; SQL thread stopped: %s", e.SQLError)
	} else {
		fmt.Fprintf(&b, "; SQL thread still applying after %s", e.Waited.Round(time.Millisecond))
	}
	return b.String()
}

func (e *UnappliedError) Unwrap() error { return ErrUnapplied }

// Promote makes the server a writable primary: no replica left, read_only
// off. RESET SLAVE ALL deletes the relay logs, so it first stops the IO
// thread and waits (MASTER_GTID_WAIT, at most o.ApplyTimeout) until the SQL
// thread has applied everything received: a transaction the old primary
// committed and shipped must not vanish in the promotion. If that cannot be
// done the promotion is refused with an *UnappliedError (the IO thread is
// restarted, the server stays a read-only replica), unless o.Force.
func (c *Client) Promote(ctx context.Context, o PromoteOptions) (Promoted, error) {
	var res Promoted
	s, err := c.Read(ctx)
	if err != nil {
		return res, err
	}
	if len(s.Replicas) > 0 {
		if err := c.drain(ctx, s, o.ApplyTimeout); err != nil {
			var u *UnappliedError
			if !errors.As(err, &u) || !o.Force {
				c.resumeIO(ctx, s)
				if u != nil {
					return res, fmt.Errorf("promote %s refused: %w; it stays a read-only replica; promote with force to discard them", c.cfg.Addr, err)
				}
				return res, err
			}
			res.Discarded = u.Error()
		}
	}
	for _, q := range []string{"STOP ALL SLAVES", "RESET SLAVE ALL", "SET GLOBAL read_only=OFF"} {
		if err := c.exec(ctx, q); err != nil {
			return res, err
		}
	}
	res.Position, err = c.Position(ctx)
	return res, err
}

// drain stops receiving and waits for the SQL thread to apply everything
// received. A SQL thread stopped without an error (an operator's STOP
// SLAVE SQL_THREAD) is started first, while the IO thread still runs:
// MariaDB deletes a GTID replica's relay logs when a thread is started
// with both stopped. One stopped on an error is not retried.
func (c *Client) drain(ctx context.Context, before Server, timeout time.Duration) error {
	start := time.Now()
	if sqlError(before.Replicas) == "" && sqlStopped(before.Replicas) {
		if !ioStopped(before.Replicas) {
			if err := c.exec(ctx, "START ALL SLAVES SQL_THREAD"); err != nil {
				return err
			}
		} else if u := unapplied(mergeIOPos(before.Replicas), before.SlavePos, "", 0); u.Transactions > 0 {
			u.SQLError = "Slave_SQL_Running=No and Slave_IO_Running=No with no error: the relay log cannot be applied, MariaDB discards a GTID replica's relay log when a thread is started with both stopped; START SLAVE if the primary is reachable"
			return u
		}
	}
	if err := c.exec(ctx, "STOP ALL SLAVES IO_THREAD"); err != nil {
		return err
	}
	s, err := c.Read(ctx)
	if err != nil {
		return err
	}
	received := mergeIOPos(s.Replicas)
	if received == "" {
		return nil // nothing ever received over GTID: nothing to lose
	}
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if e := sqlError(s.Replicas); e != "" {
			return unapplied(received, s.SlavePos, e, time.Since(start))
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return unapplied(received, s.SlavePos, "", time.Since(start))
		}
		// Short slices so a SQL error ends the wait at once rather than
		// after the whole timeout (MASTER_GTID_WAIT does not notice it).
		var r sql.NullInt64
		err := c.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", received, min(left, time.Second).Seconds()).Scan(&r)
		if err == nil && r.Valid && r.Int64 == 0 {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("MASTER_GTID_WAIT(%s) on %s: %w", received, c.cfg.Addr, err)
		}
		// Read the evidence even when ctx just ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		s, err = c.Read(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// resumeIO restarts the IO threads a refused promotion stopped, so the
// replica keeps receiving; best effort, even when ctx has ended.
func (c *Client) resumeIO(ctx context.Context, before Server) {
	for _, r := range before.Replicas {
		if r.IORunning != "No" {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = c.exec(rctx, "START ALL SLAVES IO_THREAD")
			cancel()
			return
		}
	}
}

func mergeIOPos(rs []Replica) string {
	var all []GTID
	for _, r := range rs {
		g, err := ParseGTIDList(r.GtidIOPos)
		if err != nil {
			continue
		}
		all = append(all, g...)
	}
	return formatGTIDs(latestPerDomain(all))
}

func sqlError(rs []Replica) string {
	for _, r := range rs {
		if r.SQLRunning != "Yes" && r.LastSQLErrno != 0 {
			return fmt.Sprintf("Last_SQL_Errno=%d: %s", r.LastSQLErrno, r.LastSQLError)
		}
	}
	return ""
}

func ioStopped(rs []Replica) bool {
	for _, r := range rs {
		if r.IORunning == "No" {
			return true
		}
	}
	return false
}

func sqlStopped(rs []Replica) bool {
	for _, r := range rs {
		if r.SQLRunning != "Yes" {
			return true
		}
	}
	return false
}

func unapplied(received, applied, sqlErr string, waited time.Duration) *UnappliedError {
	e := &UnappliedError{Received: received, Applied: applied, SQLError: sqlErr, Waited: waited}
	recv, _ := ParseGTIDList(received)
	appl, _ := ParseGTIDList(applied)
	e.Missing, e.Transactions = Unapplied(appl, recv)
	return e
}

// Fence refuses writes from ordinary users. MariaDB has read_only only;
// MySQL also has super_read_only, which is set when it exists.
func (c *Client) Fence(ctx context.Context) error {
	if err := c.exec(ctx, "SET GLOBAL read_only=ON"); err != nil {
		return err
	}
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.global_variables WHERE variable_name='SUPER_READ_ONLY'").Scan(&n); err == nil && n > 0 {
		return c.exec(ctx, "SET GLOBAL super_read_only=ON")
	}
	return nil
}

// TLSFiles are the certificate files a replica verifies its primary with
// (paths on the replica's host); an empty CA means a plain connection.
type TLSFiles struct{ CA, Cert, Key string }

// clause is the CHANGE MASTER options for f: MASTER_SSL with the CA and
// the server certificate's name checked, or MASTER_SSL=0.
func (f TLSFiles) clause() string {
	if f.CA == "" {
		return "MASTER_SSL=0"
	}
	s := "MASTER_SSL=1, MASTER_SSL_CA=" + quote(f.CA) + ", MASTER_SSL_VERIFY_SERVER_CERT=1"
	if f.Cert != "" {
		s += ", MASTER_SSL_CERT=" + quote(f.Cert) + ", MASTER_SSL_KEY=" + quote(f.Key)
	}
	return s
}

// RequireTLS turns TLS on for the replica connection named conn ("" is
// the default one) and restarts it.
func (c *Client) RequireTLS(ctx context.Context, conn string, f TLSFiles) error {
	if f.CA == "" {
		return fmt.Errorf("require tls on %s: mysql.tls.ca is not set", c.cfg.Addr)
	}
	name := ""
	if conn != "" {
		name = quote(conn) + " "
	}
	for _, q := range []string{"STOP SLAVE " + name, "CHANGE MASTER " + name + "TO " + f.clause(), "START SLAVE " + name} {
		if err := c.exec(ctx, strings.TrimSpace(q)); err != nil {
			return err
		}
	}
	return nil
}

// Repoint makes the server replicate from host:port by GTID (seed 003's
// createslave), read-only so nothing is written beside the replication.
func (c *Client) Repoint(ctx context.Context, host string, port int, user, password string, tls TLSFiles) error {
	s, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if err := c.exec(ctx, "STOP ALL SLAVES"); err != nil {
		return err
	}
	if len(s.Replicas) == 0 && s.BinlogPos != "" {
		// A former primary: its own writes are in gtid_binlog_pos, not in
		// gtid_slave_pos, so slave_pos must start where its binlog ends or
		// it would ask the new primary for transactions it already has.
		if err := c.exec(ctx, "SET GLOBAL gtid_slave_pos=@@gtid_binlog_pos"); err != nil {
			return err
		}
	}
	if err := c.exec(ctx, "RESET SLAVE ALL"); err != nil {
		return err
	}
	q := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos, %s",
		quote(host), port, quote(user), quote(password), tls.clause())
	if err := c.exec(ctx, q); err != nil {
		return err
	}
	if err := c.Fence(ctx); err != nil {
		return err
	}
	return c.exec(ctx, "START SLAVE")
}

var gtidLine = regexp.MustCompile(`SET GLOBAL gtid_slave_pos='([0-9,\-]*)'`)

// Resynced is what a resync did.
type Resynced struct {
	// Position is where replication starts from.
	Position string
	// Kept is the dump file of the replica's databases taken before they
	// were dropped ("" when it had none).
	Kept string
	// Discarded lists the replica's errant GTIDs (in its
	// gtid_binlog_state, not in the primary's) that the copy throws away.
	Discarded string
}

// ErrNoKeepDir means a resync has nowhere to keep the dump of what it
// would drop.
var ErrNoKeepDir = errors.New("mysql.keepDir is not set")

// Resync copies the primary's databases into this replica with a
// consistent dump that records its GTID position, then replicates from
// that position (seed 002's full resync). Before dropping the replica's
// databases it dumps them into a file in keepDir (0600), so nothing is
// thrown away without a copy; if that dump fails nothing is dropped. The
// replica's own binlog is reset, so errant transactions are discarded and
// named in the result. Accounts (the mysql schema) are not copied.
func (c *Client) Resync(ctx context.Context, primary *Client, replUser, replPassword string, tls TLSFiles, keepDir string) (Resynced, error) {
	var res Resynced
	if keepDir == "" {
		return res, fmt.Errorf("resync %s: %w: it keeps a dump of the replica's databases there before dropping them", c.cfg.Addr, ErrNoKeepDir)
	}
	if err := c.exec(ctx, "STOP ALL SLAVES"); err != nil {
		return res, err
	}
	dbs, err := userDatabases(ctx, primary.db)
	if err != nil {
		return res, err
	}
	mine, err := userDatabases(ctx, c.db)
	if err != nil {
		return res, err
	}
	res.Discarded, err = c.errantAgainst(ctx, primary)
	if err != nil {
		return res, err
	}
	if len(mine) > 0 {
		if res.Kept, err = c.keep(ctx, mine, keepDir); err != nil {
			return res, fmt.Errorf("resync %s refused: keep a copy of %s first: %w", c.cfg.Addr, strings.Join(mine, ", "), err)
		}
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_log_bin=0"); err != nil {
		return res, fmt.Errorf("resync %s: %w", c.cfg.Addr, err)
	}
	for _, db := range mine {
		if _, err := conn.ExecContext(ctx, "DROP DATABASE "+ident(db)); err != nil {
			return res, fmt.Errorf("resync %s: drop %s: %w", c.cfg.Addr, db, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "RESET MASTER"); err != nil {
		return res, fmt.Errorf("resync %s: %w", c.cfg.Addr, err)
	}
	pos := ""
	if len(dbs) > 0 {
		if pos, err = c.load(ctx, primary, dbs); err != nil {
			return res, err
		}
	}
	if pos == "" {
		if pos, err = primary.Position(ctx); err != nil {
			return res, err
		}
	}
	if _, err := conn.ExecContext(ctx, "SET GLOBAL gtid_slave_pos="+quote(pos)); err != nil {
		return res, fmt.Errorf("resync %s: set gtid_slave_pos %s: %w", c.cfg.Addr, pos, err)
	}
	res.Position = pos
	host, port, err := splitAddr(primary.cfg.Addr)
	if err != nil {
		return res, err
	}
	if err := c.Repoint(ctx, host, port, replUser, replPassword, tls); err != nil {
		return res, err
	}
	return res, nil
}

// errantAgainst names this server's GTIDs the primary's binlog state
// lacks: what a resync from primary discards.
func (c *Client) errantAgainst(ctx context.Context, primary *Client) (string, error) {
	mine, err := c.BinlogState(ctx)
	if err != nil {
		return "", err
	}
	theirs, err := primary.BinlogState(ctx)
	if err != nil {
		return "", err
	}
	m, err1 := ParseGTIDList(mine)
	p, err2 := ParseGTIDList(theirs)
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("resync %s: compare gtid_binlog_state with %s: %w", c.cfg.Addr, primary.cfg.Addr, err)
	}
	errant := Errant(m, p)
	if len(errant) == 0 {
		return "", nil
	}
	return "errant GTIDs (in this server's gtid_binlog_state, not the primary's): " + formatGTIDs(errant), nil
}

// keep dumps dbs of this server into a new file in dir, readable by this
// process's user alone, and returns its path. A partial file is removed.
func (c *Client) keep(ctx context.Context, dbs []string, dir string) (string, error) {
	dumpBin, err := lookPath("mariadb-dump", "mysqldump")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("mysql.keepDir: %w", err)
	}
	h, p, err := splitAddr(c.cfg.Addr)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("resync-%s-%d-%s.sql", strings.NewReplacer(":", "_", "/", "_").Replace(h), p, time.Now().UTC().Format("20060102T150405.000"))
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("mysql.keepDir: %w", err)
	}
	args := append([]string{"--no-defaults", "-h", h, "-P", strconv.Itoa(p), "-u", c.cfg.User, "--protocol=tcp",
		"--single-transaction", "--routines", "--triggers", "--events", "--databases"}, dbs...)
	dump := exec.CommandContext(ctx, dumpBin, args...)
	dump.Env = append(os.Environ(), "MYSQL_PWD="+c.cfg.Passwd)
	dump.Stdout = f
	var stderr strings.Builder
	dump.Stderr = &stderr
	err = dump.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("%s of %s: %w: %s", dumpBin, c.cfg.Addr, err, strings.TrimSpace(stderr.String()))
	}
	return path, nil
}

// load pipes mariadb-dump of the primary into the mariadb client on this
// server, with binary logging off so the copy creates no local GTIDs.
func (c *Client) load(ctx context.Context, primary *Client, dbs []string) (string, error) {
	dumpBin, err := lookPath("mariadb-dump", "mysqldump")
	if err != nil {
		return "", err
	}
	cliBin, err := lookPath("mariadb", "mysql")
	if err != nil {
		return "", err
	}
	ph, pp, err := splitAddr(primary.cfg.Addr)
	if err != nil {
		return "", err
	}
	rh, rp, err := splitAddr(c.cfg.Addr)
	if err != nil {
		return "", err
	}
	dumpArgs := append([]string{"--no-defaults", "-h", ph, "-P", strconv.Itoa(pp), "-u", primary.cfg.User, "--protocol=tcp",
		"--single-transaction", "--gtid", "--master-data=2", "--routines", "--triggers", "--events", "--databases"}, dbs...)
	dump := exec.CommandContext(ctx, dumpBin, dumpArgs...)
	dump.Env = append(os.Environ(), "MYSQL_PWD="+primary.cfg.Passwd)
	var dumpErr strings.Builder
	dump.Stderr = &dumpErr
	out, err := dump.StdoutPipe()
	if err != nil {
		return "", err
	}
	load := exec.CommandContext(ctx, cliBin, "--no-defaults", "-h", rh, "-P", strconv.Itoa(rp), "-u", c.cfg.User, "--protocol=tcp")
	load.Env = append(os.Environ(), "MYSQL_PWD="+c.cfg.Passwd)
	var loadErr strings.Builder
	load.Stderr = &loadErr
	in, err := load.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := load.Start(); err != nil {
		return "", fmt.Errorf("resync: start %s: %w", cliBin, err)
	}
	if err := dump.Start(); err != nil {
		in.Close()
		_ = load.Wait()
		return "", fmt.Errorf("resync: start %s: %w", dumpBin, err)
	}
	pos, copyErr := copyDump(in, out)
	in.Close()
	dErr, lErr := dump.Wait(), load.Wait()
	switch {
	case dErr != nil:
		return "", fmt.Errorf("resync: %s from %s: %w: %s", dumpBin, primary.cfg.Addr, dErr, strings.TrimSpace(dumpErr.String()))
	case lErr != nil:
		return "", fmt.Errorf("resync: load into %s: %w: %s", c.cfg.Addr, lErr, strings.TrimSpace(loadErr.String()))
	case copyErr != nil:
		return "", fmt.Errorf("resync: %w", copyErr)
	}
	return pos, nil
}

// copyDump forwards the dump and picks out the GTID position it records.
func copyDump(w io.Writer, r io.Reader) (string, error) {
	if _, err := io.WriteString(w, "SET SESSION sql_log_bin=0;\n"); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	pos := ""
	for sc.Scan() {
		line := sc.Bytes()
		if pos == "" && len(line) > 0 && line[0] == '-' {
			if m := gtidLine.FindSubmatch(line); m != nil {
				pos = string(m[1])
			}
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return pos, err
		}
	}
	return pos, sc.Err()
}

func userDatabases(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (c *Client) exec(ctx context.Context, q string) error {
	if _, err := c.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%s on %s: %w", redact(q), c.cfg.Addr, err)
	}
	return nil
}

func queryMaps(ctx context.Context, db *sql.DB, q string) ([]map[string]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

var passwordClause = regexp.MustCompile(`MASTER_PASSWORD='(?:[^'\\]|\\.)*'`)

func redact(q string) string { return passwordClause.ReplaceAllString(q, "MASTER_PASSWORD='***'") }

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: address %q: %v", ErrBadDSN, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%w: port in %q: %v", ErrBadDSN, addr, err)
	}
	return h, port, nil
}

func lookPath(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v found in PATH: install the MariaDB client", names)
}
