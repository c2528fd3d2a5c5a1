package decide

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// at builds an envelope from site at t0+d; the state is built by folding
// these, so the table exercises the projection as well.
type logEntry struct {
	site events.SiteID
	d    time.Duration
	ev   events.Event
}

// storedAt is an event this site's log stored at a time after t0 other
// than the one its issuer stamped it with.
type storedAt struct {
	events.Event
	at time.Duration
}

func build(t *testing.T, self, peer events.SiteID, role events.Role, log []logEntry) *pair.State {
	t.Helper()
	s := pair.New(self, peer, role, []string{"default"})
	for i, e := range log {
		ev, stored := e.ev, time.Duration(0)
		if w, ok := ev.(storedAt); ok {
			ev, stored = w.Event, w.at
		}
		env, err := events.New(events.Source{Site: e.site, Node: "n", Service: "test"}, ev, t0.Add(e.d), nil)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		env.ID = events.ID("req-" + string(ev.EventType()))
		if stored != 0 {
			env.Stored = t0.Add(stored)
		}
		s.Apply(env)
	}
	return s
}

func role(from, to events.Role, epoch events.Epoch) events.RoleChanged {
	return events.RoleChanged{From: from, To: to, Epoch: epoch, Reason: "test"}
}

func unreachable(peer events.SiteID) events.RemoteUnreachable {
	return events.RemoteUnreachable{Peer: peer, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}
}

// lostAfter is a loss of peer on the default line whose losing round began
// at t0, the peer's last reply d after t0 (d negative: before).
func lostAfter(peer events.SiteID, d time.Duration) events.RemoteUnreachable {
	u := unreachable(peer)
	u.LastReply = t0.Add(d)
	return u
}

func reachable(peer events.SiteID) events.RemoteReachable {
	return events.RemoteReachable{Peer: peer, Line: "default", Target: "vip"}
}

func verdict(r events.Role, a events.Action, branch string) events.ArbitrationDecided {
	return events.ArbitrationDecided{Role: r, Method: "arbiters", Action: a, Branch: branch}
}

func lagHigh(bytes int64) events.ReplicationLagHigh {
	return events.ReplicationLagHigh{Database: events.PgSQL, Server: "pg", LagBytes: bytes}
}

// position is dbmonitor's answer to a position command: PostgreSQL lag in
// bytes, MariaDB in transactions.
func position(db events.Database, bytes, txns int64) events.DatabaseCommandDone {
	return events.DatabaseCommandDone{Command: "position", Database: db, OK: true, Position: "p", LagBytes: bytes, LagTransactions: txns}
}

// mysqlLagHigh is what dbmonitor reports for MariaDB: seconds only.
func mysqlLagHigh(seconds float64) events.ReplicationLagHigh {
	return events.ReplicationLagHigh{Database: events.MySQL, Server: "db", LagSeconds: seconds, ThresholdSeconds: 30}
}

func manual(target events.SiteID, to events.Role, force bool) events.FailoverRequested {
	return events.FailoverRequested{Target: target, ToRole: to, Manual: true, Force: force, Reason: "operator", RequestedBy: "root", Epoch: 1}
}

const (
	A, B    = events.SiteID("a"), events.SiteID("b")
	active  = events.RoleActive
	standby = events.RoleStandby
)

// initial is the pair at rest: a active at epoch 1, b standby.
func initial() []logEntry {
	return []logEntry{
		{A, 0, role(standby, active, 1)},
		{B, 0, role(standby, standby, 0)},
	}
}

func with(entries ...logEntry) []logEntry { return append(initial(), entries...) }

type decideCase struct {
	name    string
	self    events.SiteID
	role    events.Role
	policy  Policy
	log     []logEntry
	now     time.Duration
	action  events.Action
	act     bool
	branch  string
	epoch   events.Epoch
	blocked bool
}

func TestDecide(t *testing.T) {
	def := Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, WaitDuration: 8 * time.Hour}
	expiring := def
	expiring.RequestExpiry, expiring.ClockSkew = 2*time.Minute, 10*time.Second
	observe := def
	observe.ObserveOnly = true
	manualOff := def
	manualOff.Automatic = false
	home := def
	home.Home = true
	homeAuto := home
	homeAuto.FailbackAutomatic = true
	until := t0.Add(30 * time.Minute)
	txns5 := def
	txns5.MaxLagTransactions = 5
	aging := def
	aging.LagMaxAge = 100 * time.Second
	takeover := func(entries ...logEntry) []logEntry {
		return with(append(entries, logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")})...)
	}

	tests := []decideCase{
		// Junos scenarios.
		{name: "active down: standby takes over", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "standby.managed+unreachable<failover")}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "standby down: active stays", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, unreachable(B)}, logEntry{A, 2 * time.Minute, verdict(active, events.ActionNothing, "active.reachable>=failover")}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "link cut, arbiters split: active keeps enough and stays", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, unreachable(B)}, logEntry{A, 2 * time.Minute, verdict(active, events.ActionNothing, "active.reachable>=failover")}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "link cut, arbiters split: standby sees the active manage enough", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionNothing, "standby.managed>=failover")}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "standby.no-verdict"},
		{name: "link cut, standby sees too few arbiters and stays", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionNothing, "standby.reachable<adjustManaged")}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "standby.no-verdict"},
		{name: "active loses arbiters: it stands down", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, unreachable(B)}, logEntry{A, 2 * time.Minute, verdict(active, events.ActionBeStandby, "active.reachable<failover")}),
			now: 3 * time.Minute, action: events.ActionBeStandby, act: true, branch: "active.arbiters-lost", epoch: 1},
		{name: "active loses arbiters with automatic off: stays, blocked", self: A, role: active, policy: manualOff,
			log: with(logEntry{A, time.Minute, unreachable(B)}, logEntry{A, 2 * time.Minute, verdict(active, events.ActionBeStandby, "active.reachable<failover")}),
			now: 3 * time.Minute, action: events.ActionBeStandby, blocked: true, branch: "guard.automatic-off"},
		{name: "both standby: the non-last-active site waits", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, unreachable(A)},
				logEntry{B, 3 * time.Minute, verdict(standby, events.ActionBeActive, "standby.managed+unreachable<failover")}),
			now: time.Hour, action: events.ActionBeActive, blocked: true, branch: "guard.wait-window"},
		{name: "both standby: after waitDuration the other site may take over", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, unreachable(A)},
				logEntry{B, 3 * time.Minute, verdict(standby, events.ActionBeActive, "standby.managed+unreachable<failover")}),
			now: 9 * time.Hour, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "both standby: the last active site comes back at once", self: A, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 3 * time.Minute, verdict(standby, events.ActionBeActive, "standby.managed+unreachable<failover")}),
			now: 4 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 3},
		{name: "both standby: arbiter says wait", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 3 * time.Minute, verdict(standby, events.ActionWait, "both-standby.wait")}),
			now: 4 * time.Minute, action: events.ActionNothing, branch: "standby.wait"},
		{name: "a site reboots: its replayed role holds, nothing to do", self: A, role: standby, policy: def,
			log: with(logEntry{A, time.Hour, reachable(B)}),
			now: 2 * time.Hour, action: events.ActionNothing, branch: "active.stay"},
		{name: "a site reboots after the peer took over: epoch fence", self: A, role: standby, policy: def,
			log: with(logEntry{B, time.Hour, role(standby, active, 2)}),
			now: 2 * time.Hour, action: events.ActionBeStandby, act: true, branch: "epoch.fence", epoch: 2},
		{name: "peer answers again: the old verdict is dropped", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}, logEntry{B, 3 * time.Minute, reachable(A)}),
			now: 4 * time.Minute, action: events.ActionNothing, branch: "standby.peer-reachable"},

		// No heartbeat events yet (a fresh start, heartbeat not running or
		// not configured): the peer counts as reachable until a
		// RemoteUnreachable says otherwise, so a beActive verdict alone
		// never promotes while the peer may be active.
		{name: "no heartbeat events yet: a beActive verdict does not promote", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, verdict(standby, events.ActionBeActive, "standby.managed+unreachable<failover")}),
			now: 2 * time.Minute, action: events.ActionNothing, branch: "standby.peer-reachable"},
		{name: "no heartbeat events and the peer's role unknown: no promotion", self: B, role: standby, policy: def,
			log: []logEntry{{B, 0, role(standby, standby, 0)}, {B, time.Minute, verdict(standby, events.ActionBeActive, "x")}},
			now: 2 * time.Minute, action: events.ActionNothing, branch: "standby.peer-reachable"},
		{name: "the peer's role unknown but unreachable: takes over at its first epoch (2: b takes the even ones)", self: B, role: standby, policy: def,
			log: []logEntry{{B, 0, role(standby, standby, 0)}, {B, time.Minute, unreachable(A)}, {B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}},
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "no heartbeat events, both standby, none ever active: takes over on the verdict", self: B, role: standby, policy: def,
			log: []logEntry{{A, 0, role(standby, standby, 0)}, {B, 0, role(standby, standby, 0)}, {B, time.Minute, verdict(standby, events.ActionBeActive, "x")}},
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "no heartbeat events on the active site: it stays", self: A, role: active, policy: def,
			log: []logEntry{{A, 0, role(standby, active, 1)}},
			now: time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "no heartbeat events, active loses its arbiters: still stands down", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, verdict(active, events.ActionBeStandby, "active.reachable<failover")}),
			now: 2 * time.Minute, action: events.ActionBeStandby, act: true, branch: "active.arbiters-lost", epoch: 1},
		{name: "no heartbeat events, the peer's role unknown: a manual failover proceeds", self: B, role: standby, policy: def,
			log: []logEntry{{B, 0, role(standby, standby, 0)}, {B, time.Minute, manual(B, active, false)}},
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual", epoch: 2},

		// Guards.
		{name: "lag guard blocks automatic promotion", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, lagHigh(5 << 20)}, logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "lag recovered lets it through", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, lagHigh(5 << 20)}, logEntry{B, 30 * time.Second, events.ReplicationLagRecovered{Database: events.PgSQL, Server: "pg", LagBytes: 10}},
				logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		// Each database in its own unit.
		{name: "MariaDB one transaction behind blocks (maxLagTransactions 0)", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 1)}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "MariaDB behind within maxLagTransactions passes", self: B, role: standby, policy: txns5,
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 5)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "MariaDB transactions are not compared with maxLagBytes", self: B, role: standby, policy: Policy{Automatic: true, MaxLagBytes: 1 << 30, WaitDuration: time.Hour},
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 100)}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "MariaDB caught up on a later position answer", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 7)}, logEntry{B, 30 * time.Second, position(events.MySQL, 0, 0)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "MariaDB seconds lag alone does not block", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, mysqlLagHigh(120)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "MariaDB seconds lag keeps the transactions figure", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 3)}, logEntry{B, 10 * time.Second, mysqlLagHigh(120)}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "PostgreSQL bytes from a position answer block", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, position(events.PgSQL, 2<<20, 0)}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "PostgreSQL bytes are not compared with maxLagTransactions", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, position(events.PgSQL, 1000, 0)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "a failed position answer carries no figure", self: B, role: standby, policy: def,
			log: takeover(logEntry{B, 0, events.DatabaseCommandDone{Command: "position", Database: events.MySQL, Error: "down", LagTransactions: 9}}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		// Figures age (LagMaxAge): a LagHigh whose Recovered never came
		// (primary gone) or an old answer stops blocking.
		{name: "an old PostgreSQL LagHigh no longer blocks", self: B, role: standby, policy: aging,
			log: takeover(logEntry{B, 0, lagHigh(5 << 20)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "a PostgreSQL LagHigh within LagMaxAge blocks", self: B, role: standby, policy: aging,
			log: takeover(logEntry{B, 90 * time.Second, lagHigh(5 << 20)}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "an old MariaDB position answer no longer blocks", self: B, role: standby, policy: aging,
			log: takeover(logEntry{B, 0, position(events.MySQL, 0, 4)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "an old figure no longer blocks a manual failover", self: B, role: standby, policy: aging,
			log: with(logEntry{B, 0, position(events.MySQL, 0, 2)}, logEntry{B, 2 * time.Minute, manual(B, active, false)}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual", epoch: 2},
		{name: "manual failover blocked by MariaDB lag", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, position(events.MySQL, 0, 2)}, logEntry{B, time.Minute, manual(B, active, false)}),
			now: 2 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "forced manual failover promotes a lagging MariaDB", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, position(events.MySQL, 0, 2)}, logEntry{B, time.Minute, manual(B, active, true)}),
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual.force", epoch: 2},
		{name: "block window after a failover", self: A, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}},
				logEntry{A, time.Hour, unreachable(B)}, logEntry{A, time.Hour, verdict(standby, events.ActionBeActive, "x")}),
			now: 2 * time.Hour, action: events.ActionBeActive, blocked: true, branch: "guard.block-window"},
		{name: "block window lifted by an acknowledgement", self: A, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}},
				logEntry{B, 30 * time.Minute, events.FailoverAcknowledged{By: "ops", Reason: "ok"}},
				logEntry{A, time.Hour, unreachable(B)}, logEntry{A, time.Hour, verdict(standby, events.ActionBeActive, "x")}),
			now: 2 * time.Hour, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 3},
		{name: "block window ends by itself", self: A, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}},
				logEntry{A, 9 * time.Hour, unreachable(B)}, logEntry{A, 9 * time.Hour, verdict(standby, events.ActionBeActive, "x")}),
			now: 9 * time.Hour, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 3},
		{name: "observe-only decides and never acts", self: B, role: standby, policy: observe,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionBeActive, branch: "standby.takeover", epoch: 2},
		{name: "automatic off by config", self: B, role: standby, policy: manualOff,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "automatic off for 30m: blocked inside", self: B, role: standby, policy: def,
			log: with(logEntry{A, 0, events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "ops"}},
				logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 20 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "automatic off for 30m: on again after", self: B, role: standby, policy: def,
			log: with(logEntry{A, 0, events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "ops"}},
				logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 31 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
		{name: "automatic off then on by an operator", self: B, role: standby, policy: def,
			log: with(logEntry{A, 0, events.AutomaticFailoverChanged{Enabled: false, Reason: "maintenance", By: "ops"}},
				logEntry{A, time.Minute, events.AutomaticFailoverChanged{Enabled: true, Reason: "done", By: "ops"}},
				logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},

		// Requests.
		{name: "manual failover to active from the standby", self: B, role: standby, policy: manualOff,
			log: with(logEntry{B, time.Minute, manual(B, active, false)}),
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual", epoch: 2},
		{name: "manual failover asked on the active side, aimed at the standby", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, manual(B, active, false)}),
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual", epoch: 2},
		{name: "manual failover refused while lagging", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, lagHigh(5 << 20)}, logEntry{B, time.Minute, manual(B, active, false)}),
			now: 2 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.lag"},
		{name: "forced manual failover ignores lag", self: B, role: standby, policy: def,
			log: with(logEntry{B, 0, lagHigh(5 << 20)}, logEntry{B, time.Minute, manual(B, active, true)}),
			now: 2 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual.force", epoch: 2},
		{name: "manual demotion of the active site", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, manual(A, standby, false)}),
			now: 2 * time.Minute, action: events.ActionBeStandby, act: true, branch: "request.manual", epoch: 1},
		{name: "fenced by the peer", self: A, role: active, policy: manualOff,
			log: with(logEntry{B, time.Minute, events.FailoverRequested{Target: A, ToRole: standby, Reason: "fence", RequestedBy: "orchestrator@b", Epoch: 2}}),
			now: 2 * time.Minute, action: events.ActionBeStandby, act: true, branch: "request.fenced", epoch: 1},
		// A fence sent by b's takeover at epoch 2 during a cut reaches a
		// only after a became active again at epoch 3: it must not
		// demote the site that is active now.
		{name: "a stale fence does not demote the active that took over after it", self: A, role: active, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 2 * time.Minute, role(standby, active, 3)},
				logEntry{B, time.Minute, events.FailoverRequested{Target: A, ToRole: standby, Reason: "fence", RequestedBy: "orchestrator@b", Epoch: 2}}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "request.stale"},
		{name: "an operator's request typed before the last takeover is discarded", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 2 * time.Minute, role(standby, active, 3)},
				logEntry{A, 3 * time.Minute, manual(B, active, false)}),
			now: 4 * time.Minute, action: events.ActionNothing, branch: "request.stale"},
		// Found by the simulator (seed 32409): b promoted on an operator's
		// request while a's own promotion was in flight.
		{name: "a request to become active waits out the peer's promotion", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)},
				logEntry{A, 2 * time.Minute, events.FailoverStarted{FailoverID: "fa", From: standby, To: active, Epoch: 3, Reason: "standby.resume", Steps: []string{"claim-arbiters"}}},
				logEntry{B, 3 * time.Minute, events.FailoverRequested{Target: B, ToRole: active, Manual: true, Reason: "operator", RequestedBy: "root", Epoch: 3}}),
			now: 4 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.peer-promoting"},
		{name: "forced, it does not (the peer may have died mid-failover)", self: B, role: standby, policy: def,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)},
				logEntry{A, 2 * time.Minute, events.FailoverStarted{FailoverID: "fa", From: standby, To: active, Epoch: 3, Reason: "standby.resume", Steps: []string{"claim-arbiters"}}},
				logEntry{B, 3 * time.Minute, events.FailoverRequested{Target: B, ToRole: active, Manual: true, Force: true, Reason: "operator", RequestedBy: "root", Epoch: 3}}),
			now: 4 * time.Minute, action: events.ActionBeActive, act: true, branch: "request.manual.force", epoch: 4},
		// Requests hold while their issuer waits for an answer
		// (RequestExpiry), judged by this site's clock where it can.
		{name: "a request received more than its expiry ago is discarded", self: B, role: standby, policy: expiring,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 2 * time.Minute, storedAt{manual(B, active, false), 2 * time.Minute}}),
			now: 5 * time.Minute, action: events.ActionNothing, branch: "request.expired"},
		// A fence sent during a cut by a peer whose clock is right,
		// sourced only after the heal: received now, issued long ago.
		{name: "a request delivered late after a cut is discarded", self: B, role: standby, policy: expiring,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 2 * time.Minute, storedAt{manual(B, active, false), 10 * time.Minute}}),
			now: 10 * time.Minute, action: events.ActionNothing, branch: "request.expired"},
		// Received a moment ago, issued within the expiry plus the skew
		// by its issuer's clock: it acts.
		{name: "a fresh request from a site with a slow clock acts", self: B, role: standby, policy: expiring,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{A, 2 * time.Minute, storedAt{manual(B, active, false), 4*time.Minute + 5*time.Second}}),
			now: 4*time.Minute + 6*time.Second, action: events.ActionBeActive, act: true, branch: "request.manual", epoch: 2},
		{name: "request for the role already held", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, manual(B, standby, false)}),
			now: 2 * time.Minute, action: events.ActionNothing, branch: "request.already"},

		// Failback.
		{name: "failback is manual by default", self: A, role: standby, policy: home,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)}),
			now: 10 * time.Hour, action: events.ActionNothing, branch: "failback.manual"},
		{name: "automatic failback once the window is over", self: A, role: standby, policy: homeAuto,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}}),
			now: 10 * time.Hour, action: events.ActionBeActive, act: true, branch: "failback.automatic", epoch: 3},
		{name: "automatic failback held by the block window", self: A, role: standby, policy: homeAuto,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}}),
			now: time.Hour, action: events.ActionBeActive, blocked: true, branch: "guard.block-window"},

		// Epochs.
		{name: "two actives at one epoch: the greater name yields", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 1)}),
			now: 2 * time.Minute, action: events.ActionBeStandby, act: true, branch: "epoch.fence", epoch: 1},
		{name: "two actives at one epoch: the lesser name stays", self: A, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 1)}),
			now: 2 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		// Found by the chaos harness (seed 101): both stores wiped, both
		// sites standby and in touch, no activation on record anywhere:
		// nobody resumed. The home site does.
		{name: "both standby with no leader on record: the home site resumes", self: A, role: standby, policy: home,
			log: []logEntry{{A, 0, role(standby, standby, 0)}, {B, 0, role(standby, standby, 0)}},
			now: time.Hour, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 1},
		{name: "both standby with no leader on record: the other site does not", self: B, role: standby, policy: def,
			log: []logEntry{{A, 0, role(standby, standby, 0)}, {B, 0, role(standby, standby, 0)}},
			now: time.Hour, action: events.ActionNothing, branch: "standby.no-verdict"},
		// Found by the simulator (seed 12954): the peer restarted on the
		// "active at 3" its log kept from before this site's takeover at
		// 2, and began to stand down; yielding to it demoted the primary
		// serving and lost its writes.
		{name: "a peer at a higher epoch already standing down does not move this site", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 2)}, logEntry{A, 2 * time.Minute, role(standby, active, 3)},
				logEntry{A, 3 * time.Minute, events.FailoverStarted{FailoverID: "a-sd", From: active, To: standby, Epoch: 3, Reason: "restarted without its peer", StandDown: true, Steps: []string{"release-vip"}}}),
			now: 4 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "once it has stood down, nothing either", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 2)}, logEntry{A, 2 * time.Minute, role(standby, active, 3)},
				logEntry{A, 3 * time.Minute, events.FailoverStarted{FailoverID: "a-sd", From: active, To: standby, Epoch: 3, Reason: "restarted without its peer", StandDown: true, Steps: []string{"release-vip"}}},
				logEntry{A, 3 * time.Minute, role(active, standby, 3)}, logEntry{A, 3 * time.Minute, events.FailoverCompleted{FailoverID: "a-sd", Role: standby, Epoch: 3}}),
			now: 4 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "a peer at a higher epoch not standing down: this site yields", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 2)}, logEntry{A, 2 * time.Minute, role(standby, active, 3)}),
			now: 4 * time.Minute, action: events.ActionBeStandby, act: true, branch: "epoch.fence", epoch: 3},
		{name: "the peer active at a lower epoch does not move this site", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, role(standby, active, 2)}),
			now: 2 * time.Minute, action: events.ActionNothing, branch: "active.stay"},
		{name: "an aborted failover is not retried on the same verdict", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")},
				logEntry{B, 3 * time.Minute, events.FailoverStarted{FailoverID: "f9", From: standby, To: active, Epoch: 2, Reason: "x", Steps: []string{"veto"}}},
				logEntry{B, 4 * time.Minute, events.FailoverAborted{FailoverID: "f9", Step: "veto", Reason: "vetoed"}}),
			now: 5 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.aborted"},
		{name: "a new verdict retries an aborted failover", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")},
				logEntry{B, 3 * time.Minute, events.FailoverStarted{FailoverID: "f9", From: standby, To: active, Epoch: 2, Reason: "x", Steps: []string{"veto"}}},
				logEntry{B, 4 * time.Minute, events.FailoverAborted{FailoverID: "f9", Step: "veto", Reason: "vetoed"}},
				logEntry{B, 5 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 6 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 4},
		{name: "a new verdict sooner than RetryAfter after the abort does not retry yet", self: B, role: standby, policy: Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, WaitDuration: 8 * time.Hour, RetryAfter: 2 * time.Minute},
			log: with(logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")},
				logEntry{B, 3 * time.Minute, events.FailoverStarted{FailoverID: "f9", From: standby, To: active, Epoch: 2, Reason: "x", Steps: []string{"claim-arbiters"}}},
				logEntry{B, 4 * time.Minute, events.FailoverAborted{FailoverID: "f9", Step: "claim-arbiters", Reason: "too few sessions"}},
				logEntry{B, 4*time.Minute + time.Second, verdict(standby, events.ActionBeActive, "x")}),
			now: 5 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.aborted"},
		{name: "a running saga holds every decision", self: B, role: standby, policy: def,
			log: with(logEntry{B, time.Minute, events.FailoverStarted{FailoverID: "f9", From: standby, To: active, Epoch: 2, Reason: "x", Steps: []string{"promote"}}},
				logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 3 * time.Minute, action: events.ActionNothing, branch: "saga.running"},
	}
	tests = append(tests, livenessCases(def)...)
	tests = append(tests, switchDuringACutCases(def)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := A
			if tt.self == A {
				peer = B
			}
			s := build(t, tt.self, peer, tt.role, tt.log)
			d := Decide(s, Input{Policy: tt.policy}, t0.Add(tt.now))
			if d.Action != tt.action || d.Act != tt.act || d.Branch != tt.branch || d.Blocked != tt.blocked {
				t.Fatalf("got action=%s act=%v branch=%s blocked=%v (%s); want action=%s act=%v branch=%s blocked=%v",
					d.Action, d.Act, d.Branch, d.Blocked, d.Reason, tt.action, tt.act, tt.branch, tt.blocked)
			}
			if tt.epoch != 0 && d.Epoch != tt.epoch {
				t.Errorf("epoch %d, want %d", d.Epoch, tt.epoch)
			}
			if tt.policy.ObserveOnly && (!d.ObserveOnly || !d.Record()) {
				t.Errorf("observe-only decision not marked for the record: %+v", d)
			}
		})
	}
}

func TestNextEpochIsUniquePerSite(t *testing.T) {
	tests := []struct {
		seen       events.Epoch
		site, peer events.SiteID
		want       events.Epoch
	}{
		{0, "a", "b", 1},
		{0, "b", "a", 2},
		{1, "a", "b", 3},
		{1, "b", "a", 2},
		{2, "a", "b", 3},
		{2, "b", "a", 4},
		{7, "east", "west", 9},
		{7, "west", "east", 8},
	}
	for _, tt := range tests {
		if got := NextEpoch(tt.seen, tt.site, tt.peer); got != tt.want {
			t.Errorf("NextEpoch(%d, %s, %s) = %d, want %d", tt.seen, tt.site, tt.peer, got, tt.want)
		}
	}
	// Behind a cut each site sees only its own epochs: however far each
	// runs ahead, the two never meet.
	a, b := map[events.Epoch]bool{}, map[events.Epoch]bool{}
	var ea, eb events.Epoch
	for range 50 {
		ea, eb = NextEpoch(ea, "a", "b"), NextEpoch(eb, "b", "a")
		a[ea], b[eb] = true, true
	}
	for e := range a {
		if b[e] {
			t.Fatalf("both sites took epoch %d", e)
		}
	}
}

// livenessCases: both sites standby while they hear each other, which no
// verdict will ever change (the heartbeat asks the arbiters only when it
// loses the peer). Before the liveness rule the pair stayed without an
// active site for good unless one had stood down on restart.
func livenessCases(def Policy) []decideCase {
	yield := def
	yield.RestartYield = time.Minute
	off := yield
	off.Automatic = false
	// a was active at epoch 1; b's switchover at epoch 2 fenced it, then
	// aborted at check-position: both standby, in touch.
	aborted := with(
		logEntry{B, time.Minute, events.FailoverStarted{FailoverID: "f2", From: standby, To: active, Epoch: 2, Reason: "switch", Steps: []string{"fence-peer", "check-position"}}},
		logEntry{A, 2 * time.Minute, role(active, standby, 1)},
		logEntry{B, 3 * time.Minute, events.FailoverAborted{FailoverID: "f2", Step: "check-position", Reason: "lag"}},
	)
	return []decideCase{
		{name: "liveness: both standby and in touch, the last active waits RestartYield", self: A, role: standby, policy: yield,
			log: aborted, now: 2*time.Minute + 30*time.Second, action: events.ActionNothing, branch: "standby.resume-wait"},
		{name: "liveness: both standby and in touch, the last active becomes active again", self: A, role: standby, policy: yield,
			log: aborted, now: 4 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 3},
		{name: "liveness: the other site does not", self: B, role: standby, policy: yield,
			log: aborted, now: 4 * time.Minute, action: events.ActionNothing, branch: "standby.no-verdict"},
		{name: "liveness: not while the peer's failover runs", self: A, role: standby, policy: yield,
			log: append(with(logEntry{A, 2 * time.Minute, role(active, standby, 1)}),
				logEntry{B, 2 * time.Minute, events.FailoverStarted{FailoverID: "f2", From: standby, To: active, Epoch: 2, Reason: "switch", Steps: []string{"promote-pgsql"}}}),
			now: 10 * time.Minute, action: events.ActionNothing, branch: "standby.resume-wait"},
		{name: "liveness: the block window does not hold it back", self: B, role: standby, policy: yield,
			log: with(logEntry{A, time.Minute, role(active, standby, 1)}, logEntry{B, 2 * time.Minute, role(standby, active, 2)},
				logEntry{B, 2 * time.Minute, events.FailoverCompleted{FailoverID: "f1", Role: active, Epoch: 2}},
				logEntry{B, 10 * time.Minute, role(active, standby, 2)}),
			now: 12 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 4},
		{name: "liveness: automatic off holds it, recorded", self: A, role: standby, policy: off,
			log: aborted, now: 4 * time.Minute, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "liveness: last active is the highest epoch, not the last event read", self: B, role: standby, policy: yield,
			log: with(logEntry{B, time.Minute, role(standby, active, 2)}, logEntry{B, 2 * time.Minute, role(active, standby, 2)},
				// a's old activation at epoch 1 arrives late through the source.
				logEntry{A, 3 * time.Minute, role(standby, active, 1)}, logEntry{A, 3 * time.Minute, role(active, standby, 2)}),
			now: 5 * time.Minute, action: events.ActionBeActive, act: true, branch: "standby.resume", epoch: 4},
	}
}

// switchDuringACutCases: the pair-wide automatic switch must read the
// same on both sides of a cut. Before, an operator turning automatic
// failover off on the active site during a cut kept it active on a
// beStandby verdict while the peer, which never got the switch, took
// over: two actives for the whole cut (safety-core path 10).
func switchDuringACutCases(def Policy) []decideCase {
	p := def
	p.ClockSkew = 10 * time.Second
	until := t0.Add(30 * time.Minute)
	off := events.AutomaticFailoverChanged{Enabled: false, Reason: "maintenance", By: "ops"}
	offUntil := events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "ops"}
	lost := func(entries ...logEntry) []logEntry {
		// a last heard b at t0 (unreachable's Since).
		return with(append(entries, logEntry{A, time.Minute, unreachable(B)}, logEntry{A, 2 * time.Minute, verdict(active, events.ActionBeStandby, "active.reachable<failover")})...)
	}
	return []decideCase{
		{name: "switch: off recorded on the active during the cut does not keep it active", self: A, role: active, policy: p,
			log: lost(logEntry{A, 90 * time.Second, off}), now: 3 * time.Minute,
			action: events.ActionBeStandby, act: true, branch: "active.arbiters-lost", epoch: 1},
		{name: "switch: off recorded on the active before the cut keeps it active", self: A, role: active, policy: p,
			log: lost(logEntry{A, -time.Minute, off}), now: 3 * time.Minute,
			action: events.ActionBeStandby, blocked: true, branch: "guard.automatic-off"},
		{name: "switch: off recorded on the peer keeps it active", self: A, role: active, policy: p,
			log: lost(logEntry{B, 90 * time.Second, off}), now: 3 * time.Minute,
			action: events.ActionBeStandby, blocked: true, branch: "guard.automatic-off"},
		// The peer answered last 30 s before the round that lost it
		// began (Since, t0): a switch recorded 20 s before Since came
		// after the last reply, so the peer never got it.
		{name: "switch: off recorded after the last reply, before the losing round, does not keep it active", self: A, role: active, policy: p,
			log: with(logEntry{A, -20 * time.Second, off}, logEntry{A, time.Minute, lostAfter(B, -30*time.Second)},
				logEntry{A, 2 * time.Minute, verdict(active, events.ActionBeStandby, "active.reachable<failover")}), now: 3 * time.Minute,
			action: events.ActionBeStandby, act: true, branch: "active.arbiters-lost", epoch: 1},
		{name: "switch: a timed disable ends skew early for the active", self: A, role: active, policy: p,
			log: lost(logEntry{B, -time.Minute, offUntil}), now: 29*time.Minute + 55*time.Second,
			action: events.ActionBeStandby, act: true, branch: "active.arbiters-lost", epoch: 1},
		{name: "switch: a timed disable ends skew late for the standby", self: B, role: standby, policy: p,
			log: with(logEntry{B, -time.Minute, offUntil}, logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 30*time.Minute + 5*time.Second, action: events.ActionBeActive, blocked: true, branch: "guard.automatic-off"},
		{name: "switch: and then it is over for the standby too", self: B, role: standby, policy: p,
			log: with(logEntry{B, -time.Minute, offUntil}, logEntry{B, time.Minute, unreachable(A)}, logEntry{B, 2 * time.Minute, verdict(standby, events.ActionBeActive, "x")}),
			now: 30*time.Minute + 11*time.Second, action: events.ActionBeActive, act: true, branch: "standby.takeover", epoch: 2},
	}
}
