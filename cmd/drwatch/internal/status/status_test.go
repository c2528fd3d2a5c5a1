package status

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// SeedStates is the states section of seed 000's table 1, verbatim.
const SeedStates = `{ "states": {
    "arbiterMonitor": {"progress": "idle", "msg": {"service": "arbiterMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:18:55+00:00"}, "service": {}},
    "configMonitor": {"progress": "idle", "msg": {"service": "configMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:15+00:00"}, "service": {}},
    "fileMonitor": {"progress": "idle", "msg": {"service": "fileMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:18:59+00:00"}, "service": {}},
    "heartbeat": {"progress": "unknown", "msg": {"service": "heartbeat", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"localFailover": false}, "time": "2015-07-18T22:17:49+00:00"},
      "service": {"booting": false, "bootEndTime": null, "waitTime": null, "automaticFailover": false, "automaticFailoverEndTime": "2015-07-18T07:41:41+00:00"}},
    "mysqlMonitor": {"progress": "idle", "msg": {"service": "mysqlMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:09+00:00"}, "service": {}},
    "pgsqlMonitor": {"progress": "unknown", "msg": {"service": "pgsqlMonitor", "description": "Master node pgsql in active or standby site maybe CRASHED. Pgsql replication is in bad status. Please manually check Postgresql-9.4 status.", "state": false, "force": false, "progress": "unknown", "payload": {"code": 1098}, "time": "2015-07-18T22:18:27+00:00"}, "service": {}},
    "serviceMonitor": {"progress": "running", "msg": {"service": "serviceMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:30+00:00"}, "service": {}}
}}`

// Shape reduces a JSON document to its keys and value types, the contract
// a script written against the seed relies on. null matches any type,
// since the seed prints null where a time may be.
func Shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = Shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{Shape(x[0])}
	case nil:
		return "null"
	}
	return reflect.TypeOf(v).Kind().String()
}

func mustCfg(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader("site: {name: a, peer: b, role: active}\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func env(t *testing.T, site events.SiteID, service string, ev events.Event, at time.Time) *events.Envelope {
	t.Helper()
	e, err := events.New(events.Source{Site: site, Node: "n", Service: service}, ev, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestStatesMatchTheSeedLayout feeds one event per watchdog service and
// compares the rendering with the seed's example key by key and type by
// type, null times included.
func TestStatesMatchTheSeedLayout(t *testing.T) {
	cfg := mustCfg(t, "mysql: {enabled: true, dsn: 'u:p@tcp(h:3306)/'}\npgsql: {enabled: true, dsn: 'postgres://u:p@h/db'}\n")
	p := New(cfg)
	until := t0.Add(2 * time.Hour)
	for _, e := range []*events.Envelope{
		env(t, "a", "arbiter", events.ArbitrationDecided{Role: "active", Method: "arbiters", Action: "nothing", Branch: "active.r>=failover", N: 3, Reachable: 3, ReachableShare: 1, Thresholds: events.Thresholds{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7}}, t0),
		env(t, "a", "heartbeat", events.ConfigChecked{OK: true}, t0),
		env(t, "a", "filesync", events.FileSyncCompleted{Transport: "objectstore", Files: 1}, t0),
		env(t, "a", "heartbeat", events.RemoteReachable{Peer: "b", Line: "vip", Target: "10.0.0.2"}, t0),
		env(t, "a", "dbmonitor", events.ReplicationRepaired{Database: "mysql", Scope: "cross", Server: "db", Check: "io", Attempts: 1}, t0),
		env(t, "a", "dbmonitor", events.ReplicationBroken{Database: "pgsql", Scope: "cross", Server: "pg", Check: "wal_receiver", Error: "no sender"}, t0),
		env(t, "a", "heartbeat", events.MonitorRecovered{Monitor: "jboss", Kind: "service"}, t0),
		env(t, "b", "cli", events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "op"}, t0),
	} {
		p.Apply(e)
	}
	rt := p.Runtime(t0.Add(time.Minute))
	got, err := cfg.APISections(rt, "states")
	if err != nil {
		t.Fatal(err)
	}
	var gotDoc, seedDoc any
	data, _ := json.Marshal(got)
	if err := json.Unmarshal(data, &gotDoc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(SeedStates), &seedDoc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Shape(seedDoc), Shape(gotDoc)); diff != "" {
		t.Errorf("states layout differs from the seed (-seed +got):\n%s", diff)
	}
	states := gotDoc.(map[string]any)["states"].(map[string]any)
	pg := states["pgsqlMonitor"].(map[string]any)["msg"].(map[string]any)
	if pg["state"] != false || pg["payload"].(map[string]any)["code"] != float64(CodeReplicationBroken) || !strings.Contains(pg["description"].(string), "no sender") {
		t.Errorf("pgsqlMonitor msg = %v", pg)
	}
	hb := states["heartbeat"].(map[string]any)["service"].(map[string]any)
	if hb["automaticFailover"] != false || hb["automaticFailoverEndTime"] != "2026-03-01T12:00:00+00:00" {
		t.Errorf("heartbeat service = %v", hb)
	}
	if m := states["mysqlMonitor"].(map[string]any)["msg"].(map[string]any); m["time"] != "2026-03-01T10:00:00+00:00" || m["state"] != true {
		t.Errorf("mysqlMonitor msg = %v", m)
	}
}

func TestStatesAbsentUntilTheSiteRecordedAnything(t *testing.T) {
	p := New(mustCfg(t, ""))
	p.Apply(env(t, "b", "heartbeat", events.ConfigChecked{OK: true}, t0))
	if rt := p.Runtime(t0); rt.States != nil || rt.Role != "active" {
		t.Errorf("runtime = %+v, want configured role and no states", rt)
	}
}

// TestChecks is the health judgement over small logs.
func TestChecks(t *testing.T) {
	until := t0.Add(time.Hour)
	tests := []struct {
		name     string
		events   []*events.Envelope
		failing  []string
		contains string
	}{
		{"empty log", nil, []string{"watchdog"}, "never ran"},
		{"healthy", []*events.Envelope{
			env(t, "a", "heartbeat", events.RemoteReachable{Peer: "b", Line: "vip", Target: "x"}, t0),
			env(t, "a", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 1, Reason: "init"}, t0),
		}, nil, "answers on x"},
		{"peer down and pgsql broken", []*events.Envelope{
			env(t, "a", "heartbeat", events.RemoteUnreachable{Peer: "b", Line: "vip", Since: t0, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp", Error: "refused"}}}, t0),
			env(t, "a", "dbmonitor", events.ReplicationBroken{Database: "pgsql", Scope: "cross", Server: "pg", Check: "wal", Error: "gone"}, t0),
		}, []string{"heartbeat vip", "pgsql replication"}, "gone"},
		{"split brain", []*events.Envelope{
			env(t, "a", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 2, Reason: "x"}, t0),
			env(t, "b", "orchestrator", events.RoleChanged{From: "standby", To: "active", Epoch: 3, Reason: "x"}, t0),
		}, []string{"split brain"}, "both a and b"},
		{"aborted failover and quorum low", []*events.Envelope{
			env(t, "a", "orchestrator", events.FailoverStarted{FailoverID: "f1", From: "active", To: "standby", Reason: "r", Steps: []string{"fence"}}, t0),
			env(t, "a", "orchestrator", events.FailoverAborted{FailoverID: "f1", Step: "fence", Reason: "hook failed"}, t0),
			env(t, "a", "arbiter", events.ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7}, t0),
		}, []string{"last failover", "arbiters"}, "hook failed"},
		{"automatic failover off is information, not failure", []*events.Envelope{
			env(t, "a", "cli", events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "m", By: "op"}, t0),
		}, nil, "disabled until 2026-03-01T11:00:00Z by op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(mustCfg(t, "pgsql: {enabled: true, dsn: 'postgres://u:p@h/db'}\n"))
			for _, e := range tt.events {
				p.Apply(e)
			}
			checks := p.Checks(t0.Add(time.Minute))
			var failing []string
			var all strings.Builder
			for _, c := range checks {
				if !c.OK {
					failing = append(failing, c.Name)
				}
				fmt.Fprintf(&all, "%s %v %s\n", c.Name, c.OK, c.Detail)
			}
			sort.Strings(failing)
			want := append([]string(nil), tt.failing...)
			sort.Strings(want)
			if diff := cmp.Diff(want, failing); diff != "" {
				t.Errorf("failing checks (-want +got):\n%s\n%s", diff, all.String())
			}
			if !strings.Contains(all.String(), tt.contains) {
				t.Errorf("checks lack %q:\n%s", tt.contains, all.String())
			}
			if Healthy(checks) != (len(tt.failing) == 0) {
				t.Errorf("Healthy = %v", Healthy(checks))
			}
		})
	}
}

func TestPairShowsBothSites(t *testing.T) {
	p := New(mustCfg(t, ""))
	p.Apply(env(t, "b", "orchestrator", events.RoleChanged{From: "active", To: "standby", Epoch: 4, Reason: "x"}, t0))
	p.Apply(env(t, "a", "dbmonitor", events.ReplicationLagHigh{Database: "mysql", Server: "db", LagSeconds: 40, LagBytes: 9000, ThresholdSeconds: 30}, t0))
	p.Apply(env(t, "b", "filesync", events.FileSyncCompleted{Transport: "sftp", Files: 2}, t0))
	var b strings.Builder
	WritePair(&b, p.Pair(t0.Add(90*time.Second)))
	out := b.String()
	for _, want := range []string{"a *", "active", "b ", "standby", "4", "lag 40s", "1m30s ago", "automatic failover: enabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
