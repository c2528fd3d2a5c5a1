package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// env reads a variable scripts/testdb.sh prints; missing, the test skips on
// a workstation and fails in CI.
func env(t *testing.T, name string) string { return envB(t, name) }

func envB(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		msg := fmt.Sprintf("%s is not set: run `eval \"$(sudo scripts/testdb.sh start)\"` from the repository root first", name)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// testdb runs scripts/testdb.sh with args (stop-one, start-one, heal).
func testdb(t *testing.T, args ...string) { testdbB(t, args...) }

func testdbB(t testing.TB, args ...string) {
	t.Helper()
	script := os.Getenv("DRWATCH_TESTDB_SCRIPT")
	if script == "" {
		script, _ = filepath.Abs("../../../../scripts/testdb.sh")
	}
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testdb.sh %v: %v\n%s", args, err, out)
	}
}

type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(_ context.Context, ev events.Event, _ *events.Envelope) (*events.Envelope, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return &events.Envelope{ID: events.NewID()}, nil
}

func (r *recorder) take() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

type fixedRole events.Role

func (f fixedRole) Current() (events.Role, events.Epoch) { return events.Role(f), 0 }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// roundsUntil runs check rounds until an event satisfies want, returning
// every event seen.
func roundsUntil(t *testing.T, m *Monitor, rec *recorder, what string, want func(events.Event) bool) []events.Event {
	t.Helper()
	var all []events.Event
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		m.Round(context.Background())
		evs := rec.take()
		all = append(all, evs...)
		for _, ev := range evs {
			if want(ev) {
				return all
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("no %s within 40s; events: %s", what, describe(all))
	return nil
}

func describe(evs []events.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %+v", ev.EventType(), ev)
	}
	return b.String()
}

func isType[E events.Event](check string) func(events.Event) bool {
	return func(ev events.Event) bool {
		e, ok := ev.(E)
		if !ok {
			return false
		}
		switch x := any(e).(type) {
		case *events.ReplicationBroken:
			return check == "" || strings.HasSuffix(x.Check, check)
		case *events.ReplicationRepaired:
			return check == "" || strings.HasSuffix(x.Check, check)
		}
		return true
	}
}

// mysqlPair opens both servers, with a per-test database on the primary,
// and heals replication when the test ends so the next starts healthy.
func mysqlPair(t *testing.T) (primary, replica *mysqlrepl.Client, db string) {
	t.Helper()
	p, err := mysqlrepl.Open(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := mysqlrepl.Open(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	db = "dbt_" + strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(t.Name()))
	mustExec(t, p.DB(), "DROP DATABASE IF EXISTS "+db)
	mustExec(t, p.DB(), "CREATE DATABASE "+db)
	mustExec(t, p.DB(), "CREATE TABLE "+db+".t (id INT PRIMARY KEY, v VARCHAR(64))")
	t.Cleanup(func() {
		p.Close()
		r.Close()
		testdb(t, "heal", "mysql")
	})
	return p, r, db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func newMySQLMonitor(t *testing.T, replica *mysqlrepl.Client, limits watch.Limits) (*Monitor, *recorder, *MySQL) {
	rec := &recorder{}
	target := &MySQL{Local: replica, ReplUser: env(t, "DRWATCH_TEST_MYSQL_REPL_USER"), ReplPassword: env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"),
		KeepDir: t.TempDir(), TLS: mysqlrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")}}
	if limits.BackOff == 0 {
		limits.BackOff = 200 * time.Millisecond
	}
	m := &Monitor{Target: target, Interval: time.Second, Limits: limits, Bus: rec, Roles: fixedRole("standby"), Log: quietLog(), Now: time.Now}
	return m, rec, target
}

func waitRow(t *testing.T, db *sql.DB, q string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var n int
	for time.Now().Before(deadline) {
		if err := db.QueryRow(q).Scan(&n); err == nil && n == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %d, want %d", q, n, want)
}

func TestMySQLHealthyThenStoppedReplicaRepaired(t *testing.T) {
	p, r, db := mysqlPair(t)
	m, rec, _ := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 3})
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'a')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	m.Round(context.Background())
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("healthy pair gave events: %s", describe(evs))
	}
	mustExec(t, r.DB(), "STOP SLAVE")
	evs := roundsUntil(t, m, rec, "ReplicationRepaired", isType[*events.ReplicationRepaired]("io_thread"))
	if !isType[*events.ReplicationBroken]("io_thread")(evs[0]) {
		t.Fatalf("first event is not ReplicationBroken io_thread: %s", describe(evs))
	}
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (2, 'b')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 2)
}

func TestMySQLPrimaryUnreachableThenBack(t *testing.T) {
	_, r, _ := mysqlPair(t)
	m, rec, _ := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 1})
	testdb(t, "stop-one", "my1")
	evs := roundsUntil(t, m, rec, "unrepairable ReplicationBroken", func(ev events.Event) bool {
		b, ok := ev.(*events.ReplicationBroken)
		return ok && !b.Repairable && strings.HasSuffix(b.Check, "io_thread")
	})
	last := evs[len(evs)-1].(*events.ReplicationBroken)
	if !strings.Contains(last.Error, "Last_IO_Errno=") || last.Error == "" {
		t.Errorf("broken event lacks the server's error text: %+v", last)
	}
	testdb(t, "start-one", "my1")
	roundsUntil(t, m, rec, "ReplicationRepaired", isType[*events.ReplicationRepaired]("io_thread"))
}

func TestMySQLLagUnderWriteLoad(t *testing.T) {
	p, r, db := mysqlPair(t)
	m, rec, _ := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 3, LagSeconds: 0.5})
	// Hold the SQL thread back with a lock on the replica while the primary
	// writes: the honest way to make lag on one box.
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'a')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	conn, err := r.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "LOCK TABLES "+db+".t WRITE"); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 50; i++ {
		mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (?, 'x')", i)
	}
	roundsUntil(t, m, rec, "ReplicationLagHigh", isType[*events.ReplicationLagHigh](""))
	if _, err := conn.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1000, 'heartbeat')")
	roundsUntil(t, m, rec, "ReplicationLagRecovered", isType[*events.ReplicationLagRecovered](""))
}

func TestMySQLPromoteAndRepointBothWays(t *testing.T) {
	p, r, db := mysqlPair(t)
	_, _, rt := newMySQLMonitor(t, r, watch.Limits{})
	pt := &MySQL{Local: p, ReplUser: rt.ReplUser, ReplPassword: rt.ReplPassword, TLS: rt.TLS}
	ctx := context.Background()
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'before')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	pos, err := pt.Command(ctx, events.DatabaseCommand{Command: "position"})
	if err != nil {
		t.Fatal(err)
	}
	rpos, err := rt.Command(ctx, events.DatabaseCommand{Command: "position"})
	if err != nil || rpos.LagTransactions != 0 || rpos.LagBytes != 0 || rpos.Position != pos.Position {
		t.Fatalf("replica position %+v (err %v), primary %s: want in sync", rpos, err, pos.Position)
	}
	// A takeover must not promote a server that follows no primary.
	if !pos.FollowsNone || rpos.FollowsNone {
		t.Fatalf("followsNone: primary %v, replica %v; want true, false", pos.FollowsNone, rpos.FollowsNone)
	}
	// a -> b: fence the old primary, promote the replica, repoint the old one.
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "demote"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
	host, port := splitTest(t, r.Addr())
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "repoint", PrimaryHost: host, PrimaryPort: port}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, r.DB(), "INSERT INTO "+db+".t VALUES (2, 'on b')")
	waitRow(t, p.DB(), "SELECT COUNT(*) FROM "+db+".t", 2)
	for _, c := range []struct {
		name string
		m    *MySQL
		want bool
	}{{"promoted b", rt, true}, {"re-pointed a", pt, false}} {
		if done, err := c.m.Command(ctx, events.DatabaseCommand{Command: "position"}); err != nil || done.FollowsNone != c.want {
			t.Fatalf("%s: position %+v (%v), want followsNone %v", c.name, done, err, c.want)
		}
	}
	// b -> a.
	if _, err := rt.Command(ctx, events.DatabaseCommand{Command: "demote"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
	host, port = splitTest(t, p.Addr())
	if _, err := rt.Command(ctx, events.DatabaseCommand{Command: "repoint", PrimaryHost: host, PrimaryPort: port}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (3, 'on a again')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 3)
	waitRow(t, p.DB(), "SELECT COUNT(*) FROM "+db+".t", 3)
}

func TestMySQLDivergenceHeldThenResync(t *testing.T) {
	p, r, db := mysqlPair(t)
	m, rec, target := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 3})
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'a')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	// Dual-primary period: the link is down and both sides take writes.
	mustExec(t, r.DB(), "STOP SLAVE")
	mustExec(t, r.DB(), "INSERT INTO "+db+".t VALUES (100, 'written on the replica')")
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (2, 'written on the primary')")
	evs := roundsUntil(t, m, rec, "ReplicationDiverged", isType[*events.ReplicationDiverged](""))
	d := evs[len(evs)-1].(*events.ReplicationDiverged)
	if !strings.Contains(strings.Join(d.Details, " "), "errant GTID 0-2-") || d.ResyncCommand == "" {
		t.Errorf("diverged event does not name the errant GTID and a resync command: %+v", d)
	}
	for range 3 {
		m.Round(context.Background())
	}
	var io string
	st, _ := r.Read(context.Background())
	if len(st.Replicas) > 0 {
		io = st.Replicas[0].IORunning
	}
	if io == "Yes" {
		t.Fatal("replication was resumed after divergence")
	}
	// The operator's resync: the replica becomes a copy of the primary.
	done, err := target.Command(context.Background(), events.DatabaseCommand{Command: "resync"})
	if err != nil {
		t.Fatalf("resync: %v", err)
	}
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t WHERE id IN (1,2)", 2)
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t WHERE id = 100", 0)
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (3, 'after resync')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 3)
	t.Logf("resynced from %s; kept %s; discarded %s", done.Position, done.Kept, done.Discarded)
	// What the copy replaced is kept: a 0600 dump in keepDir holding the
	// row only the replica had, and the answer names the errant GTID.
	checkKeptDump(t, target.KeepDir, done.Kept, "written on the replica")
	if !strings.Contains(done.Discarded, "0-2-") {
		t.Errorf("answer does not name the discarded errant GTID: %q", done.Discarded)
	}
}

// checkKeptDump checks that kept is a dump file in dir, readable by its
// owner alone, containing want.
func checkKeptDump(t *testing.T, dir, kept, want string) {
	t.Helper()
	if kept == "" || filepath.Dir(kept) != dir {
		t.Fatalf("kept %q, want a file in %s", kept, dir)
	}
	st, err := os.Stat(kept)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kept dump %s has mode %v, want 0600", kept, st.Mode().Perm())
	}
	b, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("kept dump %s lacks %q", kept, want)
	}
}

// A resync of a server that replicates from nobody (a primary) is refused
// unless forced, and touches nothing; forced, it keeps a dump first.
func TestMySQLResyncOfAPrimaryRefusedUnlessForced(t *testing.T) {
	p, r, db := mysqlPair(t)
	t.Cleanup(func() { testdb(t, "heal", "mysql") })
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'a')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	keep := t.TempDir()
	primary := &MySQL{Local: p, Peer: r, ReplUser: env(t, "DRWATCH_TEST_MYSQL_REPL_USER"),
		ReplPassword: env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"), KeepDir: keep, TLS: mysqlrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")}}
	done, err := primary.Command(context.Background(), events.DatabaseCommand{Command: "resync"})
	if !errors.Is(err, ErrIsPrimary) || !strings.Contains(err.Error(), "force") || !strings.Contains(err.Error(), p.Addr()) {
		t.Fatalf("resync of the primary = %+v, %v; want ErrIsPrimary naming the server and force", done, err)
	}
	if entries, _ := os.ReadDir(keep); len(entries) != 0 {
		t.Errorf("a refused resync wrote %d file(s) to keepDir", len(entries))
	}
	waitRow(t, p.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	if st, err := p.Read(context.Background()); err != nil || len(st.Replicas) != 0 || st.ReadOnly {
		t.Fatalf("the primary changed after a refused resync: %+v %v", st, err)
	}

	// Without a keepDir nothing is dropped either, forced or not.
	primary.KeepDir = ""
	if _, err := primary.Command(context.Background(), events.DatabaseCommand{Command: "resync", Force: true}); !errors.Is(err, mysqlrepl.ErrNoKeepDir) {
		t.Fatalf("resync without keepDir: %v, want ErrNoKeepDir", err)
	}
	waitRow(t, p.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)

	// Forced: the former primary becomes a copy of the other server, and
	// what it had is in the dump.
	primary.KeepDir = keep
	mustExec(t, r.DB(), "STOP SLAVE")
	mustExec(t, r.DB(), "RESET SLAVE ALL")
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (2, 'only on the old primary')")
	done, err = primary.Command(context.Background(), events.DatabaseCommand{Command: "resync", Force: true})
	if err != nil {
		t.Fatalf("forced resync: %v", err)
	}
	waitRow(t, p.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	checkKeptDump(t, keep, done.Kept, "only on the old primary")
	if !strings.Contains(done.Discarded, "0-1-") {
		t.Errorf("answer does not name the old primary's GTID it discarded: %q", done.Discarded)
	}
}

func TestMySQLPurgedBinlogsAutoResync(t *testing.T) {
	p, r, db := mysqlPair(t)
	m, rec, _ := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 2, AutoResync: true})
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'a')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)
	// The standby is off while the primary writes and purges its binlogs.
	mustExec(t, r.DB(), "STOP SLAVE")
	for i := 2; i < 6; i++ {
		mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (?, 'while away')", i)
		mustExec(t, p.DB(), "FLUSH BINARY LOGS")
	}
	var file string
	if err := p.DB().QueryRow("SELECT SUBSTRING_INDEX(@@log_bin_basename, '/', -1)").Scan(&file); err != nil {
		t.Fatal(err)
	}
	var logName string
	var pos int64
	var a, b, c, d sql.NullString
	if err := p.DB().QueryRow("SHOW MASTER STATUS").Scan(&logName, &pos, &a, &b); err != nil {
		_ = c
		_ = d
		t.Fatal(err)
	}
	mustExec(t, p.DB(), "PURGE BINARY LOGS TO '"+logName+"'")
	mustExec(t, r.DB(), "START SLAVE")
	evs := roundsUntil(t, m, rec, "ReplicationRepaired", isType[*events.ReplicationRepaired]("io_thread"))
	var sawPurged bool
	for _, ev := range evs {
		if b, ok := ev.(*events.ReplicationBroken); ok && strings.Contains(b.Error, "1236") {
			sawPurged = true
		}
	}
	if !sawPurged {
		t.Errorf("no ReplicationBroken naming error 1236 before the resync: %s", describe(evs))
	}
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 5)
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (6, 'after')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 6)
}

func TestMySQLBadInput(t *testing.T) {
	_, r, _ := mysqlPair(t)
	if _, err := mysqlrepl.Open("not a dsn@@"); err == nil || !strings.Contains(err.Error(), "bad mysql dsn") {
		t.Errorf("Open(bad dsn) = %v, want bad mysql dsn", err)
	}
	wrong, err := mysqlrepl.Open(strings.Replace(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"), ":drwatch@", ":wrong@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	m, rec, _ := newMySQLMonitor(t, wrong, watch.Limits{RepairAttempts: 3})
	m.Round(context.Background())
	evs := rec.take()
	if len(evs) != 1 || !strings.Contains(evs[0].(*events.ReplicationBroken).Error, "Access denied") {
		t.Errorf("wrong credentials: %s", describe(evs))
	}
	// The primary is not a replica: a standby expecting one says so.
	p2, err := mysqlrepl.Open(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	m, rec, _ = newMySQLMonitor(t, p2, watch.Limits{RepairAttempts: 3})
	m.Round(context.Background())
	evs = rec.take()
	if len(evs) != 1 || evs[0].(*events.ReplicationBroken).Check != "replica" || evs[0].(*events.ReplicationBroken).Repairable {
		t.Errorf("not a replica: %s", describe(evs))
	}
	_ = r
}

func splitTest(t *testing.T, addr string) (string, int) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	var port int
	fmt.Sscan(addr[i+1:], &port)
	return addr[:i], port
}

// ---- PostgreSQL ----

func pgPair(t *testing.T) (primary, standby *pgrepl.Client) {
	t.Helper()
	ctx := context.Background()
	p, err := pgrepl.Open(ctx, env(t, "DRWATCH_TEST_PGSQL_PRIMARY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgrepl.Open(ctx, env(t, "DRWATCH_TEST_PGSQL_STANDBY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		s.Close()
	})
	return p, s
}

func newPgMonitor(t *testing.T, standby *pgrepl.Client, peer *pgrepl.Client, limits watch.Limits) (*Monitor, *recorder, *PgSQL) {
	rec := &recorder{}
	target := &PgSQL{Local: standby, Peer: peer, ReplUser: env(t, "DRWATCH_TEST_PGSQL_REPL_USER"), ReplPassword: env(t, "DRWATCH_TEST_PGSQL_REPL_PASSWORD")}
	if limits.BackOff == 0 {
		limits.BackOff = 200 * time.Millisecond
	}
	m := &Monitor{Target: target, Interval: time.Second, Limits: limits, Bus: rec, Roles: fixedRole("standby"), Log: quietLog(), Now: time.Now}
	return m, rec, target
}

func TestPgSQLHealthyThenReceiverBrokenRepaired(t *testing.T) {
	p, s := pgPair(t)
	ctx := context.Background()
	m, rec, _ := newPgMonitor(t, s, p, watch.Limits{RepairAttempts: 3})
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	m.Round(ctx)
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("healthy pair gave events: %s", describe(evs))
	}
	// Break primary_conninfo (wrong port): the receiver cannot connect.
	if _, err := s.Pool().Exec(ctx, "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=repl'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	evs := roundsUntil(t, m, rec, "ReplicationRepaired", isType[*events.ReplicationRepaired]("wal_receiver"))
	if !isType[*events.ReplicationBroken]("wal_receiver")(evs[0]) {
		t.Fatalf("first event is not ReplicationBroken wal_receiver: %s", describe(evs))
	}
}

func TestPgSQLPromoteAndDivergence(t *testing.T) {
	p, s := pgPair(t)
	ctx := context.Background()
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	if _, err := p.Pool().Exec(ctx, "DROP TABLE IF EXISTS pgt_promote; CREATE TABLE pgt_promote (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pool().Exec(ctx, "INSERT INTO pgt_promote VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	m, rec, target := newPgMonitor(t, s, p, watch.Limits{RepairAttempts: 3})
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := target.Command(ctx, events.DatabaseCommand{Command: "position"})
		if err == nil && done.FollowsNone {
			t.Fatalf("a streaming standby answers followsNone: %+v", done)
		}
		if err == nil && done.LagBytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not in sync: %+v %v", done, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Both sides writable: the standby is promoted while the primary lives.
	start := time.Now()
	if _, err := target.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("promote took %s", time.Since(start))
	var n int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM pgt_promote").Scan(&n); err != nil || n != 1 {
		t.Fatalf("promoted standby has %d rows (%v), want the committed 1", n, err)
	}
	if done, err := target.Command(ctx, events.DatabaseCommand{Command: "position"}); err != nil || !done.FollowsNone {
		t.Fatalf("promoted server's position %+v (%v): want followsNone", done, err)
	}
	// Promoting again (a resumed saga, a forced takeover) is not an error.
	if _, err := target.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatalf("second promote: %v", err)
	}
	if _, err := s.Pool().Exec(ctx, "INSERT INTO pgt_promote VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	evs := roundsUntil(t, m, rec, "ReplicationDiverged", isType[*events.ReplicationDiverged](""))
	d := evs[len(evs)-1].(*events.ReplicationDiverged)
	// Timelines grow with every promotion the pair ever saw: compare with
	// the promoted server's own.
	st, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.Details, " "), fmt.Sprintf("timeline %d", st.Timeline)) {
		t.Errorf("diverged event does not name the timeline: %+v", d)
	}
	for range 2 {
		m.Round(ctx)
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Fatalf("diverged standby reported again or resumed: %s", describe(evs))
	}
	// On command the forked server is rewound onto the primary's timeline:
	// its own write is discarded, the primary's rows arrive.
	_, sh := pgHosts(t)
	target.Host, target.TLS, target.StreamTimeout, target.Log = sh, pgrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")}, 30*time.Second, testLog(t)
	// Promoted, it is a primary now: a resync is refused unless forced,
	// and the server keeps its own write.
	if _, err := target.Command(ctx, events.DatabaseCommand{Command: "resync"}); !errors.Is(err, ErrIsPrimary) || !strings.Contains(err.Error(), "force") {
		t.Fatalf("resync of a promoted server without force: %v, want ErrIsPrimary", err)
	}
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_promote WHERE id = 2", 1)
	start = time.Now()
	done, err := target.Command(ctx, events.DatabaseCommand{Command: "resync", Force: true})
	if err != nil {
		t.Fatalf("resync of the forked standby: %v", err)
	}
	t.Logf("rewound in %s to %s; kept %s; discarded: %s", time.Since(start).Round(time.Millisecond), done.Position, done.Kept, done.Discarded)
	checkKeptDataDir(t, sh.DataDir, done.Kept, ".drwatch-kept-")
	if !strings.Contains(done.Discarded, fmt.Sprintf("timeline %d", st.Timeline)) {
		t.Errorf("answer does not name the discarded timeline %d: %q", st.Timeline, done.Discarded)
	}
	if _, err := p.Pool().Exec(ctx, "INSERT INTO pgt_promote VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_promote WHERE id IN (1, 4)", 2)
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_promote WHERE id = 2", 0)
	roundsUntil(t, m, rec, "ReplicationRepaired timeline", isType[*events.ReplicationRepaired]("timeline"))
	// The old primary is fenced as the orchestrator would.
	pt := &PgSQL{Local: p}
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "demote"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pool().Exec(ctx, "INSERT INTO pgt_promote VALUES (3)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write on fenced primary: %v, want read-only error", err)
	}
}

func TestPgSQLBadInput(t *testing.T) {
	p, _ := pgPair(t)
	ctx := context.Background()
	if _, err := pgrepl.Open(ctx, "postgres://x:y@host:notaport/db"); err == nil || !strings.Contains(err.Error(), "bad pgsql dsn") {
		t.Errorf("Open(bad dsn) = %v", err)
	}
	wrong, err := pgrepl.Open(ctx, strings.Replace(env(t, "DRWATCH_TEST_PGSQL_STANDBY_DSN"), ":drwatch@", ":wrong@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	m, rec, _ := newPgMonitor(t, wrong, nil, watch.Limits{RepairAttempts: 3})
	m.Round(ctx)
	evs := rec.take()
	if len(evs) != 1 || !strings.Contains(evs[0].(*events.ReplicationBroken).Error, "password authentication failed") {
		t.Errorf("wrong credentials: %s", describe(evs))
	}
	m, rec, _ = newPgMonitor(t, p, nil, watch.Limits{RepairAttempts: 3})
	m.Round(ctx)
	evs = rec.take()
	if len(evs) != 1 || evs[0].(*events.ReplicationBroken).Check != "recovery" {
		t.Errorf("not a standby: %s", describe(evs))
	}
}

// TestMySQLPositionDoesNotWaitForASilentPrimary: the saga asks for a
// position right before promoting, usually with the primary dead. One that
// accepts connections and never answers (a powered-off host behind a
// stateful firewall, a hung server) must not hold the answer up for the
// driver's timeouts (3 s dial, 30 s read): it counts as unknown.
func TestMySQLPositionDoesNotWaitForASilentPrimary(t *testing.T) {
	_, r, _ := mysqlPair(t)
	silent, err := r.WithAddr(silentListener(t).String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	target := &MySQL{Local: r, Peer: silent}
	start := time.Now()
	done, err := target.Command(context.Background(), events.DatabaseCommand{Command: "position"})
	took := time.Since(start)
	if err != nil || done.Position == "" || done.LagTransactions != 0 {
		t.Fatalf("position %+v, %v: want the replica's own position and no lag figure", done, err)
	}
	if took > PositionPrimaryTimeout+time.Second {
		t.Errorf("position took %s with a silent primary; the look at it is bounded by %s", took, PositionPrimaryTimeout)
	}
	t.Logf("position with a silent primary answered in %s", took.Round(time.Millisecond))
}

// silentListener accepts TCP connections and never says a word.
func silentListener(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

func TestPgSQLPositionDoesNotWaitForASilentPrimary(t *testing.T) {
	_, standby := pgPair(t)
	addr := silentListener(t)
	ctx := context.Background()
	silent, err := standby.WithAddr(ctx, addr.IP.String(), addr.Port, pgrepl.TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	target := &PgSQL{Local: standby, Peer: silent}
	start := time.Now()
	done, err := target.Command(ctx, events.DatabaseCommand{Command: "position"})
	took := time.Since(start)
	if err != nil || done.Position == "" {
		t.Fatalf("position %+v, %v: want the standby's own position", done, err)
	}
	if took > PositionPrimaryTimeout+time.Second {
		t.Errorf("position took %s with a silent primary; the look at it is bounded by %s", took, PositionPrimaryTimeout)
	}
	t.Logf("position with a silent primary answered in %s", took.Round(time.Millisecond))
}

// TestPgSQLFenceReachesEveryNewSession: pg_reload_conf only signals the
// postmaster, so a session that connects right after a fence could start
// writable. The fence waits for a new session to be read-only and ends
// the others; every session opened after it, each on a fresh connection,
// must refuse a write.
func TestPgSQLFenceReachesEveryNewSession(t *testing.T) {
	p, _ := pgPair(t)
	ctx := context.Background()
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	if _, err := p.Pool().Exec(ctx, "CREATE TABLE IF NOT EXISTS pgt_fence (id int)"); err != nil {
		t.Fatal(err)
	}
	pt := &PgSQL{Local: p}
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "demote"}); err != nil {
		t.Fatal(err)
	}
	dsn := env(t, "DRWATCH_TEST_PGSQL_PRIMARY_DSN")
	for i := range 20 {
		c, err := pgrepl.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Pool().Exec(ctx, "INSERT INTO pgt_fence VALUES ($1)", i)
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("write %d on a new session after the fence: %v, want a read-only error", i, err)
		}
	}
	// Promoting a fenced primary lifts the fence.
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
}
