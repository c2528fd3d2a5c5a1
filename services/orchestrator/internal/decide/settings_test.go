package decide

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestSettingsDiffer(t *testing.T) {
	own := []events.Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: "30s"}}
	tests := []struct {
		name string
		peer []events.Setting
		want []string
	}{
		{"the peer recorded none yet", nil, nil},
		{"alike", []events.Setting{{Key: "watchdog.heartbeat.interval", Value: "30s"}, {Key: "failover.automatic", Value: "true"}}, nil},
		{"a timer differs", []events.Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: "1s"}},
			[]string{"watchdog.heartbeat.interval is 30s here and 1s on site b: both sites must read a failure alike"}},
		{"a key on one side only", []events.Setting{{Key: "failover.automatic", Value: "true"}, {Key: "watchdog.heartbeat.interval", Value: "30s"}, {Key: "x.y", Value: "1"}},
			[]string{"x.y is 1 on site b and not recorded here (an older version?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, SettingsDiffer(own, tt.peer, "b")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
