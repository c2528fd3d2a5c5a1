package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

type got struct {
	Kind, Key string
	Recovery  bool
}

func TestAlerts(t *testing.T) {
	src := events.Source{Site: "b", Node: "b1", Service: "x"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	th := events.Thresholds{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7}
	tests := []struct {
		name    string
		ev      events.Event
		want    []got
		summary string
	}{
		{"active below failover with automatic failover off", events.ArbitrationDecided{Role: events.RoleActive, Method: "arbiters", Action: events.ActionNothing, Branch: "active.r<failover", N: 4, Reachable: 1, ReachableShare: 0.25, Thresholds: th},
			[]got{{KindFailoverDisabledByConnectivity, "", false}}, "automatic failover disabled by connectivity problems: site b (active) reaches 1 of 4"},
		{"active below failover with automatic failover on", events.ArbitrationDecided{Role: events.RoleActive, Method: "arbiters", Action: events.ActionBeStandby, Branch: "active.r<failover", N: 4, Reachable: 1, ReachableShare: 0.25, Thresholds: th, AutomaticFailover: true}, nil, ""},
		{"branch says disabled", events.ArbitrationDecided{Role: events.RoleStandby, Method: "arbiters", Action: events.ActionNothing, Branch: "standby.automatic-failover-disabled", N: 2, Reachable: 2, ReachableShare: 1, Thresholds: th, AutomaticFailover: true},
			[]got{{KindFailoverDisabledByConnectivity, "", false}}, "disabled"},
		{"no arbiters", events.ArbitrationDecided{Role: events.RoleStandby, Method: "arbiters", Action: events.ActionNothing, Branch: "n=0", Thresholds: th, AutomaticFailover: true},
			[]got{{KindCannotArbitrate, "", false}}, "no arbiter configured"},
		{"standby SSH failures", events.ArbitrationDecided{Role: events.RoleStandby, Method: "arbiters", Action: events.ActionNothing, Branch: "standby.m>=failover", N: 3, Reachable: 1, Managed: 2, ManagedShare: 0.67, Thresholds: th, AutomaticFailover: true,
			Arbiters: []events.ArbiterResult{{Host: "arb3", Error: "ssh: handshake failed"}, {Host: "arb2", Error: "ssh: unable to authenticate"}, {Host: "arb1", Reachable: true, ManagedByActive: true}}},
			[]got{{KindArbiterSSHFailed, "arb2,arb3", false}}, "cannot log in over SSH to 2 of 3 arbiters"},
		{"quorum low", events.ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7}, []got{{"ArbiterQuorumLow", "", false}}, "only 1 of 3 arbiters reachable (33% < warning 70%)"},
		{"role change", events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 3, Reason: "failover"}, []got{{"RoleChanged", "active@3", false}}, "site b is now active (was standby)"},
		{"failover off", events.AutomaticFailoverChanged{Enabled: false, Reason: "arbiters unreachable", By: "watchdog"}, []got{{"AutomaticFailoverChanged", "", false}}, "automatic failover disabled until enabled again"},
		{"failover on", events.AutomaticFailoverChanged{Enabled: true, Reason: "ok", By: "op"}, []got{{"AutomaticFailoverChanged", "", true}}, "enabled again"},
		{"file sync failed", events.FileSyncFailed{Transport: "sftp", File: "/etc/x", Reason: "scp timeout"}, []got{{"FileSyncFailed", "sftp", false}}, "cannot fetch files"},
		{"file sync ok", events.FileSyncCompleted{Transport: "sftp", Files: 3}, []got{{"FileSyncFailed", "sftp", true}}, "fetches files again"},
		{"repairable break is not mailed", events.ReplicationBroken{Database: events.MySQL, Scope: "cross", Server: "db", Check: "io_thread", Repairable: true}, nil, ""},
		{"unrepairable break", events.ReplicationBroken{Database: events.MySQL, Scope: "cross", Server: "db", Check: "io_thread", Error: "1236", Attempts: 3}, []got{{"ReplicationBroken", "mysql cross db io_thread", false}}, "MySQL replication broken on db (cross, check io_thread): 1236"},
		{"primary host unknown", events.ReplicationBroken{Database: events.MySQL, Scope: "cross", Server: "db", Check: "primary_host", Error: "no Source_Host", Repairable: true}, []got{{"ReplicationBroken", "mysql cross db primary_host", false}}, "MySQL primary host unknown on db"},
		{"repaired", events.ReplicationRepaired{Database: events.MySQL, Scope: "cross", Server: "db", Check: "io_thread"}, []got{{"ReplicationBroken", "mysql cross db io_thread", true}}, "repaired"},
		{"diverged", events.ReplicationDiverged{Database: events.PgSQL, Server: "pg", Details: []string{"timeline 3 vs 4"}, ResyncCommand: "drwatch db resync"}, []got{{"ReplicationDiverged", "pgsql pg", false}}, "PostgreSQL on pg diverged"},
		{"unreachable", events.RemoteUnreachable{Peer: "a", Line: "vip", Since: now, DownForSeconds: 150, Failed: []events.ProbeResult{{Target: "10.0.0.1", Kind: "icmp", Attempts: 5}}}, []got{{"RemoteUnreachable", "a vip", false}}, "peer site a unreachable on line vip for 2m30s"},
		{"reachable", events.RemoteReachable{Peer: "a", Line: "vip", Target: "10.0.0.1"}, []got{{"RemoteUnreachable", "a vip", true}}, "reachable again"},
		{"monitor", events.MonitorTripped{Monitor: "jboss", Kind: "service", Failures: 5}, []got{{"MonitorTripped", "jboss", false}}, "monitor jboss"},
		{"aborted", events.FailoverAborted{FailoverID: "f1", Step: "veto", Reason: "veto hook exit 1"}, []got{{"FailoverAborted", "veto", false}}, "failover f1 aborted at step veto"},
		{"takeover held back", events.FailoverDecided{Action: events.ActionBeActive, Branch: "guard.block-window", Reason: "a failover completed at …", Blocked: true},
			[]got{{KindTakeoverBlocked, "guard.block-window", false}}, "site b held back an automatic takeover: guard.block-window"},
		{"a refused request is not mailed", events.FailoverDecided{Action: events.ActionBeActive, Branch: "guard.lag", Reason: "behind", Blocked: true, Manual: true, RequestID: "r1"}, nil, ""},
		{"observe-only is not a held-back takeover", events.FailoverDecided{Action: events.ActionBeActive, Branch: "standby.takeover", Reason: "observe-only: would", ObserveOnly: true}, nil, ""},
		{"paused", events.MaintenanceChanged{Mode: events.MaintenancePaused, Reason: "network work", By: "op"}, []got{{"MaintenanceChanged", "", false}}, "pair in maintenance (paused) until drwatch resume"},
		{"resumed", events.MaintenanceChanged{Mode: events.MaintenanceOff, Reason: "done", By: "op"}, []got{{"MaintenanceChanged", "", true}}, "out of maintenance"},
		{"not mailed", events.PeerVIPMovedLocally{Peer: "a", Line: "vip", VIP: "v", AnsweringNodes: []string{"n"}}, nil, ""},
	}
	table := Table()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := events.New(src, tt.ev, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			as, err := Alerts(table, env)
			if err != nil {
				t.Fatal(err)
			}
			var gs []got
			for _, a := range as {
				gs = append(gs, got{a.Kind, a.Key, a.Recovery})
				if a.Site != "b" {
					t.Errorf("site %q", a.Site)
				}
			}
			if diff := cmp.Diff(tt.want, gs); diff != "" {
				t.Fatalf("alerts (-want +got):\n%s", diff)
			}
			if len(as) > 0 && !strings.Contains(as[0].Summary, tt.summary) {
				t.Errorf("summary %q does not say %q", as[0].Summary, tt.summary)
			}
		})
	}
}

func TestEveryRuleTypeIsRegistered(t *testing.T) {
	known := map[events.Type]bool{}
	for _, ty := range events.Types() {
		known[ty] = true
	}
	for _, r := range Table() {
		if !known[r.Type] {
			t.Errorf("rule for unknown type %s", r.Type)
		}
		if r.When == "" || len(r.Kinds) == 0 {
			t.Errorf("rule for %s lacks documentation or kinds", r.Type)
		}
	}
}

func TestRender(t *testing.T) {
	env, err := events.New(events.Source{Site: "a", Node: "a1", Service: "dbmonitor"},
		events.ReplicationBroken{Database: events.MySQL, Scope: "cross", Server: "db-b", Check: "sql_thread", Error: "Error 1062: duplicate entry", Attempts: 3},
		time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), nil)
	if err != nil {
		t.Fatal(err)
	}
	as, _ := Alerts(Table(), env)
	subj, body := Render(as[0], time.Hour)
	if want := "[drwatch a] MySQL replication broken on db-b (cross, check sql_thread): Error 1062: duplicate entry"; subj != want {
		t.Errorf("subject %q, want %q", subj, want)
	}
	for _, w := range []string{"Site:               a (node a1, service dbmonitor)", "Since:              2026-11-23T12:00:00Z", "Check:              sql_thread", "What was tried:\n  3 repair attempt(s); drwatch will not try again", "at most once every 1h0m0s"} {
		if !strings.Contains(body, w) {
			t.Errorf("body does not say %q:\n%s", w, body)
		}
	}
}
