package watch

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestTrackerTransitions(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	io := Finding{Check: "io_thread", Error: "Slave_IO_Running=No", Repairable: true}
	fatal := Finding{Check: "replica", Error: "server is not a replica"}
	purged := Finding{Check: "io_thread", Error: "Got fatal error 1236", NeedsResync: true, ResyncCommand: "drwatch db resync mysql"}
	div := Finding{Check: "divergence", Diverged: []string{"0-2-5"}, ResyncCommand: "resync"}
	type round struct {
		at   time.Duration
		obs  Observation
		evs  []events.Event
		acts []Action
	}
	obs := func(f ...Finding) Observation { return Observation{Server: "db1", Scope: "cross", Findings: f} }
	lag := func(s float64, b int64) Observation {
		return Observation{Server: "db1", LagKnown: true, LagSeconds: s, LagBytes: b}
	}
	limits := Limits{RepairAttempts: 2, BackOff: time.Second, LagSeconds: 30, LagBytes: 1000}
	tests := []struct {
		name   string
		limits Limits
		rounds []round
	}{
		{"healthy stays quiet", limits, []round{{0, obs(), nil, nil}, {time.Second, obs(), nil, nil}}},
		{"repaired on first attempt", limits, []round{
			{0, obs(io), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Error: "Slave_IO_Running=No", Repairable: true}},
				[]Action{{Repair, "io_thread", 1}}},
			{time.Second, obs(), []events.Event{&events.ReplicationRepaired{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Attempts: 1}}, nil},
		}},
		{"back-off then give up once", limits, []round{
			{0, obs(io), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Error: "Slave_IO_Running=No", Repairable: true}}, []Action{{Repair, "io_thread", 1}}},
			{500 * time.Millisecond, obs(io), nil, nil},
			{time.Second, obs(io), nil, []Action{{Repair, "io_thread", 2}}},
			{2 * time.Second, obs(io), nil, nil},
			{3 * time.Second, obs(io), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Error: "Slave_IO_Running=No", Attempts: 2}}, nil},
			{9 * time.Second, obs(io), nil, nil},
			{10 * time.Second, obs(), []events.Event{&events.ReplicationRepaired{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Attempts: 2}}, nil},
		}},
		{"unrepairable reported once", limits, []round{
			{0, obs(fatal), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "replica", Error: "server is not a replica"}}, nil},
			{time.Minute, obs(fatal), nil, nil},
		}},
		{"purged without autoResync waits for command", limits, []round{
			{0, obs(purged), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Error: "Got fatal error 1236; resync with: drwatch db resync mysql"}}, nil},
		}},
		{"purged with autoResync resyncs", Limits{RepairAttempts: 1, AutoResync: true}, []round{
			{0, obs(purged), []events.Event{&events.ReplicationBroken{Database: "mysql", Scope: "cross", Server: "db1", Check: "io_thread", Error: "Got fatal error 1236", Repairable: true}}, []Action{{Resync, "io_thread", 1}}},
		}},
		{"divergence holds and is never repaired", limits, []round{
			{0, obs(div), []events.Event{&events.ReplicationDiverged{Database: "mysql", Server: "db1", Details: []string{"0-2-5"}, ResyncCommand: "resync"}}, []Action{{Hold, "divergence", 0}}},
			{time.Hour, obs(div), nil, nil},
		}},
		{"lag high and recovered on transitions only", limits, []round{
			{0, lag(1, 10), nil, nil},
			{time.Second, lag(31, 10), []events.Event{&events.ReplicationLagHigh{Database: "mysql", Server: "db1", LagSeconds: 31, LagBytes: 10, ThresholdSeconds: 30, ThresholdBytes: 1000}}, nil},
			{2 * time.Second, lag(0, 5000), nil, nil},
			{3 * time.Second, lag(0, 0), []events.Event{&events.ReplicationLagRecovered{Database: "mysql", Server: "db1"}}, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(events.MySQL, tc.limits)
			for i, r := range tc.rounds {
				evs, acts := tr.Step(t0.Add(r.at), r.obs)
				if d := cmp.Diff(r.evs, evs); d != "" {
					t.Errorf("round %d events (-want +got):\n%s", i, d)
				}
				if d := cmp.Diff(r.acts, acts); d != "" {
					t.Errorf("round %d actions (-want +got):\n%s", i, d)
				}
			}
		})
	}
}
