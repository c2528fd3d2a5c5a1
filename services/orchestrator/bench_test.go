package orchestrator

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// BenchmarkDecisionToRoleChanged measures, on a real embedded JetStream
// with instant hooks (five shell scripts that only append a line), the time
// from the decision (FailoverStarted stored) to the RoleChanged stored, for
// alternating manual switches standby→active and active→standby. It
// reports the median and p95 of that latency and the whole round trip from
// the operator's request.
func BenchmarkDecisionToRoleChanged(b *testing.B) {
	h := newHarness(b, events.RoleStandby)
	h.start()
	defer h.stop()
	var lat []time.Duration
	ctx := context.Background()
	to := events.RoleActive
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.other.Publish(ctx, events.FailoverRequested{Target: "a", ToRole: to, Manual: true, Reason: "bench", RequestedBy: "bench", Epoch: maxEpoch(b, h.bus)}, nil); err != nil {
			b.Fatal(err)
		}
		h.waitFor("role change", func() bool {
			return len(decodeAll[events.FailoverCompleted](h)) == i+1
		})
		var started, changed time.Time
		for _, env := range h.log() {
			switch env.Type {
			case "FailoverStarted":
				started = env.Time
			case "RoleChanged":
				changed = env.Time
			}
		}
		lat = append(lat, changed.Sub(started))
		if to == events.RoleActive {
			to = events.RoleStandby
		} else {
			to = events.RoleActive
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-decision-to-RoleChanged-p50")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "ms-decision-to-RoleChanged-p95")
}
