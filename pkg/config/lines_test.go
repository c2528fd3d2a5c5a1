package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeartbeatLineNames(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"no peer address", minimal, nil},
		{"core only", minimal + "core: {peerVip: 10.0.0.2}\n", []string{"default"}},
		{"nodes only make the default line", minimal + "core: {peerLoadBalancerNodes: [10.0.0.3]}\n", []string{"default"}},
		{"disabled lines are not probed", minimal + `core: {peerVip: 10.0.0.2}
watchdog:
  heartbeat:
    lines:
      - {name: wan1, vip: 10.1.0.2}
      - {name: wan2, vip: 10.2.0.2, disable: true}
`, []string{"default", "wan1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, mustParse(t, tt.yaml).HeartbeatLineNames()); diff != "" {
				t.Errorf("HeartbeatLineNames (-want +got):\n%s", diff)
			}
		})
	}
}
