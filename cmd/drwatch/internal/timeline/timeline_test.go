package timeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

// TestTimelineOfARecordedFailover records a saga interleaved with another
// incident in a real JetStream log, then selects and renders it.
func TestTimelineOfARecordedFailover(t *testing.T) {
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "orchestrator", "")
	ctx := context.Background()
	pub := func(ev events.Event, parent *events.Envelope) *events.Envelope {
		t.Helper()
		env, err := b.Publish(ctx, ev, parent)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	req := pub(events.FailoverRequested{Target: "a", ToRole: "active", Manual: true, Reason: "drill <script>", RequestedBy: "op"}, nil)
	other := pub(events.RemoteUnreachable{Peer: "b", Line: "vip", Since: req.Time, Failed: []events.ProbeResult{{Target: "x", Kind: "tcp"}}}, nil)
	st := pub(events.FailoverStarted{FailoverID: "f9", From: "standby", To: "active", Epoch: 3, Manual: true, Reason: "drill", RequestID: req.ID, Steps: []string{"fence", "promote", "vip"}}, req)
	pub(events.FailoverStepDone{FailoverID: "f9", Step: "fence", OK: true, DurationSeconds: 1}, st)
	pub(events.RemoteReachable{Peer: "b", Line: "vip", Target: "x"}, other)
	pub(events.FailoverStepDone{FailoverID: "f9", Step: "promote", OK: false, Error: "boom"}, st)
	// A step recorded by another service without the parent: tied by id.
	pub(events.DatabaseCommandDone{Command: "promote", Database: "pgsql", OK: false, Error: "boom", FailoverID: "f9"}, nil)
	pub(events.FailoverAborted{FailoverID: "f9", Step: "promote", Reason: "promote failed"}, st)

	var recs []Record
	if _, err := b.Replay(ctx, 0, nil, func(seq uint64, env *events.Envelope) error {
		recs = append(recs, Record{seq, env})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []Selector{{Failover: "f9"}, {Correlation: req.CorrelationID}} {
		picked := Select(recs, sel)
		var types []events.Type
		for _, r := range picked {
			types = append(types, r.Env.Type)
		}
		want := []events.Type{"FailoverRequested", "FailoverStarted", "FailoverStepDone", "FailoverStepDone", "DatabaseCommandDone", "FailoverAborted"}
		if diff := cmp.Diff(want, types); diff != "" {
			t.Errorf("%+v selects (-want +got):\n%s", sel, diff)
		}
		tl := Build("t", picked)
		gotSteps := []string{}
		for _, s := range tl.Steps {
			gotSteps = append(gotSteps, s.Name+"="+s.Status)
		}
		if diff := cmp.Diff([]string{"fence=done", "promote=failed", "vip=not reached"}, gotSteps); diff != "" || tl.Outcome != "aborted: promote failed" {
			t.Errorf("steps (-want +got):\n%s outcome %q", diff, tl.Outcome)
		}
		var text, html bytes.Buffer
		if err := WriteText(&text, tl); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&html, tl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html.String(), "<script>") || !strings.Contains(html.String(), "drill &lt;script&gt;") {
			t.Errorf("html does not escape event text:\n%s", html.String())
		}
		if !strings.Contains(text.String(), "step promote FAILED") || !strings.Contains(text.String(), "3. vip") {
			t.Errorf("text:\n%s", text.String())
		}
	}
}

func TestDescribeDatabaseAnswers(t *testing.T) {
	tests := []struct {
		ev        events.DatabaseCommandDone
		want      string
		important bool
	}{
		{events.DatabaseCommandDone{Command: "promote", Database: events.PgSQL, OK: true, Position: "0/3000060"}, "pgsql promote done at 0/3000060", false},
		{events.DatabaseCommandDone{Command: "position", Database: events.MySQL, OK: true, Position: "0-1-42", FollowsNone: true}, "mysql position done at 0-1-42, follows no primary", false},
		{events.DatabaseCommandDone{Command: "repoint", Database: events.PgSQL, Error: "needs pgsql.dataDir"}, "pgsql repoint FAILED: needs pgsql.dataDir", true},
	}
	for _, tt := range tests {
		got, important := Describe(tt.ev)
		if got != tt.want || important != tt.important {
			t.Errorf("Describe(%+v) = %q, %v; want %q, %v", tt.ev, got, important, tt.want, tt.important)
		}
	}
}
