package monitor

import (
	"context"
	"testing"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
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
	target.TLS = PgTLS{CA: env(t, "DRWATCH_TEST_TLS_CA")}
	if obs := target.Observe(ctx, true); len(obs.Findings) != 0 || obs.Encrypted != "yes" {
		t.Fatalf("test pair over TLS: findings %+v, encrypted %q", obs.Findings, obs.Encrypted)
	}
	host, port := splitTest(t, p.Addr())
	plain := PgSQL{ReplUser: target.ReplUser, ReplPassword: target.ReplPassword}
	pgExec(t, s, "ALTER SYSTEM SET primary_conninfo = '"+plain.replConninfo(host, port)+" sslmode=disable'")
	pgExec(t, s, "SELECT pg_reload_conf()")
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
