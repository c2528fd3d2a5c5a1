package status

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

func levels(checks []Check) map[string]Level {
	out := map[string]Level{}
	for _, c := range checks {
		out[c.Name] = c.Level
	}
	return out
}

// TestHealthLevels: each check's level against its threshold.
func TestHealthLevels(t *testing.T) {
	fileCfg := "file: {paths: [/etc/x], restore: {hoursOfDay: '2', daysOfWeek: '*'}}\n"
	active := func(site events.SiteID, epoch events.Epoch) *events.Envelope {
		return env(t, site, "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: epoch, Reason: "x"}, t0)
	}
	standby := func(site events.SiteID, epoch events.Epoch) *events.Envelope {
		return env(t, site, "orchestrator", events.RoleChanged{From: "active", To: "standby", Epoch: epoch, Reason: "x"}, t0)
	}
	autoSaga := func(site events.SiteID, at time.Time) []*events.Envelope {
		return []*events.Envelope{
			env(t, site, "orchestrator", events.FailoverStarted{FailoverID: "f1", From: "standby", To: "active", Epoch: 2, Reason: "standby.takeover: x", Steps: []string{"take-vip"}}, at),
			env(t, site, "orchestrator", events.FailoverStepDone{FailoverID: "f1", Step: "take-vip", OK: true}, at),
			env(t, site, "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 2, Reason: "x", FailoverID: "f1"}, at),
			env(t, site, "orchestrator", events.FailoverCompleted{FailoverID: "f1", Role: "active", Epoch: 2, DurationSeconds: 3}, at),
		}
	}
	now := t0.Add(time.Minute)
	tests := []struct {
		name   string
		extra  string
		events []*events.Envelope
		want   map[string]Level
		worst  Level
		detail string
	}{
		{"one active", "", []*events.Envelope{active("a", 1), standby("b", 1)},
			map[string]Level{"active site": LevelOK, "block window": LevelOK}, LevelOK, "a is active"},
		{"no site active", "", []*events.Envelope{standby("a", 1), standby("b", 1)},
			map[string]Level{"active site": LevelFail}, LevelFail, "no site is active"},
		{"peer never heard", "", []*events.Envelope{standby("a", 1)},
			map[string]Level{"active site": LevelWarn}, LevelWarn, "has not reached this log"},
		{"both active", "", []*events.Envelope{active("a", 1), active("b", 2)},
			map[string]Level{"split brain": LevelFail}, LevelFail, "both a and b"},
		{"block window after an automatic failover", "", append([]*events.Envelope{standby("a", 1)}, autoSaga("b", t0)...),
			map[string]Level{"block window": LevelWarn, "active site": LevelOK}, LevelWarn, "blocked until 2026-03-01T11:00:00Z after the automatic failover f1"},
		{"block window acknowledged", "", append(append([]*events.Envelope{standby("a", 1)}, autoSaga("b", t0)...),
			env(t, "a", "cli", events.FailoverAcknowledged{By: "ops", Reason: "seen"}, t0.Add(time.Second))),
			map[string]Level{"block window": LevelOK}, LevelOK, "acknowledged"},
		{"a takeover held back", "", []*events.Envelope{active("b", 2), standby("a", 1),
			env(t, "a", "orchestrator", events.FailoverDecided{Action: "beActive", Branch: "guard.lag", Reason: "pgsql replica is 9 bytes behind", Blocked: true}, t0)},
			map[string]Level{"held back": LevelWarn}, LevelWarn, "held back beActive (guard.lag): pgsql replica"},
		{"quorum below warning", "", []*events.Envelope{active("a", 1), standby("b", 1),
			env(t, "a", "arbiter", events.ArbiterQuorumLow{N: 3, Reachable: 2, Share: 0.66, Warning: 0.7}, t0)},
			map[string]Level{"arbiters": LevelWarn}, LevelWarn, "2/3 arbiters reachable"},
		{"quorum below failover", "", []*events.Envelope{active("a", 1), standby("b", 1),
			env(t, "a", "arbiter", events.ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7}, t0)},
			map[string]Level{"arbiters": LevelFail}, LevelFail, "1/3"},
		{"file copy fresh", fileCfg, []*events.Envelope{active("b", 2), standby("a", 1),
			env(t, "a", "filesync", events.FileSyncCompleted{Transport: "sftp", Files: 1}, t0)},
			map[string]Level{"file sync": LevelOK}, LevelOK, "warn after 48h0m0s"},
		{"file copy three days old", fileCfg, []*events.Envelope{active("b", 2), standby("a", 1),
			env(t, "a", "filesync", events.FileSyncCompleted{Transport: "sftp", Files: 1}, t0.Add(-72*time.Hour))},
			map[string]Level{"file sync": LevelWarn}, LevelWarn, "72h1m0s ago"},
		{"file copy twelve days old, read on the active site", fileCfg, []*events.Envelope{active("a", 1), standby("b", 1),
			env(t, "b", "filesync", events.FileSyncCompleted{Transport: "sftp", Files: 1}, t0.Add(-12*24*time.Hour))},
			map[string]Level{"file sync": LevelFail}, LevelFail, "by site b"},
		{"standby out of sync", "pgsql: {enabled: true, dsn: 'postgres://u:p@h/db'}\n", []*events.Envelope{active("b", 2), standby("a", 1),
			env(t, "a", "dbmonitor", events.ReplicationLagHigh{Database: "pgsql", Server: "pg", LagBytes: 5 << 20, LagSeconds: 40}, t0)},
			map[string]Level{"replication lag": LevelWarn}, LevelFail, "guard.lag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(mustCfg(t, tt.extra))
			for _, e := range tt.events {
				p.Apply(e)
			}
			checks := p.Checks(now)
			got := levels(checks)
			var all strings.Builder
			for _, c := range checks {
				fmt.Fprintf(&all, "%s %s %s [%s]\n", c.Name, c.Level, c.Detail, c.Threshold)
				if c.OK != (c.Level != LevelFail) {
					t.Errorf("%s: ok %v with level %s", c.Name, c.OK, c.Level)
				}
			}
			for name, want := range tt.want {
				if got[name] != want {
					t.Errorf("%s = %q, want %s\n%s", name, got[name], want, all.String())
				}
			}
			if w := Worst(checks); w != tt.worst {
				t.Errorf("worst = %s, want %s\n%s", w, tt.worst, all.String())
			}
			if !strings.Contains(all.String(), tt.detail) {
				t.Errorf("checks lack %q:\n%s", tt.detail, all.String())
			}
		})
	}
}

// TestStatusShowsVIPEpochBlockAndHeldBack: the first screen after a
// failover says who holds the VIP, the epoch, the block window and why a
// takeover was held back, until when.
func TestStatusShowsVIPEpochBlockAndHeldBack(t *testing.T) {
	p := New(mustCfg(t, ""))
	for _, e := range []*events.Envelope{
		env(t, "a", "orchestrator", events.RoleChanged{From: "active", To: "standby", Epoch: 1, Reason: "x"}, t0),
		env(t, "a", "orchestrator", events.VIPChanged{Address: "10.0.0.9/24", Interface: "eth0", Held: false, Role: "standby", Reason: "fence"}, t0),
		env(t, "b", "orchestrator", events.FailoverStarted{FailoverID: "f1", From: "standby", To: "active", Epoch: 2, Reason: "standby.takeover: x", Steps: []string{"take-vip"}}, t0),
		env(t, "b", "orchestrator", events.FailoverStepDone{FailoverID: "f1", Step: "take-vip", OK: true}, t0),
		env(t, "b", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 2, Reason: "x", FailoverID: "f1"}, t0),
		env(t, "b", "orchestrator", events.FailoverCompleted{FailoverID: "f1", Role: "active", Epoch: 2, DurationSeconds: 3}, t0),
		env(t, "b", "orchestrator", events.FailoverDecided{Action: "beActive", Branch: "guard.block-window", Reason: "a failover completed", Blocked: true}, t0.Add(time.Minute)),
	} {
		p.Apply(e)
	}
	pair := p.Pair(t0.Add(2 * time.Minute))
	if diff := cmp.Diff([]events.SiteID{"b"}, pair.VIPHolders); diff != "" {
		t.Errorf("VIP holders (-want +got):\n%s", diff)
	}
	if pair.BlockWindow == nil || !pair.BlockWindow.Until.Equal(t0.Add(time.Hour)) || pair.BlockWindow.Failover != "f1" {
		t.Errorf("block window = %+v", pair.BlockWindow)
	}
	if d := pair.Sites[1].Decision; d == nil || d.Until == nil || !d.Until.Equal(t0.Add(time.Hour)) {
		t.Errorf("b's held-back decision = %+v, want until the end of the block window", d)
	}
	var b strings.Builder
	WritePair(&b, pair)
	for _, want := range []string{"epoch 2", "VIP: held by b", "BLOCKED automatic failover until 2026-03-01T11:00:00Z", "drwatch failover ack",
		"held back beActive (guard.block-window)", "lifts at 2026-03-01T11:00:00Z", "vip           held (failover f1 take-vip"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

// TestHistoryOneLinePerMove: a takeover, a switchover (whose fence of the
// old active is part of its line), an aborted attempt and an operator's
// demotion.
func TestHistoryOneLinePerMove(t *testing.T) {
	p := New(mustCfg(t, ""))
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, e := range []*events.Envelope{
		env(t, "a", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 1, Reason: "first start"}, at(0)),
		// b takes over automatically; its position check measured 3 transactions.
		env(t, "b", "orchestrator", events.FailoverStarted{FailoverID: "f2", From: "standby", To: "active", Epoch: 2, Reason: "standby.takeover: peer unreachable", Steps: []string{"check-position"}}, at(1)),
		env(t, "b", "dbmonitor", events.DatabaseCommandDone{FailoverID: "f2", Command: "position", Database: "mysql", OK: true, Position: "0-1-9", LagTransactions: 3}, at(1)),
		env(t, "b", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 2, Reason: "x", FailoverID: "f2"}, at(1)),
		env(t, "b", "orchestrator", events.FailoverCompleted{FailoverID: "f2", Role: "active", Epoch: 2, DurationSeconds: 12.5}, at(1)),
		// an operator's switchover back to a: a fences b, b's demotion is a's line.
		env(t, "a", "orchestrator", events.FailoverStarted{FailoverID: "f3", From: "standby", To: "active", Epoch: 3, Manual: true, RequestID: "r1", Reason: "request.manual: switchover", Steps: []string{"fence-peer"}}, at(10)),
		env(t, "b", "orchestrator", events.FailoverStarted{FailoverID: "f4", From: "active", To: "standby", Epoch: 3, RequestID: "r2", Reason: "request.fenced: fenced by a", Steps: []string{"release-vip"}}, at(10)),
		env(t, "b", "orchestrator", events.RoleChanged{From: "active", To: "standby", Epoch: 3, Reason: "x", FailoverID: "f4"}, at(10)),
		env(t, "b", "orchestrator", events.FailoverCompleted{FailoverID: "f4", Role: "standby", Epoch: 3, DurationSeconds: 1}, at(10)),
		env(t, "a", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 3, Reason: "x", FailoverID: "f3"}, at(10)),
		env(t, "a", "orchestrator", events.FailoverCompleted{FailoverID: "f3", Role: "active", Epoch: 3, DurationSeconds: 4}, at(10)),
		// b's forced attempt aborts.
		env(t, "b", "orchestrator", events.FailoverStarted{FailoverID: "f5", From: "standby", To: "active", Epoch: 4, Manual: true, Force: true, Reason: "request.manual.force: drill", Steps: []string{"veto"}}, at(20)),
		env(t, "b", "orchestrator", events.FailoverAborted{FailoverID: "f5", Step: "veto", Reason: "veto hook said no"}, at(21)),
		// an operator demotes a.
		env(t, "a", "orchestrator", events.FailoverStarted{FailoverID: "f6", From: "active", To: "standby", Epoch: 3, Manual: true, RequestID: "r3", Reason: "request.manual: maintenance", Steps: []string{"release-vip"}}, at(30)),
	} {
		p.Apply(e)
	}
	type line struct {
		ID, From, To, Kind, Outcome string
	}
	var got []line
	for _, e := range p.History() {
		got = append(got, line{e.ID, string(e.From), string(e.To), e.Kind, e.Outcome})
	}
	want := []line{
		{"f2", "a", "b", "automatic", OutcomeCompleted},
		{"f3", "b", "a", "manual", OutcomeCompleted},
		{"f5", "a", "b", "forced", OutcomeAborted},
		{"f6", "a", "", "manual", OutcomeRunning},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	var b strings.Builder
	WriteHistory(&b, p.History())
	out := b.String()
	for _, want := range []string{"a→b", "12.5s", "mysql 3 transactions", "aborted at veto: veto hook said no", "1m0s", "a→none"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("history has %d lines, want a header and 4:\n%s", n, out)
	}
}
