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
