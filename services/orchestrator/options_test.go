package orchestrator

import (
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
)

// TestClaimsNeedArbitersWithoutACustomScript: a site claims the arbiters
// only when device arbitration is what decides (the seed's default script
// path is set in every config, so isCustom is what tells).
func TestClaimsNeedArbitersWithoutACustomScript(t *testing.T) {
	arbiters := []config.Arbiter{{Host: "10.0.0.31", Port: 22, Username: "drwatch"}}
	tests := []struct {
		name     string
		arbiters []config.Arbiter
		custom   bool
		want     time.Duration
	}{
		{"arbiters: claims, bounded by the interval and the probe timeout", arbiters, false, 30*time.Second + 5*5*time.Second + 6*time.Second},
		{"no arbiters: nothing to claim", nil, false, 0},
		{"custom script: no sessions to hold", arbiters, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Site.Name, cfg.Site.Peer, cfg.Site.Role = "a", "b", "active"
			fd := &cfg.Watchdog.FailureDetection
			fd.Arbiters, fd.IsCustom, fd.ProbeTimeout = tt.arbiters, tt.custom, config.Duration(5*time.Second)
			o, err := OptionsFromConfig(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			if o.ClaimTimeout != tt.want {
				t.Errorf("ClaimTimeout %s, want %s", o.ClaimTimeout, tt.want)
			}
		})
	}
}
