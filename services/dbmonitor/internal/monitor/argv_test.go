package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/services/dbmonitor/internal/pghost"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
)

// toolRecorder is a bin directory of wrappers around pg_ctl, pg_rewind and
// pg_basebackup that append each call's argv and the mode of the passfile
// it was given to a log, then run the real tool. The tools run as
// postgres, so the directory and log are readable and writable by all.
func toolRecorder(t *testing.T, realBin string) (bin, log string) {
	t.Helper()
	bin, err := os.MkdirTemp("", "drwatch-argv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(bin, "calls.log")
	if err := os.WriteFile(log, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(log, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"pg_ctl", "pg_rewind", "pg_basebackup"} {
		script := "#!/bin/sh\n{ printf 'argv:'; for a in \"$0\" \"$@\"; do printf ' %s' \"$a\"; done; printf '\\n'\n" +
			"  if [ -n \"$PGPASSFILE\" ]; then printf 'passfile: %s %s\\n' \"$PGPASSFILE\" \"$(stat -c %a \"$PGPASSFILE\")\"; fi\n" +
			"  if [ -n \"$PGPASSWORD\" ]; then echo 'PGPASSWORD set'; fi; } >>" + log + "\n" +
			"exec " + filepath.Join(realBin, tool) + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, log
}

// sampleCmdlines reads every process's command line until stop is closed
// and returns, per needle, the distinct command lines containing it.
func sampleCmdlines(needles []string, stop <-chan struct{}) <-chan map[string][]string {
	out := make(chan map[string][]string, 1)
	go func() {
		seen := map[string]map[string]bool{}
		for {
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				for _, n := range needles {
					if bytes.Contains(b, []byte(n)) {
						if seen[n] == nil {
							seen[n] = map[string]bool{}
						}
						seen[n][strings.ReplaceAll(string(b), "\x00", " ")] = true
					}
				}
			}
			select {
			case <-stop:
				found := map[string][]string{}
				for n, cmds := range seen {
					for c := range cmds {
						found[n] = append(found[n], c)
					}
				}
				out <- found
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

// A rewind and a base-backup rebuild of the standby run with a role whose
// password is unique: neither the tools' argv (recorded by wrappers) nor
// any process's /proc/<pid>/cmdline sampled meanwhile holds it, the tools
// got it through a 0600 passfile, and the passfile is gone afterwards.
func TestPgSQLRebuildKeepsPasswordsOffCommandLines(t *testing.T) {
	p, _ := pgPair(t)
	ctx := context.Background()
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	secret := "pw" + hex.EncodeToString(b)
	const role = "drwatch_argv_check"
	pgExec(t, p, "DROP ROLE IF EXISTS "+role)
	pgExec(t, p, "CREATE ROLE "+role+" SUPERUSER REPLICATION LOGIN PASSWORD '"+secret+"'")
	t.Cleanup(func() { _, _ = p.Pool().Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })

	u, err := url.Parse(env(t, "DRWATCH_TEST_PGSQL_STANDBY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, secret)
	local, err := pgrepl.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	pgWaitRows(t, local, "SELECT count(*) FROM pg_roles WHERE rolname = '"+role+"'", 1)

	bin, calls := toolRecorder(t, env(t, "DRWATCH_TEST_PGSQL_BINDIR"))
	_, sh := pgHosts(t)
	host := &pghost.Host{DataDir: sh.DataDir, BinDir: bin, OSUser: "postgres", Log: testLog(t)}
	target := pgTarget(t, local, nil, host)
	target.ReplUser, target.ReplPassword = role, secret
	ph, pport := splitTest(t, p.Addr())

	stop := make(chan struct{})
	found := sampleCmdlines([]string{secret, "pg_basebackup"}, stop)
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	defer halt()
	if _, err := target.rebuild(ctx, ph, pport, true); err != nil {
		t.Fatalf("rewind: %v", err)
	}
	if _, err := target.rebuild(ctx, ph, pport, false); err != nil {
		t.Fatalf("base backup: %v", err)
	}
	halt()
	got := <-found
	if len(got[secret]) != 0 {
		t.Errorf("the password is on a command line: %q", got[secret])
	}
	if len(got["pg_basebackup"]) == 0 {
		t.Errorf("the /proc sampler never saw pg_basebackup running: it proves nothing")
	}

	log, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	text := string(log)
	t.Logf("tool calls:\n%s", text)
	for _, tool := range []string{"pg_rewind", "pg_basebackup"} {
		if !strings.Contains(text, "/"+tool+" ") {
			t.Errorf("%s was not run", tool)
		}
	}
	if strings.Contains(text, secret) || strings.Contains(text, "PGPASSWORD") {
		t.Errorf("a tool got the password on its command line or in PGPASSWORD:\n%s", text)
	}
	var passfiles []string
	for _, line := range strings.Split(text, "\n") {
		if f, ok := strings.CutPrefix(line, "passfile: "); ok {
			path, mode, _ := strings.Cut(f, " ")
			if mode != "600" {
				t.Errorf("passfile %s has mode %s, want 600", path, mode)
			}
			passfiles = append(passfiles, path)
		}
	}
	if len(passfiles) < 2 {
		t.Errorf("pg_rewind and pg_basebackup did not both get a passfile: %q", passfiles)
	}
	for _, f := range passfiles {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("passfile %s left behind (%v)", f, err)
		}
	}
	// The rebuilt standby streams with the password from primary_conninfo.
	pgExec(t, p, "DROP TABLE IF EXISTS pgt_argv")
	pgExec(t, p, "CREATE TABLE pgt_argv (id int)")
	pgExec(t, p, "INSERT INTO pgt_argv VALUES (1)")
	pgWaitRows(t, local, "SELECT count(*) FROM pgt_argv", 1)
}
