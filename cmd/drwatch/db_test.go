package main

import (
	"context"
	"strings"
	"testing"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
)

// TestDBCommands drives `drwatch db resync|position` against a site whose
// dbmonitor is a stand-in answering over the log, as the real one does.
func TestDBCommands(t *testing.T) {
	s := startSite(t, "-services", "heartbeat,notifier")
	cfg := s.cfgPath

	s.expectFail(t, 2, "db takes resync or position", "db")
	s.expectFail(t, 2, `db "promote": want resync or position`, "db", "promote", "--database", "mysql")
	s.expectFail(t, 2, `--database "oracle": want mysql or pgsql`, "db", "resync", "--database", "oracle")
	s.expectFail(t, 2, "--primary-port 70000", "db", "resync", "--database", "mysql", "--primary-port", "70000")
	s.expectFail(t, 2, "--force applies to resync only", "db", "position", "--database", "mysql", "--force")

	// Nobody answers: exit 4, the command stays recorded.
	r := runCLI(t, cfg, "db", "position", "--database", "pgsql", "--timeout", "1s")
	if r.code != 4 || !strings.Contains(r.stderr, "no answer from dbmonitor") {
		t.Errorf("unanswered: %v", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := bus.New(s.connectAs(t, "dbmonitor"), bus.Options{Source: events.Source{Site: "a", Node: "test", Service: "dbmonitor"}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = db.Follow(ctx, s.lastSeq(t)+1, []string{events.SiteTypeFilter("a", "DatabaseCommand")}, func(_ uint64, env *events.Envelope) {
			cmd, err := events.DecodeInto[events.DatabaseCommand](env)
			if err != nil {
				return
			}
			done := events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, OK: true, Position: "0-1-42", LagTransactions: 3, FollowsNone: true}
			if cmd.Command == "resync" {
				done = events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, Error: "primary 10.0.0.9:3306 unreachable"}
			}
			if cmd.Command == "resync" && cmd.Force {
				done = events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, OK: true, Position: "0-1-50",
					Kept: "/var/lib/drwatch/kept/resync-db-3306.sql", Discarded: "errant GTIDs: 0-2-5"}
			}
			_, _ = db.Publish(ctx, done, env)
		})
	}()
	r = runCLI(t, cfg, "db", "position", "--database", "mysql", "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "position 0-1-42, 3 transactions behind the primary, follows no primary") {
		t.Errorf("position: %v", r)
	}
	r = runCLI(t, cfg, "db", "resync", "--database", "mysql", "--primary-host", "10.0.0.9", "--primary-port", "3306", "--timeout", "20s")
	if r.code != 1 || !strings.Contains(r.stderr, "resync of mysql failed on site a: primary 10.0.0.9:3306 unreachable") {
		t.Errorf("resync: %v", r)
	}
	r = runCLI(t, cfg, "db", "resync", "--database", "mysql", "--force", "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "kept in /var/lib/drwatch/kept/resync-db-3306.sql") || !strings.Contains(r.stdout, "discarded: errant GTIDs: 0-2-5") {
		t.Errorf("forced resync: %v", r)
	}
	var resync *events.DatabaseCommand
	for _, env := range s.logOf(t, events.SiteTypeFilter("a", "DatabaseCommand")) {
		if cmd, err := events.DecodeInto[events.DatabaseCommand](env); err == nil && cmd.Command == "resync" && !cmd.Force {
			resync = &cmd
		}
	}
	if resync == nil || resync.PrimaryHost != "10.0.0.9" || resync.PrimaryPort != 3306 || resync.Target != "a" {
		t.Errorf("recorded resync command = %+v", resync)
	}
}
