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
