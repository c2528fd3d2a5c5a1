package decide

import (
	"slices"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

func repoint(db events.Database, epoch events.Epoch) events.DatabaseCommand {
	return events.DatabaseCommand{Command: "repoint", Database: db, Target: A, PrimaryHost: "b-db", PrimaryPort: 3306, FailoverID: pair.FollowID(epoch), FollowEpoch: epoch}
}

func repointDone(db events.Database, epoch events.Epoch, ok bool) events.DatabaseCommandDone {
	d := events.DatabaseCommandDone{Command: "repoint", Database: db, OK: ok, FailoverID: pair.FollowID(epoch), FollowEpoch: epoch}
	if !ok {
		d.Error = "connection refused"
	}
	return d
}

// TestFollow: a former active site that comes back as standby re-points
// its databases at the active peer once per peer epoch (scenario 6 of the
// end-to-end suite: site a back after b took over).
func TestFollow(t *testing.T) {
	policy := FollowPolicy{Retry: 30 * time.Second, AnswerTimeout: 2 * time.Minute, MaxAttempts: 3}
	dbs := []events.Database{events.MySQL, events.PgSQL}
	// a was active at epoch 1, b took over at epoch 2, a stood down.
	returned := []logEntry{
		{A, 0, role(events.RoleActive, events.RoleActive, 1)},
		{B, 0, role(events.RoleStandby, events.RoleStandby, 0)},
		{B, time.Minute, role(events.RoleStandby, events.RoleActive, 2)},
		{A, 2 * time.Minute, role(events.RoleActive, events.RoleStandby, 2)},
	}
	with := func(more ...logEntry) []logEntry { return append(slices.Clone(returned), more...) }
	tests := []struct {
		name string
		role events.Role
		log  []logEntry
		at   time.Duration
		want []events.Database
	}{
		{"returned standby follows the new active", events.RoleActive, returned, 3 * time.Minute, dbs},
		{"a site never active is left alone", events.RoleStandby, []logEntry{
			{B, 0, role(events.RoleStandby, events.RoleStandby, 0)},
			{A, 0, role(events.RoleActive, events.RoleActive, 1)},
		}, time.Minute, nil},
		{"still active: nothing", events.RoleActive, returned[:3], 3 * time.Minute, nil},
		{"peer unreachable: wait for it", events.RoleActive, with(logEntry{A, 150 * time.Second, unreachable(B)}), 3 * time.Minute, nil},
		{"peer back: follow", events.RoleActive, with(logEntry{A, 150 * time.Second, unreachable(B)}, logEntry{A, 160 * time.Second, reachable(B)}), 3 * time.Minute, dbs},
		{"issued, no answer yet", events.RoleActive, with(logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}), 4 * time.Minute, []events.Database{events.PgSQL}},
		{"issued, no answer for too long: again", events.RoleActive, with(logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}), 6 * time.Minute, dbs},
		{"done: not again", events.RoleActive, with(logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 3*time.Minute + time.Second, repointDone(events.MySQL, 2, true)}), time.Hour, []events.Database{events.PgSQL}},
		{"failed: retried after Retry", events.RoleActive, with(logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 3 * time.Minute, repointDone(events.MySQL, 2, false)}), 3*time.Minute + 10*time.Second, []events.Database{events.PgSQL}},
		{"failed: retried", events.RoleActive, with(logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 3 * time.Minute, repointDone(events.MySQL, 2, false)}), 4 * time.Minute, dbs},
		{"failed MaxAttempts times: an operator's turn", events.RoleActive, with(
			logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 3 * time.Minute, repointDone(events.MySQL, 2, false)},
			logEntry{A, 4 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 4 * time.Minute, repointDone(events.MySQL, 2, false)},
			logEntry{A, 5 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 5 * time.Minute, repointDone(events.MySQL, 2, false)},
		), time.Hour, []events.Database{events.PgSQL}},
		{"done for an older epoch: follow the new one", events.RoleActive, with(
			logEntry{A, 3 * time.Minute, repoint(events.MySQL, 2)}, logEntry{A, 3 * time.Minute, repointDone(events.MySQL, 2, true)},
			logEntry{B, 4 * time.Minute, role(events.RoleActive, events.RoleActive, 4)},
		), 5 * time.Minute, dbs},
		{"an answer for an older epoch does not count", events.RoleActive, with(
			logEntry{B, 150 * time.Second, role(events.RoleActive, events.RoleActive, 3)},
			logEntry{A, 3 * time.Minute, repoint(events.MySQL, 3)}, logEntry{A, 3 * time.Minute, repointDone(events.MySQL, 2, true)},
		), 4 * time.Minute, []events.Database{events.PgSQL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := build(t, A, B, tt.role, tt.log)
			got := Follow(s, dbs, policy, t0.Add(tt.at))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Follow = %v, want %v (follow state %+v)", got, tt.want, s.Follow)
			}
		})
	}
}
