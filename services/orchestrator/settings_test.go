package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

// TestPairWideSettingsThatDifferAreReported: the two sites' orchestrators
// record their pair-wide settings and each reports, as a failed
// ConfigChecked, the keys whose values differ from the peer's: site b
// probes every second while a probes every 30 s, so b would declare a
// lost long before a notices anything (safety-core path 10).
func TestPairWideSettingsThatDifferAreReported(t *testing.T) {
	p := bustest.RunPair(t)
	ctx := t.Context()
	interval := map[events.SiteID]string{"a": "30s", "b": "1s"}
	buses := runPairSites(t, p, func(o *Options) {
		o.PairSettings = []events.Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: interval[o.Site]}}
	})
	for site, want := range map[events.SiteID]string{
		"a": "watchdog.heartbeat.interval is 30s here and 1s on site b",
		"b": "watchdog.heartbeat.interval is 1s here and 30s on site a",
	} {
		var got []events.ConfigChecked
		read := func() bool {
			got = nil
			_, _ = buses[site].Replay(ctx, 0, []string{events.SiteTypeFilter(site, "ConfigChecked")}, func(_ uint64, env *events.Envelope) error {
				cc, err := events.DecodeInto[events.ConfigChecked](env)
				got = append(got, cc)
				return err
			})
			return len(got) > 0
		}
		bustest.WaitFor(t, 20*time.Second, "site "+string(site)+" reports the difference", read)
		time.Sleep(200 * time.Millisecond) // rounds in which it must not report again
		read()
		if len(got) != 1 || got[0].OK || len(got[0].Problems) != 1 || !strings.HasPrefix(got[0].Problems[0], want) {
			t.Errorf("site %s reported %+v, want one failed check saying %q", site, got, want)
		}
	}
}

// TestPeerClockAheadIsReported: site b's clock runs five minutes ahead, so
// its events reach a stamped in a's future; a reports it once as a failed
// ConfigChecked naming both sites and the bound the rules allow (the peer
// reports the other direction the same way).
func TestPeerClockAheadIsReported(t *testing.T) {
	p := bustest.RunPair(t)
	ctx := t.Context()
	buses := runPairSites(t, p, func(o *Options) { o.Policy.ClockSkew = 10 * time.Second })
	ahead := p.B.Bus(t, "heartbeat", "a")
	for range 3 {
		env, err := events.New(ahead.Source(), events.RemoteReachable{Peer: "a", Line: "default", Target: "10.0.0.1"}, time.Now().Add(5*time.Minute), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ahead.PublishEnvelope(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	var got []events.ConfigChecked
	read := func() bool {
		got = nil
		_, _ = buses["a"].Replay(ctx, 0, []string{events.SiteTypeFilter("a", "ConfigChecked")}, func(_ uint64, env *events.Envelope) error {
			cc, err := events.DecodeInto[events.ConfigChecked](env)
			got = append(got, cc)
			return err
		})
		return len(got) > 0
	}
	bustest.WaitFor(t, 20*time.Second, "site a reports b's clock", read)
	time.Sleep(300 * time.Millisecond) // rounds in which it must not report again
	read()
	if len(got) != 1 || got[0].OK || len(got[0].Problems) != 1 || !strings.Contains(got[0].Problems[0], "site b's clock runs at least 5m") ||
		!strings.Contains(got[0].Problems[0], "within 10s") {
		t.Errorf("site a reported %+v, want one failed check saying b's clock runs ahead", got)
	}
}
