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

// TestOptionsTimingsFromTheContract: every timing that depends on others is
// the one config.Timing derived and drwatch validate printed, not a second
// computation here.
func TestOptionsTimingsFromTheContract(t *testing.T) {
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Peer, cfg.Site.Role = "a", "b", "active"
	cfg.Core.PeerVIP = "10.0.0.2"
	cfg.MySQL.Enabled = true
	cfg.Failover.VetoHook = "/bin/true"
	cfg.Watchdog.FailureDetection.Arbiters = []config.Arbiter{{Host: "10.0.0.31", Port: 22, Username: "drwatch"}}
	cfg.Watchdog.FailureDetection.ProbeTimeout = config.Duration(5 * time.Second)
	o, err := OptionsFromConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	tm := cfg.Timing()
	for _, f := range []struct {
		name      string
		got, want time.Duration
	}{
		{"Tick", o.Tick, tm.DecisionTick},
		{"DBTimeout", o.DBTimeout, tm.DBTimeout},
		{"StartupHold", o.StartupHold, tm.StartupHold},
		{"Policy.RestartYield", o.Policy.RestartYield, tm.RestartYield},
		{"ClaimTimeout", o.ClaimTimeout, tm.ClaimTimeout},
		{"TakeoverHold", o.TakeoverHold, tm.TakeoverHold},
		{"SelfFenceTimeout", o.SelfFenceTimeout, tm.SelfFenceTimeout},
	} {
		if f.got != f.want || f.got <= 0 {
			t.Errorf("%s = %s, want config.Timing's %s", f.name, f.got, f.want)
		}
	}
}
