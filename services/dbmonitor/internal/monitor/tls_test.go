package monitor

import (
	"context"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// The test pair replicates over TLS (scripts/testdb.sh); with TLS required
// a link made plain is reported as check "tls" and turned back to TLS.
func TestMySQLTLSRequiredPlainLinkRepaired(t *testing.T) {
	_, r, _ := mysqlPair(t)
	m, rec, target := newMySQLMonitor(t, r, watch.Limits{RepairAttempts: 3})
	target.TLS = mysqlrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")}
	if obs := target.Observe(context.Background(), true); len(obs.Findings) != 0 || obs.Encrypted != "yes" {
		t.Fatalf("test pair over TLS: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
	}
	mustExec(t, r.DB(), "STOP SLAVE")
	mustExec(t, r.DB(), "CHANGE MASTER TO MASTER_SSL=0")
	mustExec(t, r.DB(), "START SLAVE")
	if obs := target.Observe(context.Background(), true); obs.Encrypted != "no" {
		t.Fatalf("plain link reported encrypted %q", obs.Encrypted)
	}
	evs := roundsUntil(t, m, rec, "ReplicationRepaired tls", isType[*events.ReplicationRepaired]("tls"))
	if !isType[*events.ReplicationBroken]("tls")(evs[0]) {
		t.Fatalf("first event is not ReplicationBroken tls: %s", describe(evs))
	}
	if obs := target.Observe(context.Background(), true); len(obs.Findings) != 0 || obs.Encrypted != "yes" {
		t.Fatalf("after repair: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
	}
}

func TestPgSQLTLSRequiredPlainLinkRepaired(t *testing.T) {
	p, s := pgPair(t)
	t.Cleanup(func() { testdb(t, "heal", "pgsql") })
	ctx := context.Background()
	m, rec, target := newPgMonitor(t, s, p, watch.Limits{RepairAttempts: 3})
	target.TLS = pgrepl.TLSFiles{CA: env(t, "DRWATCH_TEST_TLS_CA")}
	if obs := target.Observe(ctx, true); len(obs.Findings) != 0 || obs.Encrypted != "yes" {
		t.Fatalf("test pair over TLS: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
	}
	host, port := splitTest(t, p.Addr())
	plain := PgSQL{ReplUser: target.ReplUser, ReplPassword: target.ReplPassword}
	pgExec(t, s, "ALTER SYSTEM SET primary_conninfo = '"+plain.replConninfo(host, port)+" sslmode=disable'")
	pgExec(t, s, "SELECT pg_reload_conf()")
	// The reload restarts the WAL receiver; until it streams again over the
	// plain link a check sees "no WAL receiver" instead, and its repair
	// brings TLS back before the plain link was ever seen. Wait for the
	// plain link itself, which is what this test is about.
	deadline := time.Now().Add(30 * time.Second)
	for {
		obs := target.Observe(ctx, true)
		if obs.Encrypted == "no" && len(obs.Findings) == 1 && obs.Findings[0].Check == "tls" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plain link never came up: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
		}
		time.Sleep(200 * time.Millisecond)
	}
	evs := roundsUntil(t, m, rec, "ReplicationRepaired tls", isType[*events.ReplicationRepaired]("tls"))
	var broken bool
	for _, ev := range evs {
		broken = broken || isType[*events.ReplicationBroken]("tls")(ev)
	}
	if !broken {
		t.Fatalf("no ReplicationBroken tls before the repair: %s", describe(evs))
	}
	if obs := target.Observe(ctx, true); len(obs.Findings) != 0 || obs.Encrypted != "yes" {
		t.Fatalf("after repair: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
	}
}
