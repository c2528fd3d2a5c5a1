package mysqlrepl

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestErrant(t *testing.T) {
	tests := []struct {
		name, replica, primary string
		want                   []string
	}{
		{"in sync", "0-1-10", "0-1-10", nil},
		{"behind is not errant", "0-1-5", "0-1-10", nil},
		{"own write on replica", "0-1-10,0-2-3", "0-1-12", []string{"0-2-3"}},
		{"replica past the old primary's seq on the same server", "0-2-9", "0-2-7,0-1-12", []string{"0-2-9"}},
		{"other domain", "1-2-1,0-1-3", "0-1-3", []string{"1-2-1"}},
		{"empty", "", "0-1-3", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseGTIDList(tc.replica)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseGTIDList(tc.primary)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range Errant(r, p) {
				got = append(got, g.String())
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Error(d)
			}
		})
	}
	for _, bad := range []string{"0-1", "a-b-c", "0-1-2-3"} {
		if _, err := ParseGTIDList(bad); err == nil {
			t.Errorf("ParseGTIDList(%q) accepted", bad)
		}
	}
}

func TestEvaluate(t *testing.T) {
	ok := Replica{MasterHost: "10.0.0.2", MasterPort: 3306, IORunning: "Yes", SQLRunning: "Yes", SecondsBehind: 3, SecondsKnown: true}
	with := func(f func(*Replica)) Replica { r := ok; f(&r); return r }
	tests := []struct {
		name    string
		s       Server
		expect  bool
		tls     bool
		checks  []string
		resync  bool
		lag     float64
		lagKnow bool
	}{
		{"primary role checks nothing", Server{}, false, false, nil, false, 0, false},
		{"healthy", Server{Replicas: []Replica{ok}}, true, false, nil, false, 3, true},
		{"not a replica", Server{}, true, false, []string{"replica"}, false, 0, false},
		{"io stopped", Server{Replicas: []Replica{with(func(r *Replica) { r.IORunning = "No" })}}, true, false, []string{"io_thread"}, false, 3, true},
		{"purged", Server{Replicas: []Replica{with(func(r *Replica) { r.IORunning, r.LastIOErrno = "No", 1236; r.SecondsKnown = false })}}, true, false, []string{"io_thread"}, true, 0, false},
		{"sql error", Server{Replicas: []Replica{with(func(r *Replica) { r.SQLRunning, r.LastSQLErrno = "No", 1062 })}}, true, false, []string{"sql_thread"}, false, 3, true},
		{"host unknown", Server{Replicas: []Replica{with(func(r *Replica) { r.MasterHost = "" })}}, true, false, []string{"primary_host"}, false, 0, false},
		{"named connection", Server{Replicas: []Replica{with(func(r *Replica) { r.Connection, r.IORunning = "site_b", "Connecting" })}}, true, false, []string{"site_b/io_thread"}, false, 3, true},
		{"errant wins over threads", Server{Replicas: []Replica{with(func(r *Replica) { r.IORunning = "No" })}, BinlogState: "0-2-4", PrimaryState: "0-1-9"}, true, false, []string{"divergence"}, false, 0, false},
		{"plain link, tls not required", Server{Replicas: []Replica{with(func(r *Replica) { r.SSLAllowed = "No" })}}, true, false, nil, false, 3, true},
		{"plain link, tls required", Server{Replicas: []Replica{with(func(r *Replica) { r.SSLAllowed = "No" })}}, true, true, []string{"tls"}, false, 3, true},
		{"tls link, tls required", Server{Replicas: []Replica{with(func(r *Replica) { r.SSLAllowed = "Yes" })}}, true, true, nil, false, 3, true},
		{"named plain link", Server{Replicas: []Replica{with(func(r *Replica) { r.Connection = "b" })}}, true, true, []string{"b/tls"}, false, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, lag, known := Evaluate(tc.s, Expect{Replica: tc.expect, ResyncCommand: "x", RequireTLS: tc.tls})
			var checks []string
			resync := false
			for _, x := range f {
				checks = append(checks, x.Check)
				resync = resync || x.NeedsResync
			}
			if d := cmp.Diff(tc.checks, checks); d != "" {
				t.Error(d)
			}
			if resync != tc.resync || lag != tc.lag || known != tc.lagKnow {
				t.Errorf("resync=%v lag=%v known=%v, want %v %v %v", resync, lag, known, tc.resync, tc.lag, tc.lagKnow)
			}
		})
	}
}

func TestParseReplica(t *testing.T) {
	r, err := ParseReplica(map[string]string{"Master_Host": "h", "Master_Port": "3306", "Slave_IO_Running": "Yes",
		"Slave_SQL_Running": "No", "Last_SQL_Errno": "1062", "Last_SQL_Error": "Duplicate entry", "Seconds_Behind_Master": ""})
	if err != nil || r.MasterPort != 3306 || r.LastSQLErrno != 1062 || r.SecondsKnown {
		t.Errorf("got %+v, %v", r, err)
	}
	if _, err := ParseReplica(map[string]string{"Slave_IO_Running": "Yes", "Master_Port": "x"}); err == nil || !strings.Contains(err.Error(), "Master_Port") {
		t.Errorf("bad port: %v", err)
	}
	if _, err := ParseReplica(map[string]string{}); err == nil {
		t.Error("row without columns accepted")
	}
	if got := Behind(mustList(t, "0-1-5"), mustList(t, "0-1-9,1-1-2")); got != 6 {
		t.Errorf("Behind = %d, want 6", got)
	}
}

func mustList(t *testing.T, s string) []GTID {
	g, err := ParseGTIDList(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestUnapplied(t *testing.T) {
	for _, tc := range []struct {
		name, applied, received string
		missing                 []string
		n                       int64
	}{
		{"all applied", "0-1-10", "0-1-10", nil, 0},
		{"behind in one domain", "0-1-7", "0-1-10", []string{"0-1-10 (3 transaction(s) after seq 7)"}, 3},
		{"applied ahead of received", "0-1-12", "0-1-10", nil, 0},
		{"two domains, one behind", "0-1-10,1-2-5", "0-1-10,1-2-9", []string{"1-2-9 (4 transaction(s) after seq 5)"}, 4},
		{"nothing applied in a new domain", "0-1-10", "0-1-10,2-3-2", []string{"2-3-2 (2 transaction(s) after seq 0)"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := ParseGTIDList(tc.applied)
			r, _ := ParseGTIDList(tc.received)
			missing, n := Unapplied(a, r)
			if diff := cmp.Diff(tc.missing, missing); diff != "" || n != tc.n {
				t.Fatalf("Unapplied = %v, %d; want %v, %d (-want +got)\n%s", missing, n, tc.missing, tc.n, diff)
			}
		})
	}
}

func TestMergeIOPos(t *testing.T) {
	got := mergeIOPos([]Replica{{GtidIOPos: "0-1-5,1-2-3"}, {GtidIOPos: "0-2-9"}, {GtidIOPos: ""}})
	if got != "0-2-9,1-2-3" {
		t.Fatalf("mergeIOPos = %q", got)
	}
}
