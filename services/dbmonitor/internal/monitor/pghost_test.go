package monitor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pghost"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// pgHosts gives the two test clusters' data directories, as dbmonitor on
// each host would see its own.
func pgHosts(t *testing.T) (primary, standby *pghost.Host) {
	t.Helper()
	bin := env(t, "DRWATCH_TEST_PGSQL_BINDIR")
	mk := func(dir string) *pghost.Host {
		return &pghost.Host{DataDir: dir, BinDir: bin, OSUser: "postgres", Log: testLog(t)}
	}
	return mk(env(t, "DRWATCH_TEST_PGSQL_PRIMARY_DATADIR")), mk(env(t, "DRWATCH_TEST_PGSQL_STANDBY_DATADIR"))
}

func pgTarget(t *testing.T, local, peer *pgrepl.Client, host *pghost.Host) *PgSQL {
	return &PgSQL{Local: local, Peer: peer, Host: host, ReplUser: env(t, "DRWATCH_TEST_PGSQL_REPL_USER"),
		ReplPassword: env(t, "DRWATCH_TEST_PGSQL_REPL_PASSWORD"), TLS: pgrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")},
		StreamTimeout: 30 * time.Second, Log: testLog(t)}
}

func pgExec(t *testing.T, c *pgrepl.Client, q string, args ...any) {
	t.Helper()
	if _, err := c.Pool().Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// pgWaitRows waits until q counts want rows on c (a server that restarts
// meanwhile is retried).
func pgWaitRows(t *testing.T, c *pgrepl.Client, q string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var n int
	var err error
	for time.Now().Before(deadline) {
		if err = c.Pool().QueryRow(context.Background(), q).Scan(&n); err == nil && n == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s on %s = %d (%v), want %d", q, c.Addr(), n, err, want)
}

func pgTable(t *testing.T, p *pgrepl.Client, name string) {
	pgExec(t, p, "DROP TABLE IF EXISTS "+name)
	pgExec(t, p, "CREATE TABLE "+name+" (id int primary key, v text)")
}

// removeWAL makes the primary drop the WAL segment a stopped standby needs
// next: no WAL kept for standbys, then switch segments and checkpoint
// until the segment is gone.
func removeWAL(t *testing.T, p *pgrepl.Client, need string) {
	t.Helper()
	ctx := context.Background()
	pgExec(t, p, "ALTER SYSTEM SET wal_keep_size = 0")
	pgExec(t, p, "SELECT pg_reload_conf()")
	for i := range 20 {
		var seg string
		var gone bool
		err := p.Pool().QueryRow(ctx, `SELECT w, NOT EXISTS (SELECT 1 FROM pg_ls_waldir() WHERE name = w) FROM pg_walfile_name($1::pg_lsn) AS w`, need).Scan(&seg, &gone)
		if err != nil {
			t.Fatal(err)
		}
		if gone {
			t.Logf("segment %s removed after %d switches", seg, i)
			return
		}
		pgExec(t, p, "INSERT INTO pgt_wal SELECT g, 'filler' FROM generate_series($1::int, $1::int + 99) g", 1000+i*100)
		pgExec(t, p, "SELECT pg_switch_wal()")
		pgExec(t, p, "CHECKPOINT")
	}
	t.Fatalf("WAL segment holding %s still on the primary after 20 switches", need)
}

func TestPgSQLRemovedWALAutoResync(t *testing.T) {
	p, s := pgPair(t)
	ctx := context.Background()
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	_, sh := pgHosts(t)
	pgTable(t, p, "pgt_wal")
	pgExec(t, p, "INSERT INTO pgt_wal VALUES (1, 'before')")
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_wal", 1)
	var need string
	if err := s.Pool().QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&need); err != nil {
		t.Fatal(err)
	}
	// The standby is away longer than the primary keeps its WAL.
	testdb(t, "stop-one", "pg2")
	pgExec(t, p, "INSERT INTO pgt_wal VALUES (2, 'while away')")
	removeWAL(t, p, need)
	testdb(t, "start-one", "pg2")

	target := pgTarget(t, s, p, sh)
	rec := &recorder{}
	m := &Monitor{Target: target, Interval: time.Second, Bus: rec, Roles: fixedRole("standby"), Log: quietLog(), Now: time.Now,
		Limits: watch.Limits{RepairAttempts: 2, BackOff: 200 * time.Millisecond, AutoResync: true}}
	start := time.Now()
	evs := roundsUntil(t, m, rec, "ReplicationRepaired", isType[*events.ReplicationRepaired]("wal_receiver"))
	t.Logf("rebuilt and streaming %s after the first round", time.Since(start).Round(time.Millisecond))
	var sawRemoved bool
	for _, ev := range evs {
		if b, ok := ev.(*events.ReplicationBroken); ok && strings.Contains(b.Error, "already been removed") {
			sawRemoved = true
		}
	}
	if !sawRemoved {
		t.Errorf("no ReplicationBroken naming the removed WAL before the resync: %s", describe(evs))
	}
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_wal WHERE id IN (1, 2)", 2)
	pgExec(t, p, "INSERT INTO pgt_wal VALUES (3, 'after')")
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_wal WHERE id = 3", 1)
	// The replaced data directory is kept beside the new one, and nothing
	// else is left over.
	if matches := globOld(t, sh.DataDir); len(matches) != 1 || !strings.Contains(matches[0], ".drwatch-old-") {
		t.Errorf("after a rebuild want the old data directory kept, nothing else: %v", matches)
	} else {
		checkKeptDataDir(t, sh.DataDir, matches[0], ".drwatch-old-")
	}
}

// checkKeptDataDir checks that kept is a data directory put beside
// dataDir with the given infix.
func checkKeptDataDir(t *testing.T, dataDir, kept, infix string) {
	t.Helper()
	if !strings.HasPrefix(kept, dataDir+infix) {
		t.Fatalf("kept %q, want %s%s<time>", kept, dataDir, infix)
	}
	if _, err := os.Stat(filepath.Join(kept, "PG_VERSION")); err != nil {
		t.Errorf("kept %s is not a data directory: %v", kept, err)
	}
}

func TestPgSQLPromoteAndRepointBothWays(t *testing.T) {
	p, s := pgPair(t)
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	ph, sh := pgHosts(t)
	pt, st := pgTarget(t, p, nil, ph), pgTarget(t, s, nil, sh)
	ctx := context.Background()
	pgTable(t, p, "pgt_both")
	pgExec(t, p, "INSERT INTO pgt_both VALUES (1, 'on a')")
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_both", 1)

	// a -> b: fence a, promote b, return a to standby of b.
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "demote"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
	host, port := splitTest(t, s.Addr())
	start := time.Now()
	done, err := pt.Command(ctx, events.DatabaseCommand{Command: "repoint", PrimaryHost: host, PrimaryPort: port})
	if err != nil {
		t.Fatalf("repoint old primary to the new one: %v", err)
	}
	t.Logf("a rewound to standby of b in %s at %s, kept %s", time.Since(start).Round(time.Millisecond), done.Position, done.Kept)
	checkKeptDataDir(t, ph.DataDir, done.Kept, ".drwatch-kept-")
	pgExec(t, s, "INSERT INTO pgt_both VALUES (2, 'on b')")
	pgWaitRows(t, p, "SELECT count(*) FROM pgt_both", 2)

	// b -> a: demote with the new primary named does it in one command.
	if _, err := pt.Command(ctx, events.DatabaseCommand{Command: "promote"}); err != nil {
		t.Fatal(err)
	}
	host, port = splitTest(t, p.Addr())
	if _, err := st.Command(ctx, events.DatabaseCommand{Command: "demote", PrimaryHost: host, PrimaryPort: port}); err != nil {
		t.Fatalf("demote b to standby of a: %v", err)
	}
	pgExec(t, p, "INSERT INTO pgt_both VALUES (3, 'on a again')")
	pgWaitRows(t, s, "SELECT count(*) FROM pgt_both", 3)
	pgWaitRows(t, p, "SELECT count(*) FROM pgt_both", 3)
	obs := st.Observe(ctx, true)
	if len(obs.Findings) != 0 {
		t.Errorf("b after the round trip: %+v", obs.Findings)
	}
}

func globOld(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, suffix := range []string{".drwatch-old-*", ".drwatch-kept-*", ".drwatch-new"} {
		m, _ := filepath.Glob(dataDir + suffix)
		out = append(out, m...)
	}
	return out
}

// testLog writes to the test's log (shown on failure or with -v).
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
