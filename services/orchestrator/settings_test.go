package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// TestPairWideSettingsThatDifferAreReported: the two sites' orchestrators
// record their pair-wide settings and each reports, as a failed
// ConfigChecked, the keys whose values differ from the peer's: site b
// probes every second while a probes every 30 s, so b would declare a
// lost long before a notices anything (safety-core path 10).
func TestPairWideSettingsThatDifferAreReported(t *testing.T) {
	p := bustest.RunPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			<-d
		}
	})
	buses := map[events.SiteID]*bus.Bus{}
	for _, s := range []struct {
		site     *bustest.Site
		peer     events.SiteID
		role     events.Role
		interval string
	}{{p.A, "b", events.RoleActive, "30s"}, {p.B, "a", events.RoleStandby, "1s"}} {
		b := s.site.Bus(t, "orchestrator", s.peer)
		buses[s.site.Name] = b
		o := DefaultOptions()
		o.Site, o.Peer, o.InitialRole = s.site.Name, s.peer, s.role
		o.Lines = []string{"default"}
		o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour}
		o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
		o.Tick = 20 * time.Millisecond
		o.PairSettings = []events.Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: s.interval}}
		d := make(chan error, 1)
		done = append(done, d)
		go func() { d <- RunWith(ctx, service.Deps{Bus: b, Log: quiet(), Now: time.Now}, o) }()
	}
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
