package events

import "time"

// Examples returns one valid event of every registered type, for tests,
// documentation and `drwatch events --examples`.
func Examples() []Event {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	until := now.Add(2 * time.Hour)
	return []Event{
		RemoteUnreachable{Peer: "b", Line: "vip", Since: now, DownForSeconds: 50, Failed: []ProbeResult{{Target: "10.0.0.2", Kind: "icmp", Attempts: 5, Error: "timeout"}}},
		RemoteReachable{Peer: "b", Line: "vip", Target: "10.0.0.2", DownForSeconds: 12},
		PeerVIPMovedLocally{Peer: "b", Line: "vip", VIP: "10.0.0.2", AnsweringNodes: []string{"10.0.0.3"}},
		MonitorTripped{Monitor: "jboss", Kind: "service", Failures: 5, Detail: "inactive"},
		MonitorRecovered{Monitor: "jboss", Kind: "service"},
		ConfigChecked{OK: false, Problems: []string{"peer vip unset"}},
		PairSettings{Settings: []Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: "30s"}}},
		ArbitrationDecided{Role: RoleStandby, Method: "arbiters", Action: ActionBeActive, Branch: "standby.managed+unreachable<failover", N: 3, Reachable: 3, Thresholds: Thresholds{0.5, 0.5, 0.7}, ReachableShare: 1, Arbiters: []ArbiterResult{{Host: "arb1", Reachable: true}}},
		ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7, Unreachable: []string{"arb2", "arb3"}},
		FailureDetectionFailed{Method: "script", Script: "/bin/x", Reason: "timed out after 30s"},
		ArbitersClaimRequested{ClaimID: "f1", Reason: "standby.takeover: peer unreachable"},
		ArbitersClaimed{ClaimID: "f1", Outcome: ClaimClear, N: 3, Held: 3, Looks: 1, Branch: "standby-failover", DurationSeconds: 0.05, Arbiters: []ArbiterResult{{Host: "arb1", Reachable: true}}},
		ReplicationBroken{Database: MySQL, Scope: "cross", Server: "db-b", Check: "io_thread", Error: "error connecting", Attempts: 3},
		ReplicationRepaired{Database: PgSQL, Scope: "site", Server: "pg-b", Check: "wal_receiver", Attempts: 1},
		ReplicationLagHigh{Database: PgSQL, Server: "pg-b", LagSeconds: 40, LagBytes: 5 << 20, ThresholdSeconds: 30, ThresholdBytes: 1 << 20},
		ReplicationLagRecovered{Database: PgSQL, Server: "pg-b", LagSeconds: 1},
		ReplicationDiverged{Database: MySQL, Server: "db-b", Details: []string{"errant GTID 0-2-17"}, ResyncCommand: "drwatch db resync --database mysql"},
		DatabaseCommand{Command: "promote", Database: MySQL, Target: "b", FailoverID: "f1"},
		DatabaseCommandDone{Command: "promote", Database: MySQL, OK: true, Position: "0-1-100", FailoverID: "f1"},
		FileSyncCompleted{Transport: "objectstore", Files: 10, Bytes: 1000, DurationSeconds: 0.5},
		FileSyncFailed{Transport: "sftp", File: "/etc/x", Reason: "checksum mismatch", Attempts: 2},
		FailoverRequested{Target: "b", ToRole: RoleActive, Manual: true, Reason: "operator", RequestedBy: "root@b"},
		FailoverStarted{FailoverID: "f1", From: RoleStandby, To: RoleActive, Epoch: 2, Reason: "peer down", Steps: []string{"promote"}},
		FailoverStepDone{FailoverID: "f1", Step: "promote", OK: true, DurationSeconds: 0.1},
		FailoverCompleted{FailoverID: "f1", Role: RoleActive, Epoch: 2, DurationSeconds: 1},
		FailoverAborted{FailoverID: "f1", Step: "veto", Reason: "veto hook exited 1"},
		RoleChanged{From: RoleStandby, To: RoleActive, Epoch: 2, Reason: "failover"},
		RoleConfirmed{Role: RoleActive, Epoch: 2, Reason: "the peer is standby at epoch 0"},
		AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "operator"},
		FailoverDecided{Action: ActionBeActive, Branch: "guard.lag", Reason: "lag 5242880 bytes > 1048576", Blocked: true},
		FailoverAcknowledged{By: "root@a", Reason: "checked after failover"},
		MaintenanceChanged{Mode: MaintenancePaused, Until: &until, Reason: "network work", By: "root@a"},
		VIPChanged{Address: "10.0.0.10/24", Interface: "eth0", Held: true, Role: RoleActive, Reason: "active site did not hold the VIP"},
		NotificationSent{Key: "b/ArbiterQuorumLow", Kind: "ArbiterQuorumLow", Recipients: []string{"ops@example.com"}, Subject: "x", Cause: "id"},
		NotificationSuppressed{Key: "b/ArbiterQuorumLow", Kind: "ArbiterQuorumLow", Reason: "mailed within 1h0m0s", Until: until, Cause: "id"},
		ConfigUpdated{Path: "/etc/drwatch/site.yaml", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Changed: []string{"watchdog"}, Sections: map[string]string{"watchdog": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, By: "root@a"},
	}
}
