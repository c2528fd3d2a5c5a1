package bus_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

type fact struct {
	Site  events.SiteID
	Type  events.Type
	Epoch events.Epoch
	InLog bool
}

func factsOf(t *testing.T, fs []bus.Fact) []fact {
	t.Helper()
	var out []fact
	for _, f := range fs {
		g := fact{Site: f.Env.Site, Type: f.Env.Type, InLog: f.InLog}
		if f.Env.Type == "RoleChanged" {
			rc, err := events.DecodeInto[events.RoleChanged](f.Env)
			if err != nil {
				t.Fatal(err)
			}
			g.Epoch = rc.Epoch
		}
		out = append(out, g)
	}
	return out
}

// TestRolesOutliveTheLog: the log keeps events for MaxAge; the latest
// role and automatic-failover switch stay in ROLES after it aged them out.
func TestRolesOutliveTheLog(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunJetStream(t)
	b := site.BusWith(t, bus.Options{Source: events.Source{Service: "orchestrator"}, MaxAge: time.Second})
	for _, ev := range []events.Event{
		events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "first"},
		events.AutomaticFailoverChanged{Enabled: false, By: "root", Reason: "maintenance"},
		events.RoleChanged{From: events.RoleActive, To: events.RoleStandby, Epoch: 2, Reason: "second"},
		events.ConfigChecked{OK: true},
	} {
		if _, err := b.Publish(ctx, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitFor(t, 10*time.Second, "the log to age out", func() bool {
		s, err := b.JetStream().Stream(ctx, bus.EventsStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	got, err := b.Facts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []fact{{"a", "AutomaticFailoverChanged", 0, false}, {"a", "RoleChanged", 2, false}}
	if diff := cmp.Diff(want, factsOf(t, got)); diff != "" {
		t.Errorf("facts once the log aged out (-want +got):\n%s", diff)
	}
	// A replay from the beginning starts with them; a filter selects.
	var replayed []fact
	if _, err := b.Replay(ctx, 0, []string{events.TypeFilter("RoleChanged"), events.TypeFilter("ConfigChecked")}, func(seq uint64, env *events.Envelope) error {
		replayed = append(replayed, factsOf(t, []bus.Fact{{Env: env, InLog: seq != 0}})...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]fact{{"a", "RoleChanged", 2, false}}, replayed); diff != "" {
		t.Errorf("replayed once the log aged out (-want +got):\n%s", diff)
	}
	if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 3, Reason: "third"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err = b.Facts(ctx); err != nil {
		t.Fatal(err)
	}
	want = []fact{{"a", "AutomaticFailoverChanged", 0, false}, {"a", "RoleChanged", 3, true}}
	if diff := cmp.Diff(want, factsOf(t, got)); diff != "" {
		t.Errorf("facts with a new role in the log (-want +got):\n%s", diff)
	}
}

// TestPeerFacts reads the peer's durable facts across the link — its own
// role and its copy of this site's — and fails when the link is cut.
func TestPeerFacts(t *testing.T) {
	ctx := ctxT(t)
	p := bustest.RunPair(t)
	a, b := p.A.Bus(t, "orchestrator", "b"), p.B.Bus(t, "orchestrator", "a")
	if got, err := a.PeerFacts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("peer facts of a fresh b: %v, %v; want none", got, err)
	}
	if _, err := a.Publish(ctx, events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "first"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleStandby, Epoch: 0, Reason: "first"}, nil); err != nil {
		t.Fatal(err)
	}
	want := []fact{{"a", "RoleChanged", 1, true}, {"b", "RoleChanged", 0, true}}
	var got []fact
	bustest.WaitFor(t, 10*time.Second, "b's facts", func() bool {
		fs, err := a.PeerFacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = factsOf(t, fs)
		return len(got) == 2
	})
	// Their order is the order they reached b's log, a's by the source.
	bySite := cmpopts.SortSlices(func(x, y fact) bool { return x.Site < y.Site })
	if diff := cmp.Diff(want, got, bySite); diff != "" {
		t.Errorf("b's facts read from a (-want +got):\n%s", diff)
	}
	p.Link.Cut()
	bustest.WaitFor(t, 10*time.Second, "the link down", func() bool { return p.A.Server.LeafConnected() == 0 })
	if _, err := a.PeerFacts(ctx); err == nil {
		t.Error("peer facts across a cut link: no error")
	}
}
