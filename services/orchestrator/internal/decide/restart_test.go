package decide

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

func TestRestart(t *testing.T) {
	type peer struct {
		role  events.Role
		epoch events.Epoch
	}
	var (
		none          = peer{}
		peerStandby   = peer{standby, 0}
		peerTookOver  = peer{active, 2}
		peerActiveOld = peer{active, 1} // same epoch: the lower site name wins the fence
	)
	tests := []struct {
		name      string
		role      events.Role
		saga      bool
		knowledge PeerKnowledge
		automatic bool
		peer      peer
		want      RestartAction
		warn      bool
		// promoting: the peer's promotion is in this log, not ended;
		// stuck: for longer than a takeover may take.
		promoting, stuck bool
	}{
		// The bug the partition fuzzer found: the peer took over while
		// this site's process was down, then the link was cut.
		{"unreachable, automatic on, peer standby in this log", active, false, PeerUnreachable, true, peerStandby, RestartStandDown, false, false, false},
		{"unreachable, automatic on, peer without a role", active, false, PeerUnreachable, true, none, RestartStandDown, false, false, false},
		{"unreachable, automatic off: nobody would promote it back", active, false, PeerUnreachable, false, peerStandby, RestartResume, true, false, false},
		{"unreachable, automatic off, peer without a role", active, false, PeerUnreachable, false, none, RestartResume, true, false, false},
		// A takeover already in the log: the decision loop's epoch fence
		// stands it down, whatever automatic says; the hold lasts till then.
		{"unreachable, peer active at a newer epoch", active, false, PeerUnreachable, true, peerTookOver, RestartHold, false, false, false},
		{"unreachable, automatic off, peer active at a newer epoch", active, false, PeerUnreachable, false, peerTookOver, RestartHold, false, false, false},
		{"reachable, peer active at a newer epoch", active, false, PeerLearned, true, peerTookOver, RestartHold, false, false, false},
		{"pending, peer active at a newer epoch", active, false, PeerPending, true, peerTookOver, RestartHold, false, false, false},
		{"unknown, peer active at a newer epoch", active, false, PeerUnknown, true, peerTookOver, RestartHold, false, false, false},
		{"reachable, peer active at the same epoch, tie won by this site", active, false, PeerLearned, true, peerActiveOld, RestartResume, false, false, false},
		// The peer answers and is standby: this site stays active.
		{"reachable, peer standby", active, false, PeerLearned, true, peerStandby, RestartResume, false, false, false},
		{"reachable, automatic off, peer standby", active, false, PeerLearned, false, peerStandby, RestartResume, false, false, false},
		{"reachable, peer without a role", active, false, PeerLearned, true, none, RestartResume, false, false, false},
		// Nothing learned within StartupHold.
		{"unknown, automatic on", active, false, PeerUnknown, true, peerStandby, RestartResume, true, false, false},
		{"unknown, automatic off", active, false, PeerUnknown, false, none, RestartResume, true, false, false},
		{"pending, automatic on", active, false, PeerPending, true, peerStandby, RestartHold, false, false, false},
		{"pending, automatic off", active, false, PeerPending, false, none, RestartHold, false, false, false},
		// The role moved on (a fence, a stand-down already recorded).
		{"already standby", standby, false, PeerUnreachable, true, peerStandby, RestartResume, false, false, false},
		{"already standby, pending", standby, false, PeerPending, true, peerTookOver, RestartResume, false, false, false},
		{"a saga runs: its end settles the role", active, true, PeerUnreachable, true, peerStandby, RestartHold, false, false, false},
		{"a saga ran to standby", standby, false, PeerUnreachable, true, peerStandby, RestartResume, false, false, false},
		// Found by the simulator (seeds 1987, 2790): the peer's takeover
		// is in flight, its last RoleChanged still standby; resuming made
		// two primaries.
		{"reachable, peer standby but promoting: hold", active, false, PeerLearned, true, peerStandby, RestartHold, false, true, false},
		{"unknown, peer promoting: hold", active, false, PeerUnknown, true, peerStandby, RestartHold, false, true, false},
		{"peer promoting for longer than a takeover may: resume, claim-gated", active, false, PeerLearned, true, peerStandby, RestartResume, true, true, true},
		{"unreachable, peer promoting: stand down as for any lost peer", active, false, PeerUnreachable, true, peerStandby, RestartStandDown, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Restart(RestartInput{
				Site: A, Peer: B, Role: tt.role, Epoch: 1, SagaRunning: tt.saga, Knowledge: tt.knowledge,
				PeerRole: tt.peer.role, PeerEpoch: tt.peer.epoch, Automatic: tt.automatic,
				PeerPromoting: tt.promoting, PeerPromotingStuck: tt.stuck,
			})
			if d.Action != tt.want || d.Warn != tt.warn {
				t.Errorf("Restart = %s warn=%v (%s), want %s warn=%v", d.Action, d.Warn, d.Reason, tt.want, tt.warn)
			}
			if d.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// TestDecideAfterRestartStandDown: what both sites decide after a site
// restarted active without its peer and stood down (decide.Restart), so
// that one of them, and only one, becomes active again.
func TestDecideAfterRestartStandDown(t *testing.T) {
	const yield = 2 * time.Minute
	def := Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, WaitDuration: 8 * time.Hour, RestartYield: yield}
	off := def
	off.Automatic = false
	// a stands down at 10m, its heartbeat having lost b at 9m.
	stoodDown := func(entries ...logEntry) []logEntry {
		return with(append([]logEntry{
			{A, 9 * time.Minute, unreachable(B)},
			{A, 10 * time.Minute, events.FailoverStarted{FailoverID: "sd", From: active, To: standby, Epoch: 1, Reason: pair.RestartStandDownReason, StandDown: true, Steps: []string{"release-vip"}}},
			{A, 10 * time.Minute, events.RoleChanged{From: active, To: standby, Epoch: 1, Reason: pair.RestartStandDownReason, FailoverID: "sd"}},
			{A, 10 * time.Minute, events.FailoverCompleted{FailoverID: "sd", Role: standby, Epoch: 1}},
		}, entries...)...)
	}
	beActive := verdict(standby, events.ActionBeActive, "standby.failover")
	tests := []struct {
		name    string
		self    events.SiteID
		policy  Policy
		log     []logEntry
		now     time.Duration
		action  events.Action
		act     bool
		branch  string
		epoch   events.Epoch
		blocked bool
	}{
		// The site that stood down (a).
		{name: "a verdict within the yield does not promote: the peer may be taking over on one of the same moment",
			self: A, policy: def, log: stoodDown(logEntry{A, 11 * time.Minute, beActive}),
			now: 11 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.restart-yield"},
		// Epoch 3: a's next odd epoch (b takes the even ones, 2 among
		// them, behind the cut).
		{name: "a verdict after the yield promotes it at a new epoch; the wait window lets the site active last through",
			self: A, policy: def, log: stoodDown(logEntry{A, 13 * time.Minute, beActive}),
			now: 13 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 3},
		{name: "automatic turned off after the stand-down: blocked",
			self: A, policy: def, log: stoodDown(logEntry{B, 11 * time.Minute, events.AutomaticFailoverChanged{Enabled: false, Reason: "maintenance", By: "root"}},
				logEntry{A, 13 * time.Minute, beActive}),
			now: 13 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "the peer took over and manages the arbiters: stays standby",
			self: A, policy: def, log: stoodDown(logEntry{A, 13 * time.Minute, verdict(standby, events.ActionNothing, "standby.managed>=failover")}),
			now: 13 * time.Minute, action: events.ActionNothing, branch: "standby.no-verdict"},
		{name: "the peer's takeover reaches the log: stays standby, no fence needed",
			self: A, policy: def, log: stoodDown(logEntry{B, 10 * time.Minute, role(standby, active, 2)}, logEntry{A, 13 * time.Minute, reachable(B)}),
			now: 14 * time.Minute, action: events.ActionNothing, branch: "standby.peer-reachable"},
		// The link heals before arbitration promoted anyone: both standby
		// and the peer answers, so the arbiters are no longer asked.
		{name: "both standby and the peer answers, within the yield: waits",
			self: A, policy: def, log: stoodDown(logEntry{A, 11 * time.Minute, reachable(B)}),
			now: 11 * time.Minute, action: events.ActionNothing, branch: "standby.resume-wait"},
		{name: "both standby and the peer answers, after the yield: the site active last resumes",
			self: A, policy: def, log: stoodDown(logEntry{A, 11 * time.Minute, reachable(B)}),
			now: 13 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 3},
		// The heartbeat hears b before the source brought b's log: b's
		// "standby" may be stale for a while.
		{name: "the peer answers again after the yield: waits as long again",
			self: A, policy: def, log: stoodDown(logEntry{A, 20 * time.Minute, reachable(B)}),
			now: 21 * time.Minute, action: events.ActionNothing, branch: "standby.resume-wait"},
		{name: "the peer answers again after the yield, then the yield passes: resumes",
			self: A, policy: def, log: stoodDown(logEntry{A, 20 * time.Minute, reachable(B)}),
			now: 22 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 3},
		{name: "both standby and the peer answers, automatic off: blocked",
			self: A, policy: off, log: stoodDown(logEntry{A, 11 * time.Minute, reachable(B)}),
			now: 13 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "a later stand-down of any kind: the liveness rule still brings the last active back",
			self: A, policy: def, log: stoodDown(logEntry{A, 12 * time.Minute, role(standby, active, 3)}, logEntry{A, 13 * time.Minute, role(active, standby, 3)},
				logEntry{A, 14 * time.Minute, reachable(B)}),
			now: 40 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 5},

		// The other site (b).
		{name: "b still sees a active (the stand-down is behind the cut): takes over on its verdict",
			self: B, policy: def, log: with(logEntry{B, 9 * time.Minute, unreachable(A)}, logEntry{B, 10 * time.Minute, beActive}),
			now: 10 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "b knows a stood down and is cut off: a was active last and has the wait window",
			self: B, policy: def, log: stoodDown(logEntry{B, 11 * time.Minute, unreachable(A)}, logEntry{B, 12 * time.Minute, beActive}),
			now: 12 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.wait-window"},
		{name: "b knows a stood down, after waitDuration: takes over",
			self: B, policy: def, log: stoodDown(logEntry{B, 11 * time.Minute, unreachable(A)}, logEntry{B, 9 * time.Hour, beActive}),
			now: 9 * time.Hour, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "b hears a again, both standby: not blocked, a resumes",
			self: B, policy: def, log: stoodDown(logEntry{B, 11 * time.Minute, reachable(A)}),
			now: 13 * time.Minute, action: events.ActionNothing, branch: "standby.no-verdict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := B
			if tt.self == B {
				peer = A
			}
			s := build(t, tt.self, peer, standby, tt.log)
			d := Decide(s, Input{Policy: tt.policy}, t0.Add(tt.now))
			if d.Action != tt.action || d.Act != tt.act || d.Branch != tt.branch || d.Blocked != tt.blocked || (tt.act && d.Epoch != tt.epoch) {
				t.Errorf("Decide = %s act=%v branch=%s blocked=%v epoch=%d (%s); want %s act=%v branch=%s blocked=%v epoch=%d",
					d.Action, d.Act, d.Branch, d.Blocked, d.Epoch, d.Reason, tt.action, tt.act, tt.branch, tt.blocked, tt.epoch)
			}
		})
	}
}
