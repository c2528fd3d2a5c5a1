package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// TestPreviewRequest: the decision and plan a switchover shows before it
// records anything are the orchestrator's own.
func TestPreviewRequest(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("site: {name: b, peer: a, role: standby}\npgsql: {enabled: true, dsn: 'postgres://u:p@h/db'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	apply := func(st *pair.State, site events.SiteID, ev events.Event) {
		env, err := events.New(events.Source{Site: site, Node: "n", Service: "orchestrator"}, ev, t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(env)
	}
	pairOf := func(lagBytes int64) *pair.State {
		st := pair.New("b", "a", events.RoleStandby, cfg.HeartbeatLineNames())
		apply(st, "a", events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "x"})
		apply(st, "b", events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Epoch: 1, Reason: "x"})
		if lagBytes > 0 {
			apply(st, "b", events.ReplicationLagHigh{Database: events.PgSQL, Server: "pg", LagBytes: lagBytes, LagSeconds: 9})
		}
		return st
	}
	req := events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "switchover", RequestedBy: "t", Epoch: 1}

	p, err := PreviewRequest(cfg, pairOf(0), req, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Act || p.Branch != "request.manual" || p.Epoch != 2 {
		t.Errorf("in sync: %+v, want to act on request.manual at epoch 2", p)
	}
	if diff := cmp.Diff([]string{"check-position", "fence-peer", "catch-up", "promote-pgsql"}, p.Steps); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}

	p, _ = PreviewRequest(cfg, pairOf(5<<20), req, t0.Add(time.Second))
	if p.Act || !p.Blocked || p.Branch != "guard.lag" || len(p.Steps) != 0 {
		t.Errorf("lagging: %+v, want blocked by guard.lag with no plan", p)
	}
	forced := req
	forced.Force = true
	if p, _ = PreviewRequest(cfg, pairOf(5<<20), forced, t0.Add(time.Second)); !p.Act || p.Branch != "request.manual.force" {
		t.Errorf("lagging, forced: %+v", p)
	}
	stale := req
	stale.Epoch = 0
	st := pairOf(0)
	apply(st, "a", events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 3, Reason: "x"})
	if p, _ = PreviewRequest(cfg, st, stale, t0.Add(time.Second)); p.Act || p.Branch != "request.stale" {
		t.Errorf("stale: %+v", p)
	}
}
