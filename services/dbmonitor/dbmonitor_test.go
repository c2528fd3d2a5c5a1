package dbmonitor_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/dbmonitor"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/testlock"
)

func TestMain(m *testing.M) {
	unlock := testlock.Acquire()
	code := m.Run()
	unlock()
	os.Exit(code)
}

func env(t *testing.T, name string) string {
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

func testdb(t *testing.T, args ...string) {
	t.Helper()
	script := os.Getenv("DRWATCH_TESTDB_SCRIPT")
	if script == "" {
		script, _ = filepath.Abs("../../scripts/testdb.sh")
	}
	if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
		t.Fatalf("testdb.sh %v: %v\n%s", args, err, out)
	}
}

// replicateOneWrite commits a row on the MySQL primary and waits for the
// replica to apply it. A pair fresh from testdb.sh has no transaction yet,
// and its GTID position is then empty: the position answers these tests
// check need one.
func replicateOneWrite(t *testing.T) {
	t.Helper()
	primary, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	replica, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS dbmonitor_test",
		"CREATE TABLE IF NOT EXISTS dbmonitor_test.writes (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
		"INSERT INTO dbmonitor_test.writes () VALUES ()",
	} {
		if _, err := primary.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var want string
	if err := primary.QueryRow("SELECT @@gtid_binlog_pos").Scan(&want); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 20*time.Second, "the replica to apply "+want, func() bool {
		var ok sql.NullInt64
		err := replica.QueryRow("SELECT MASTER_GTID_WAIT(?, 0.5)", want).Scan(&ok)
		return err == nil && ok.Valid && ok.Int64 == 0
	})
}

// log collects the events dbmonitor publishes, in order.
type log struct {
	mu   sync.Mutex
	envs []*events.Envelope
}

func (l *log) handle(_ context.Context, env *events.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.envs = append(l.envs, env)
	return nil
}

// wait returns the first envelope after index from that satisfies ok.
func (l *log) wait(t *testing.T, from int, what string, ok func(*events.Envelope) bool) (*events.Envelope, int) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for i := from; i < len(l.envs); i++ {
			if ok(l.envs[i]) {
				env := l.envs[i]
				l.mu.Unlock()
				return env, i + 1
			}
		}
		l.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.envs[from:] {
		fmt.Fprintf(&b, "\n  %s %s", e.Type, e.Payload)
	}
	t.Fatalf("no %s within 40s; seen:%s", what, b.String())
	return nil, 0
}

func doneFor(t *testing.T, cmd *events.Envelope) func(*events.Envelope) bool {
	return func(env *events.Envelope) bool { return env.Type == "DatabaseCommandDone" && env.CausationID == cmd.ID }
}

func check[E events.Event](t *testing.T, ty events.Type, pred func(E) bool) func(*events.Envelope) bool {
	return func(env *events.Envelope) bool {
		if env.Type != ty {
			return false
		}
		ev, err := events.DecodeInto[E](env)
		if err != nil {
			t.Errorf("decode %s: %v", ty, err)
			return false
		}
		return pred(ev)
	}
}

// TestRunAnswersCommandsAndReportsOverTheBus runs the whole service on an
// embedded JetStream against the real database pairs: commands in,
// answers (caused by the command) and the checker's events out.
func TestRunAnswersCommandsAndReportsOverTheBus(t *testing.T) {
	ca := env(t, "DRWATCH_TEST_TLS_CA")
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Role = "a", "standby"
	cfg.MySQL.Enabled = true
	cfg.MySQL.DSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	cfg.MySQL.PeerDSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	cfg.MySQL.ReplicationUser = env(t, "DRWATCH_TEST_MYSQL_REPL_USER")
	cfg.MySQL.ReplicationPassword = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"))
	cfg.MySQL.CheckInterval = config.Duration(300 * time.Millisecond)
	cfg.MySQL.TLS.CA = ca
	cfg.PgSQL.Enabled = true
	cfg.PgSQL.DSN = config.NewSecret(env(t, "DRWATCH_TEST_PGSQL_STANDBY_DSN"))
	cfg.PgSQL.PeerDSN = config.NewSecret(env(t, "DRWATCH_TEST_PGSQL_PRIMARY_DSN"))
	cfg.PgSQL.ReplicationUser = env(t, "DRWATCH_TEST_PGSQL_REPL_USER")
	cfg.PgSQL.ReplicationPassword = config.NewSecret(env(t, "DRWATCH_TEST_PGSQL_REPL_PASSWORD"))
	cfg.PgSQL.CheckInterval = config.Duration(300 * time.Millisecond)
	cfg.PgSQL.DataDir = env(t, "DRWATCH_TEST_PGSQL_STANDBY_DATADIR")
	cfg.PgSQL.BinDir = env(t, "DRWATCH_TEST_PGSQL_BINDIR")
	cfg.PgSQL.TLS.CA = ca
	t.Cleanup(func() { testdb(t, "heal", "mysql") })
	replicateOneWrite(t)

	site := bustest.RunJetStream(t)
	orch := site.Bus(t, "orchestrator", "")
	seen := &log{}
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() {
		watching <- orch.Consume(ctx, bus.ConsumerSpec{Durable: "test-watch", Handler: seen.handle,
			Filters: []string{events.TypeFilter("DatabaseCommandDone"), events.TypeFilter("ReplicationBroken"), events.TypeFilter("ReplicationRepaired")}})
	}()
	deps := service.Deps{Config: &cfg, Bus: site.Bus(t, "dbmonitor", ""), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	ran := make(chan error, 1)
	go func() { ran <- dbmonitor.Run(ctx, deps) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		<-watching
	})
	// Commands are consumed from the end of the log: wait for the consumer.
	bustest.WaitFor(t, 10*time.Second, "dbmonitor-commands consumer", func() bool {
		s, err := orch.JetStream().Stream(context.Background(), bus.EventsStream)
		if err != nil {
			return false
		}
		_, err = s.Consumer(context.Background(), "dbmonitor-commands")
		return err == nil
	})
	publish := func(cmd events.DatabaseCommand) *events.Envelope {
		t.Helper()
		env, err := orch.Publish(context.Background(), &cmd, nil)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	answer := func(cmd *events.Envelope, from int) (events.DatabaseCommandDone, int) {
		t.Helper()
		env, next := seen.wait(t, from, "answer to "+string(cmd.ID), doneFor(t, cmd))
		done, err := events.DecodeInto[events.DatabaseCommandDone](env)
		if err != nil {
			t.Fatal(err)
		}
		return done, next
	}
	at := 0

	// In-sync positions, each database in its own unit.
	cmd := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a", FailoverID: "f1"})
	done, at := answer(cmd, at)
	if !done.OK || done.Position == "" || done.LagTransactions != 0 || done.LagBytes != 0 || done.FailoverID != "f1" {
		t.Errorf("mysql position: %+v", done)
	}
	cmd = publish(events.DatabaseCommand{Command: "position", Database: events.PgSQL, Target: "a"})
	done, at = answer(cmd, at)
	if !done.OK || !strings.Contains(done.Position, "/") || done.LagTransactions != 0 {
		t.Errorf("pgsql position: %+v", done)
	}
	// A command for another site is not ours; a bad one is answered, not dropped.
	publish(events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "b"})
	cmd = publish(events.DatabaseCommand{Command: "repoint", Database: events.MySQL, Target: "a"})
	done, at = answer(cmd, at)
	if done.OK || !strings.Contains(done.Error, "primaryHost") {
		t.Errorf("repoint without a primary: %+v", done)
	}

	// The checker loop: stopped replica threads are reported and restarted.
	replica, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if _, err := replica.Exec("STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	_, at = seen.wait(t, at, "ReplicationBroken io_thread", check(t, "ReplicationBroken", func(e events.ReplicationBroken) bool {
		return e.Database == events.MySQL && e.Check == "io_thread" && e.Repairable
	}))
	_, at = seen.wait(t, at, "ReplicationRepaired io_thread", check(t, "ReplicationRepaired", func(e events.ReplicationRepaired) bool {
		return e.Database == events.MySQL && e.Check == "io_thread"
	}))

	// Promote the replica, then point it back at the primary: both answered.
	cmd = publish(events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "a", FailoverID: "f2"})
	done, at = answer(cmd, at)
	if !done.OK || done.Position == "" {
		t.Fatalf("promote: %+v", done)
	}
	host, port := splitAddr(t, env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	cmd = publish(events.DatabaseCommand{Command: "repoint", Database: events.MySQL, Target: "a", PrimaryHost: host, PrimaryPort: port})
	done, _ = answer(cmd, at)
	if !done.OK {
		t.Fatalf("repoint: %+v", done)
	}
	var ssl string
	bustest.WaitFor(t, 10*time.Second, "replica running over TLS again", func() bool {
		rows, err := replica.Query("SHOW SLAVE STATUS")
		if err != nil {
			return false
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if !rows.Next() || rows.Scan(ptrs...) != nil {
			return false
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		ssl = m["Master_SSL_Allowed"]
		return m["Slave_IO_Running"] == "Yes" && m["Slave_SQL_Running"] == "Yes" && ssl == "Yes"
	})
}

func splitAddr(t *testing.T, dsn string) (string, int) {
	t.Helper()
	i, j := strings.Index(dsn, "tcp("), strings.Index(dsn, ")")
	addr := dsn[i+4 : j]
	k := strings.LastIndex(addr, ":")
	var port int
	fmt.Sscan(addr[k+1:], &port)
	return addr[:k], port
}

// TestCommandsSurviveARestartAndExpire: commands are read through a
// durable consumer. One published while dbmonitor is stopped is executed
// when it starts again; one older than CommandMaxAge is answered
// "expired" and not executed; one for another site is acked and ignored;
// one published before the very first start (a new install) is not
// replayed.
func TestCommandsSurviveARestartAndExpire(t *testing.T) {
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Role = "a", "standby"
	cfg.MySQL.Enabled = true
	cfg.MySQL.DSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	cfg.MySQL.PeerDSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	cfg.MySQL.ReplicationUser = env(t, "DRWATCH_TEST_MYSQL_REPL_USER")
	cfg.MySQL.ReplicationPassword = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"))
	cfg.MySQL.TLS.CA = env(t, "DRWATCH_TEST_TLS_CA")
	cfg.MySQL.CheckInterval = config.Duration(time.Second)
	// Should an assertion fail after a wrongly executed promote, the pair
	// is put back for the next test.
	t.Cleanup(func() { testdb(t, "heal", "mysql") })
	replicateOneWrite(t)

	site := bustest.RunJetStream(t)
	orch := site.Bus(t, "orchestrator", "")
	seen := &log{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan error, 1)
	go func() {
		watching <- orch.Consume(ctx, bus.ConsumerSpec{Durable: "test-watch", Handler: seen.handle,
			Filters: []string{events.TypeFilter("DatabaseCommandDone")}})
	}()
	t.Cleanup(func() { cancel(); <-watching })
	dbmBus := site.Bus(t, "dbmonitor", "")
	deps := service.Deps{Config: &cfg, Bus: dbmBus, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	start := func() (stop func()) {
		rctx, rcancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- dbmonitor.Run(rctx, deps) }()
		return func() {
			rcancel()
			if err := <-ran; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	consumer := func() (jetstreamInfo, bool) {
		s, err := orch.JetStream().Stream(context.Background(), bus.EventsStream)
		if err != nil {
			return jetstreamInfo{}, false
		}
		c, err := s.Consumer(context.Background(), dbmonitor.CommandsConsumer)
		if err != nil {
			return jetstreamInfo{}, false
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return jetstreamInfo{}, false
		}
		return jetstreamInfo{pending: info.NumPending, ackPending: uint64(info.NumAckPending)}, true
	}
	publish := func(cmd events.DatabaseCommand) *events.Envelope {
		t.Helper()
		env, err := orch.Publish(context.Background(), &cmd, nil)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	answer := func(cmd *events.Envelope) events.DatabaseCommandDone {
		t.Helper()
		env, _ := seen.wait(t, 0, "answer to "+string(cmd.ID), doneFor(t, cmd))
		done, err := events.DecodeInto[events.DatabaseCommandDone](env)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}
	answered := func(cmd *events.Envelope) bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		for _, e := range seen.envs {
			if e.CausationID == cmd.ID {
				return true
			}
		}
		return false
	}

	// A new install: what the log held before the first start is history.
	before := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a"})
	stop := start()
	bustest.WaitFor(t, 10*time.Second, "commands consumer", func() bool { _, ok := consumer(); return ok })
	first := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a"})
	if done := answer(first); !done.OK {
		t.Fatalf("position while running: %+v", done)
	}
	stop()

	// dbmonitor is down: a command for another site, a promote issued
	// 10 minutes ago (what an orchestrator long since timed out left in
	// the log), and a fresh position request.
	other := publish(events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "b"})
	// A delivery the stopped run took and never acked: what a run killed
	// mid-command leaves, and what the server does when it hands a
	// message to a pull request the stopping run had just issued. It must
	// not wait for the 15-minute AckWait.
	stuck := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a", FailoverID: "f-stuck"})
	cons, err := orch.JetStream().Consumer(context.Background(), bus.EventsStream, dbmonitor.CommandsConsumer)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 2; {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got++
			if got == 1 {
				m.Ack() // site b's command, as the run would have
			}
		}
	}
	if c, _ := consumer(); c.ackPending != 1 {
		t.Fatalf("test setup: %d deliveries pending, want the stuck one", c.ackPending)
	}
	old, err := events.New(events.Source{Site: "a", Node: "test", Service: "orchestrator"},
		&events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "a", FailoverID: "f-old"},
		time.Now().Add(-10*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := orch.PublishEnvelope(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	during := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a", FailoverID: "f-new"})
	time.Sleep(200 * time.Millisecond)
	if answered(during) {
		t.Fatal("answered while dbmonitor was stopped")
	}

	stop = start()
	defer func() { stop() }()
	done := answer(during)
	if !done.OK || done.Position == "" || done.FailoverID != "f-new" {
		t.Errorf("position published during the restart: %+v", done)
	}
	if done := answer(stuck); !done.OK || done.FailoverID != "f-stuck" {
		t.Errorf("command left unacked by the previous run: %+v", done)
	}
	done = answer(old)
	if done.OK || !strings.HasPrefix(done.Error, "expired: ") || done.Command != "promote" || done.FailoverID != "f-old" {
		t.Errorf("old promote: %+v", done)
	}
	// Handled in log order: the commands before `during` are settled.
	if answered(other) {
		t.Error("a command for site b was answered by site a")
	}
	if answered(before) {
		t.Error("a command older than the consumer was replayed on a new install")
	}
	bustest.WaitFor(t, 10*time.Second, "every command acked", func() bool {
		c, ok := consumer()
		return ok && c.pending == 0 && c.ackPending == 0
	})

	// The consumer recreated from its ack floor keeps that start on the
	// next restart (a deliver policy cannot be updated) and goes on.
	stop()
	again := publish(events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a"})
	stop = start()
	if done := answer(again); !done.OK {
		t.Errorf("position after a second restart: %+v", done)
	}

	// No action: the replica still replicates and is read-only.
	replica, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	var readOnly int
	if err := replica.QueryRow("SELECT @@read_only").Scan(&readOnly); err != nil {
		t.Fatal(err)
	}
	rows, err := replica.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	replicating := rows.Next()
	rows.Close()
	if readOnly != 1 || !replicating {
		t.Errorf("the expired promote acted: read_only=%d, replica configured=%v", readOnly, replicating)
	}
}

type jetstreamInfo struct{ pending, ackPending uint64 }

// TestCommandsOnlyFromThisSitesOrchestratorOrOperator: a DatabaseCommand
// that another of the site's identities publishes (under its own subject,
// as its NATS permissions allow) is ignored, neither executed nor
// answered; the operator's (cli) is executed.
func TestCommandsOnlyFromThisSitesOrchestratorOrOperator(t *testing.T) {
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Role = "a", "standby"
	cfg.MySQL.Enabled = true
	cfg.MySQL.DSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	cfg.MySQL.PeerDSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	cfg.MySQL.ReplicationUser = env(t, "DRWATCH_TEST_MYSQL_REPL_USER")
	cfg.MySQL.ReplicationPassword = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"))
	cfg.MySQL.TLS.CA = env(t, "DRWATCH_TEST_TLS_CA")
	cfg.MySQL.CheckInterval = config.Duration(time.Second)
	// Should the forged promote act, the pair is put back for the next test.
	t.Cleanup(func() { testdb(t, "heal", "mysql") })
	replicateOneWrite(t)

	site := bustest.RunJetStream(t)
	orch := site.Bus(t, "orchestrator", "")
	seen := &log{}
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() {
		watching <- orch.Consume(ctx, bus.ConsumerSpec{Durable: "test-watch", Handler: seen.handle,
			Filters: []string{events.TypeFilter("DatabaseCommandDone")}})
	}()
	deps := service.Deps{Config: &cfg, Bus: site.Bus(t, "dbmonitor", ""), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	ran := make(chan error, 1)
	go func() { ran <- dbmonitor.Run(ctx, deps) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		<-watching
	})
	bustest.WaitFor(t, 10*time.Second, "dbmonitor-commands consumer", func() bool {
		_, err := orch.JetStream().Consumer(context.Background(), bus.EventsStream, dbmonitor.CommandsConsumer)
		return err == nil
	})
	// Each publisher logs in with its own key, as on a site.
	publishAs := func(identity string, cmd events.DatabaseCommand) *events.Envelope {
		t.Helper()
		b, err := bus.New(site.ConnectAs(t, identity), bus.Options{Source: events.Source{Site: "a", Node: "a-node", Service: identity}})
		if err != nil {
			t.Fatal(err)
		}
		env, err := b.Publish(context.Background(), &cmd, nil)
		if err != nil {
			t.Fatalf("publish as %s: %v", identity, err)
		}
		return env
	}
	var forged []*events.Envelope
	for _, id := range []string{"heartbeat", "notifier", "filesync", "arbiter", "dbmonitor", bus.IdentitySite} {
		forged = append(forged, publishAs(id, events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "a", FailoverID: "forged-" + id}))
	}
	op := publishAs(bus.IdentityCLI, events.DatabaseCommand{Command: "position", Database: events.MySQL, Target: "a"})
	answer, _ := seen.wait(t, 0, "the operator's position answered", doneFor(t, op))
	if done, err := events.DecodeInto[events.DatabaseCommandDone](answer); err != nil || !done.OK {
		t.Errorf("the operator's position: %+v (%v)", done, err)
	}
	// Commands are handled in log order: the forged ones before op are
	// settled, and none was answered.
	seen.mu.Lock()
	for _, e := range seen.envs {
		for _, f := range forged {
			if e.CausationID == f.ID {
				t.Errorf("a promote published by %s was answered: %s", f.Service, e.Payload)
			}
		}
	}
	seen.mu.Unlock()

	replica, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	var readOnly int
	if err := replica.QueryRow("SELECT @@read_only").Scan(&readOnly); err != nil {
		t.Fatal(err)
	}
	rows, err := replica.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	replicating := rows.Next()
	rows.Close()
	if readOnly != 1 || !replicating {
		t.Errorf("a forged promote acted: read_only=%d, replica configured=%v", readOnly, replicating)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	cfg := config.Defaults()
	err := dbmonitor.RunWithOptions(context.Background(), service.Deps{Config: &cfg}, dbmonitor.Options{})
	if err == nil || !strings.Contains(err.Error(), "CommandMaxAge") {
		t.Fatalf("zero CommandMaxAge: got %v, want an error naming it", err)
	}
	for _, wait := range []time.Duration{0, 2 * time.Minute} {
		opts := dbmonitor.DefaultOptions()
		opts.PromoteApplyTimeout = wait
		err := dbmonitor.RunWithOptions(context.Background(), service.Deps{Config: &cfg}, opts)
		if err == nil || !strings.Contains(err.Error(), "PromoteApplyTimeout "+wait.String()) {
			t.Fatalf("PromoteApplyTimeout %s: got %v, want an error naming it", wait, err)
		}
	}
}

// TestResyncRefusedOnTheActiveSite: a resync sent to the active site's
// dbmonitor is answered OK=false naming the role and force, and the
// server's data is untouched; with force it runs and the answer says
// where the replaced databases were dumped.
func TestResyncRefusedOnTheActiveSite(t *testing.T) {
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Role = "a", "active"
	cfg.MySQL.Enabled = true
	cfg.MySQL.DSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	cfg.MySQL.PeerDSN = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_PRIMARY_DSN"))
	cfg.MySQL.ReplicationUser = env(t, "DRWATCH_TEST_MYSQL_REPL_USER")
	cfg.MySQL.ReplicationPassword = config.NewSecret(env(t, "DRWATCH_TEST_MYSQL_REPL_PASSWORD"))
	cfg.MySQL.TLS.CA = env(t, "DRWATCH_TEST_TLS_CA")
	cfg.MySQL.CheckInterval = config.Duration(time.Second)
	cfg.MySQL.KeepDir = t.TempDir()
	t.Cleanup(func() { testdb(t, "heal", "mysql") })
	replicateOneWrite(t)
	replica, err := sql.Open("mysql", env(t, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	rows := func() int {
		var n int
		if err := replica.QueryRow("SELECT COUNT(*) FROM dbmonitor_test.writes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := rows()

	site := bustest.RunJetStream(t)
	orch := site.Bus(t, "orchestrator", "")
	seen := &log{}
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() {
		watching <- orch.Consume(ctx, bus.ConsumerSpec{Durable: "test-watch", Handler: seen.handle,
			Filters: []string{events.TypeFilter("DatabaseCommandDone")}})
	}()
	deps := service.Deps{Config: &cfg, Bus: site.Bus(t, "dbmonitor", ""), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	ran := make(chan error, 1)
	go func() { ran <- dbmonitor.Run(ctx, deps) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		<-watching
	})
	bustest.WaitFor(t, 10*time.Second, "dbmonitor-commands consumer", func() bool {
		s, err := orch.JetStream().Stream(context.Background(), bus.EventsStream)
		if err != nil {
			return false
		}
		_, err = s.Consumer(context.Background(), dbmonitor.CommandsConsumer)
		return err == nil
	})
	resync := func(force bool, from int) (events.DatabaseCommandDone, int) {
		t.Helper()
		env, err := orch.Publish(context.Background(), &events.DatabaseCommand{Command: "resync", Database: events.MySQL, Target: "a", Force: force}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, next := seen.wait(t, from, "answer to resync", doneFor(t, env))
		done, err := events.DecodeInto[events.DatabaseCommandDone](got)
		if err != nil {
			t.Fatal(err)
		}
		return done, next
	}

	done, at := resync(false, 0)
	if done.OK || !strings.Contains(done.Error, "site a is active") || !strings.Contains(done.Error, "force") || done.Kept != "" {
		t.Fatalf("resync on the active site: %+v; want refused naming the role and force", done)
	}
	if n := rows(); n != before {
		t.Fatalf("a refused resync changed the data: %d rows, had %d", n, before)
	}
	if entries, _ := os.ReadDir(cfg.MySQL.KeepDir); len(entries) != 0 {
		t.Errorf("a refused resync wrote to keepDir: %d file(s)", len(entries))
	}

	done, _ = resync(true, at)
	if !done.OK || !strings.HasPrefix(done.Kept, cfg.MySQL.KeepDir+"/") {
		t.Fatalf("forced resync: %+v; want OK with the dump in %s", done, cfg.MySQL.KeepDir)
	}
	b, err := os.ReadFile(done.Kept)
	if err != nil || !strings.Contains(string(b), "CREATE DATABASE") || !strings.Contains(string(b), "`dbmonitor_test`") {
		t.Errorf("kept dump %s does not hold the replaced databases (%v)", done.Kept, err)
	}
}
