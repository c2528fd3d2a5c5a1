package pair

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestPeerUnreachableCountsConfiguredLines(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	down := func(line string) events.Event {
		return events.RemoteUnreachable{Peer: "b", Line: line, Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}
	}
	up := func(line string) events.Event { return events.RemoteReachable{Peer: "b", Line: line, Target: "vip"} }
	tests := []struct {
		name  string
		lines []string
		log   []events.Event
		want  bool
	}{
		{"nothing heard", []string{"default"}, nil, false},
		{"the only line down", []string{"default"}, []events.Event{down("default")}, true},
		{"down then back", []string{"default"}, []events.Event{down("default"), up("default")}, false},
		{"both lines down", []string{"wan1", "wan2"}, []events.Event{down("wan1"), down("wan2")}, true},
		// A line up since the heartbeat started has announced nothing.
		{"one down, the other never heard from", []string{"wan1", "wan2"}, []events.Event{down("wan1")}, false},
		// A removed line that was up last would hold every failover back.
		{"a removed line last up is not counted", []string{"default"}, []events.Event{up("removed"), down("default")}, true},
		// A removed line that was down last must not count towards one.
		{"a removed line last down is not counted", []string{"default", "wan1"}, []events.Event{down("removed"), down("default")}, false},
		{"no line configured", nil, []events.Event{down("default")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("a", "b", events.RoleStandby, tt.lines)
			for _, ev := range tt.log {
				env, err := events.New(events.Source{Site: "a", Node: "n", Service: "heartbeat"}, ev, t0, nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Apply(env)
			}
			if got := s.PeerUnreachable(); got != tt.want {
				t.Errorf("PeerUnreachable = %v, want %v (lines %v)", got, tt.want, s.Lines)
			}
		})
	}
}

func TestInSyncEachDatabaseInItsUnit(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	lim := LagLimits{MaxBytes: 1 << 20, MaxTransactions: 0}
	pos := func(db events.Database, bytes, txns int64) events.Event {
		return events.DatabaseCommandDone{Command: "position", Database: db, OK: true, Position: "p", LagBytes: bytes, LagTransactions: txns}
	}
	high := func(db events.Database, bytes int64, secs float64) events.Event {
		return events.ReplicationLagHigh{Database: db, Server: "s", LagBytes: bytes, LagSeconds: secs}
	}
	recovered := func(db events.Database, bytes int64) events.Event {
		return events.ReplicationLagRecovered{Database: db, Server: "s", LagBytes: bytes}
	}
	tests := []struct {
		name string
		lim  LagLimits
		log  []events.Event
		site events.SiteID // who published; "" = this site
		// age is how long after the last event InSync is asked (events
		// are one second apart from t0); 0 = one second after.
		age  time.Duration
		want bool
		out  OutOfSync
	}{
		{name: "nothing reported", lim: lim, want: true},
		{name: "pg lag event over maxLagBytes", lim: lim, log: []events.Event{high(events.PgSQL, 2<<20, 3)},
			out: OutOfSync{Database: events.PgSQL, Lag: 2 << 20, Limit: 1 << 20, Unit: "bytes", Field: "failover.maxLagBytes"}},
		{name: "pg exactly at maxLagBytes", lim: lim, log: []events.Event{high(events.PgSQL, 1<<20, 3)}, want: true},
		{name: "pg recovered", lim: lim, log: []events.Event{high(events.PgSQL, 2<<20, 3), recovered(events.PgSQL, 10)}, want: true},
		{name: "pg position answer", lim: lim, log: []events.Event{pos(events.PgSQL, 5<<20, 0)},
			out: OutOfSync{Database: events.PgSQL, Lag: 5 << 20, Limit: 1 << 20, Unit: "bytes", Field: "failover.maxLagBytes"}},
		{name: "mysql one transaction behind", lim: lim, log: []events.Event{pos(events.MySQL, 0, 1)},
			out: OutOfSync{Database: events.MySQL, Lag: 1, Limit: 0, Unit: "transactions", Field: "failover.maxLagTransactions"}},
		{name: "mysql within maxLagTransactions", lim: LagLimits{MaxBytes: 1 << 20, MaxTransactions: 3}, log: []events.Event{pos(events.MySQL, 0, 3)}, want: true},
		// A million transactions are under a 1 MiB byte threshold: the
		// two units must never meet.
		{name: "mysql transactions not judged in bytes", lim: LagLimits{MaxBytes: 1 << 30}, log: []events.Event{pos(events.MySQL, 0, 1000)},
			out: OutOfSync{Database: events.MySQL, Lag: 1000, Limit: 0, Unit: "transactions", Field: "failover.maxLagTransactions"}},
		{name: "pg bytes not judged in transactions", lim: LagLimits{MaxBytes: 1 << 20, MaxTransactions: 0}, log: []events.Event{pos(events.PgSQL, 4096, 0)}, want: true},
		{name: "mysql seconds lag only: no transaction figure", lim: lim, log: []events.Event{high(events.MySQL, 0, 300)}, want: true},
		{name: "mysql lag event keeps the last transaction figure", lim: lim, log: []events.Event{pos(events.MySQL, 0, 4), recovered(events.MySQL, 0)},
			out: OutOfSync{Database: events.MySQL, Lag: 4, Limit: 0, Unit: "transactions", Field: "failover.maxLagTransactions"}},
		{name: "mysql caught up on the next answer", lim: lim, log: []events.Event{pos(events.MySQL, 0, 4), pos(events.MySQL, 0, 0)}, want: true},
		{name: "a failed position answer is no figure", lim: lim,
			log: []events.Event{events.DatabaseCommandDone{Command: "position", Database: events.MySQL, Error: "no primary", LagTransactions: 4}}, want: true},
		{name: "another command's answer is no figure", lim: lim,
			log: []events.Event{events.DatabaseCommandDone{Command: "promote", Database: events.PgSQL, OK: true, LagBytes: 9 << 20}}, want: true},
		// Figures age: transition-only events and one-off answers may
		// describe a replica that has long caught up.
		{name: "pg figure at MaxAge still blocks", lim: LagLimits{MaxBytes: 1 << 20, MaxAge: 100 * time.Second}, age: 100 * time.Second,
			log: []events.Event{high(events.PgSQL, 2<<20, 3)},
			out: OutOfSync{Database: events.PgSQL, Lag: 2 << 20, Limit: 1 << 20, Unit: "bytes", Field: "failover.maxLagBytes"}},
		{name: "pg figure older than MaxAge no longer blocks", lim: LagLimits{MaxBytes: 1 << 20, MaxAge: 100 * time.Second}, age: 101 * time.Second,
			log: []events.Event{high(events.PgSQL, 2<<20, 3)}, want: true},
		{name: "mysql answer older than MaxAge no longer blocks", lim: LagLimits{MaxAge: 100 * time.Second}, age: 101 * time.Second,
			log: []events.Event{pos(events.MySQL, 0, 4)}, want: true},
		{name: "MaxAge 0: figures never age", lim: lim, age: 1000 * time.Hour, log: []events.Event{pos(events.MySQL, 0, 4)},
			out: OutOfSync{Database: events.MySQL, Lag: 4, Limit: 0, Unit: "transactions", Field: "failover.maxLagTransactions"}},
		{name: "a mysql seconds event does not refresh the transaction figure", lim: LagLimits{MaxAge: 100 * time.Second}, age: 100 * time.Second,
			log: append([]events.Event{pos(events.MySQL, 0, 4)}, repeat(high(events.MySQL, 0, 300), 50)...), want: true},
		{name: "an aged figure then a fresh one blocks", lim: LagLimits{MaxBytes: 1 << 20, MaxAge: 10 * time.Second},
			log: append(append([]events.Event{pos(events.PgSQL, 9<<20, 0)}, repeat(recovered(events.MySQL, 0), 20)...), pos(events.PgSQL, 3<<20, 0)),
			out: OutOfSync{Database: events.PgSQL, Lag: 3 << 20, Limit: 1 << 20, Unit: "bytes", Field: "failover.maxLagBytes"}},
		{name: "the peer's lag is not this site's", lim: lim, site: "b", log: []events.Event{pos(events.MySQL, 0, 4), high(events.PgSQL, 9<<20, 1)}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("a", "b", events.RoleStandby, []string{"default"})
			site := tt.site
			if site == "" {
				site = "a"
			}
			for i, ev := range tt.log {
				env, err := events.New(events.Source{Site: site, Node: "n", Service: "dbmonitor"}, ev, t0.Add(time.Duration(i)*time.Second), nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Apply(env)
			}
			age := tt.age
			if age == 0 {
				age = time.Second
			}
			now := t0.Add(time.Duration(max(len(tt.log)-1, 0))*time.Second + age)
			ok, out := s.InSync(tt.lim, now)
			if ok != tt.want || out != tt.out {
				t.Errorf("InSync = %v, %+v; want %v, %+v", ok, out, tt.want, tt.out)
			}
		})
	}
}

func repeat(ev events.Event, n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = ev
	}
	return out
}

// TestOwnsLineage: whether this site's server holds the pair's latest
// history, so that following no primary is not a reason to refuse it.
func TestOwnsLineage(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	type entry struct {
		site events.SiteID
		ev   events.Event
	}
	role := func(to events.Role, epoch events.Epoch, id string) events.Event {
		return events.RoleChanged{From: events.RoleStandby, To: to, Epoch: epoch, Reason: "x", FailoverID: id}
	}
	started := func(id string, epoch events.Epoch) events.Event {
		return events.FailoverStarted{FailoverID: id, From: events.RoleStandby, To: events.RoleActive, Epoch: epoch, Reason: "x", Steps: []string{"promote-pgsql"}}
	}
	promoted := func(id string) events.Event {
		return events.DatabaseCommandDone{Command: "promote", Database: events.PgSQL, OK: true, Position: "0/1", FailoverID: id}
	}
	aborted := func(id string) events.Event {
		return events.FailoverAborted{FailoverID: id, Step: "take-vip", Reason: "x"}
	}
	tests := []struct {
		name string
		log  []entry
		want bool
	}{
		{"never active", []entry{{"b", role(events.RoleActive, 2, "")}}, false},
		{"active last", []entry{{"b", role(events.RoleActive, 2, "")}, {"a", role(events.RoleActive, 3, "f")}}, true},
		{"the peer active since", []entry{{"a", role(events.RoleActive, 1, "")}, {"b", role(events.RoleActive, 2, "")}}, false},
		{"own aborted promotion promoted it, no activation since", []entry{{"b", role(events.RoleActive, 2, "")},
			{"a", started("f3", 3)}, {"a", promoted("f3")}, {"a", aborted("f3")}}, true},
		{"own aborted promotion, the peer promoted at a higher epoch since", []entry{{"b", role(events.RoleActive, 2, "")},
			{"a", started("f3", 3)}, {"a", promoted("f3")}, {"a", aborted("f3")}, {"b", started("f4", 4)}, {"b", promoted("f4")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("a", "b", events.RoleStandby, []string{"default"})
			for _, e := range tt.log {
				env, err := events.New(events.Source{Site: e.site, Node: "n", Service: "orchestrator"}, e.ev, t0, nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Apply(env)
			}
			if got := s.OwnsLineage(events.PgSQL); got != tt.want {
				t.Errorf("OwnsLineage = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLeaderFromTheLatestRolesAlone: a store that lost its log keeps only
// each site's latest RoleChanged (the ROLES stream); the leader read from
// those must be the one the whole log names, or the two sites' liveness
// rules disagree and neither resumes. Before RoleChanged carried Lineage,
// a's stand-down at epoch 3 and b's standby at epoch 2 named no leader.
func TestLeaderFromTheLatestRolesAlone(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	type entry struct {
		site events.SiteID
		rc   events.RoleChanged
	}
	rc := func(from, to events.Role, epoch, lineage events.Epoch) events.RoleChanged {
		return events.RoleChanged{From: from, To: to, Epoch: epoch, Reason: "x", Lineage: lineage}
	}
	const active, standby = events.RoleActive, events.RoleStandby
	log := []entry{
		{"a", rc(standby, active, 1, 1)},
		{"a", rc(active, standby, 1, 1)},
		{"b", rc(standby, active, 2, 2)},
		{"b", rc(active, standby, 2, 2)},
		{"a", rc(standby, active, 3, 3)},
		{"a", rc(active, standby, 3, 3)}, // a restart's stand-down
	}
	fold := func(entries []entry) *State {
		s := New("a", "b", standby, []string{"default"})
		for _, e := range entries {
			env, err := events.New(events.Source{Site: e.site, Node: "n", Service: "orchestrator"}, e.rc, t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Apply(env)
		}
		return s
	}
	latest := map[events.SiteID]entry{}
	for _, e := range log {
		latest[e.site] = e
	}
	full, kept := fold(log), fold([]entry{latest["b"], latest["a"]})
	if full.Leader() != "a" || kept.Leader() != full.Leader() {
		t.Errorf("leader from the whole log %q, from the latest roles alone %q; want a from both", full.Leader(), kept.Leader())
	}
}

// TestBlockWindowOpensOnlyOnAutomaticFailovers: a failover an operator
// asked for needs no acknowledgement; an automatic one blocks the next
// automatic one until acknowledged or the window ends, whichever site
// ran it.
func TestBlockWindowOpensOnlyOnAutomaticFailovers(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	saga := func(manual bool) []events.Event {
		return []events.Event{
			events.FailoverStarted{FailoverID: "f1", From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Manual: manual, Reason: "r", Steps: []string{"announce"}},
			events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Reason: "r", FailoverID: "f1"},
			events.FailoverCompleted{FailoverID: "f1", Role: events.RoleActive, Epoch: 2},
		}
	}
	ack := events.FailoverAcknowledged{By: "ops", Reason: "checked"}
	tests := []struct {
		name string
		by   events.SiteID // the site that ran the saga
		log  []events.Event
		at   time.Duration // of now, after t0
		want bool
	}{
		{"automatic, here", "a", saga(false), time.Minute, true},
		{"automatic, on the peer", "b", saga(false), time.Minute, true},
		{"automatic, window over", "a", saga(false), 2 * time.Hour, false},
		{"automatic, then acknowledged", "a", append(saga(false), ack), time.Minute, false},
		{"manual, here", "a", saga(true), time.Minute, false},
		{"manual, on the peer", "b", saga(true), time.Minute, false},
		{"manual then automatic", "a", append(saga(true), append([]events.Event{events.FailoverStarted{FailoverID: "f2", From: events.RoleStandby, To: events.RoleActive, Epoch: 4, Reason: "r", Steps: []string{"announce"}}}, events.FailoverCompleted{FailoverID: "f2", Role: events.RoleActive, Epoch: 4})...), time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("a", "b", events.RoleStandby, []string{"default"})
			for i, ev := range tt.log {
				env, err := events.New(events.Source{Site: tt.by, Node: "n", Service: "orchestrator"}, ev, t0.Add(time.Duration(i)*time.Second), nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Apply(env)
			}
			if got := s.Blocked(time.Hour, t0.Add(tt.at)); got != tt.want {
				t.Errorf("Blocked = %v, want %v (acknowledged %v, last failover %s)", got, tt.want, s.Acknowledged, s.LastFailoverAt)
			}
		})
	}
}
