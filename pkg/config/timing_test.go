package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// arbitrated is a site whose arbiters tell its peer's sessions apart.
const arbitrated = "site: {name: a, peer: b, peerAddresses: [10.0.0.2]}\n"

const arbiters3 = `    arbiters:
      - {host: 10.0.0.31, username: u, password: p, knownHosts: /k}
      - {host: 10.0.0.32, username: u, password: p, knownHosts: /k}
      - {host: 10.0.0.33, username: u, password: p, knownHosts: /k}
`

// TestTimingFormulas derives the figures of several configurations by
// hand, from the formulas in Timing's documentation.
func TestTimingFormulas(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		yaml string
		want Timing
	}{
		{
			// Seed defaults: 30 s, 5 s, 4 retries; probeTimeout = 5 s.
			name: "seed defaults, a line with a VIP and nodes, three arbiters",
			yaml: arbitrated + "core: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}\nwatchdog:\n  failureDetection:\n" + arbiters3,
			want: Timing{
				DetectionBest:    20 * s,            // 4 × 5 s
				DetectionWorst:   60 * s,            // 30 s + 6 × 5 s
				ActiveVerdict:    20 * s,            // 4 × 5 s
				DecisionTick:     s,                 //
				SelfFenceTimeout: 10 * s,            // default
				SelfFence:        91 * s,            // 60 + 20 + 1 + 10
				TakeoverHold:     153 * s,           // 91 + 60 + 2
				SessionEvidence:  25 * s,            // 30 − 5
				EarliestTakeover: 93 * s,            // max(153 − 60, 20, 25)
				ClaimTimeout:     61 * s,            // 30 + 25 + 6
				DBTimeout:        2 * time.Minute,   //
				RestartYield:     163 * s,           // max(30, 153) + 10
				StartupHold:      time.Minute,       // max(1 m, 60 s)
				ConfirmTimeout:   (60 + 61 + 2) * s, //
			},
		},
		{
			name: "a line of nodes alone may fail at once: no best-case wait",
			yaml: minimal + "core: {peerLoadBalancerNodes: [10.0.1.2]}\n",
			want: Timing{
				DetectionBest: 0, DetectionWorst: 35 * s, ActiveVerdict: 20 * s, DecisionTick: s, SelfFenceTimeout: 10 * s,
				SelfFence: 66 * s, TakeoverHold: 103 * s, EarliestTakeover: 68 * s, DBTimeout: 2 * time.Minute,
				RestartYield: 113 * s, StartupHold: time.Minute, ConfirmTimeout: 62 * s,
			},
		},
		{
			name: "a VIP alone: the slowest of two lines bounds the worst case, any VIP the best",
			yaml: minimal + "core: {peerVip: 10.0.0.2}\nwatchdog: {heartbeat: {lines: [{name: wan2, nodes: [10.0.2.2]}]}}\n",
			want: Timing{
				DetectionBest: 20 * s, DetectionWorst: 55 * s, ActiveVerdict: 20 * s, DecisionTick: s, SelfFenceTimeout: 10 * s,
				SelfFence: 86 * s, TakeoverHold: 143 * s, EarliestTakeover: 88 * s, DBTimeout: 2 * time.Minute,
				RestartYield: 153 * s, StartupHold: time.Minute, ConfirmTimeout: 62 * s,
			},
		},
		{
			name: "custom script: its timeout is in the active's verdict; no sessions, no claims",
			yaml: minimal + "core: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}\nwatchdog:\n  failureDetection:\n    isCustom: true\n    scriptTimeout: 20s\n" + arbiters3,
			want: Timing{
				DetectionBest: 20 * s, DetectionWorst: 60 * s, ActiveVerdict: 50 * s, DecisionTick: s, SelfFenceTimeout: 10 * s,
				SelfFence: 121 * s, TakeoverHold: 183 * s, EarliestTakeover: 123 * s, DBTimeout: 2 * time.Minute,
				RestartYield: 193 * s, StartupHold: time.Minute, ConfirmTimeout: 62 * s,
			},
		},
		{
			name: "databases and hooks lengthen the restart yield; a slow heartbeat the startup hold",
			yaml: minimal + `core: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}
mysql: {enabled: true, dsn: "u:p@tcp(127.0.0.1:3306)/"}
failover: {vetoHook: /v, selfFenceTimeout: 20s}
hooks: {preS2M: /a, postS2M: /b, preM2S: /c, timeout: 30s}
watchdog: {heartbeat: {interval: 60s, timeout: 10s, retries: 2}, failureDetection: {probeTimeout: 3s}}
`,
			want: Timing{
				DetectionBest: 20 * s, DetectionWorst: 100 * s, ActiveVerdict: 12 * s, DecisionTick: s, SelfFenceTimeout: 20 * s,
				SelfFence: 133 * s, TakeoverHold: 235 * s, EarliestTakeover: 135 * s, DBTimeout: 2 * time.Minute,
				// max(60, 235) + 2 × 3 + 120 + 3 × 30 (preM2S is not on the way to active)
				RestartYield: (235 + 6 + 120 + 90) * s, StartupHold: 100 * s, ConfirmTimeout: 102 * s,
			},
		},
		{
			name: "no heartbeat line: the figures of the seed's default line",
			yaml: minimal,
			want: Timing{
				DetectionBest: 20 * s, DetectionWorst: 60 * s, ActiveVerdict: 20 * s, DecisionTick: s, SelfFenceTimeout: 10 * s,
				SelfFence: 91 * s, TakeoverHold: 153 * s, EarliestTakeover: 93 * s, DBTimeout: 2 * time.Minute,
				RestartYield: 163 * s, StartupHold: time.Minute, ConfirmTimeout: 62 * s,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, tt.yaml).Timing()
			got.Figures = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Timing (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEveryFigureShowsItsFormula: drwatch validate prints Figures, so each
// field must be there once, with the values it was computed from.
func TestEveryFigureShowsItsFormula(t *testing.T) {
	tm := mustParse(t, arbitrated+"core: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}\nwatchdog:\n  failureDetection:\n"+arbiters3).Timing()
	var names []string
	for _, f := range tm.Figures {
		names = append(names, f.Name)
		if f.Formula == "" || f.Why == "" {
			t.Errorf("%s: formula %q, why %q", f.Name, f.Formula, f.Why)
		}
	}
	want := []string{"detectionBest", "detectionWorst", "activeVerdict", "decisionTick", "selfFenceTimeout", "selfFence",
		"takeoverHold", "sessionEvidence", "earliestTakeover", "claimTimeout", "dbTimeout", "restartYield", "startupHold", "confirmTimeout"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
	byName := map[string]Figure{}
	for _, f := range tm.Figures {
		byName[f.Name] = f
	}
	for name, formula := range map[string]string{
		"detectionWorst": "interval + (retries + 2) × timeout = 30s + 6 × 5s",
		"selfFence":      "detectionWorst + activeVerdict + decisionTick + selfFenceTimeout = 1m0s + 20s + 1s + 10s",
		"takeoverHold":   "selfFence + detectionWorst + slack = 1m31s + 1m0s + 2s",
	} {
		if got := byName[name].Formula; got != formula {
			t.Errorf("%s formula = %q, want %q", name, got, formula)
		}
	}
}

// TestContractHoldsAcrossTimers derives the figures over a grid of valid
// timers: the required checks must hold for each, and the contract must
// mean what it says — a takeover after the fence, counted from the cut.
func TestContractHoldsAcrossTimers(t *testing.T) {
	n := 0
	for _, interval := range []string{"100ms", "1s", "5s", "30s", "10m"} {
		for _, timeoutShare := range []float64{0.01, 0.5, 0.99} {
			for _, retries := range []int{0, 2, 4, 100} {
				for _, fence := range []string{"1s", "10s", "2m"} {
					for _, session := range []string{"1s", "30s", "1h"} {
						iv, _ := time.ParseDuration(interval)
						to := time.Duration(float64(iv) * timeoutShare)
						y := fmt.Sprintf("%score: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}\nfailover: {selfFenceTimeout: %s}\nwatchdog:\n  heartbeat: {interval: %s, timeout: %s, retries: %d}\n  failureDetection:\n    arbiterSessionTimeout: %s\n%s",
							arbitrated, fence, interval, to, retries, session, arbiters3)
						cfg, err := Parse(strings.NewReader(y))
						if err != nil {
							t.Fatalf("interval %s timeout %s retries %d fence %s session %s: %v", interval, to, retries, fence, session, err)
						}
						tm := cfg.Timing()
						for _, c := range tm.Checks() {
							if c.Required && !c.Holds {
								t.Errorf("interval %s timeout %s retries %d fence %s: %s does not hold", interval, to, retries, fence, c.Inequality)
							}
						}
						if tm.TakeoverHold-tm.DetectionWorst <= tm.SelfFence {
							t.Errorf("interval %s timeout %s retries %d fence %s: a standby whose last reply came detectionWorst before the cut completes at %s, before the fence bound %s",
								interval, to, retries, fence, tm.TakeoverHold-tm.DetectionWorst, tm.SelfFence)
						}
						n++
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no configuration checked")
	}
}

// TestBrokenChecksNameTheField: the required checks hold by derivation, so
// a broken one is made by hand; Validate words it the same way.
func TestBrokenChecksNameTheField(t *testing.T) {
	tm := Timing{SelfFence: 81 * time.Second, EarliestTakeover: 80 * time.Second, TakeoverHold: 2 * time.Minute,
		StartupHold: 30 * time.Second, DetectionWorst: time.Minute, ConfirmTimeout: time.Minute, ClaimTimeout: time.Minute,
		RestartYield: time.Minute, SessionEvidence: 25 * time.Second}
	got := map[string]Check{}
	for _, c := range tm.Checks() {
		got[c.Name] = c
	}
	for _, want := range []Check{
		{Name: "contract", Inequality: "earliestTakeover 1m20s > selfFence 1m21s", Required: true, Field: "failover.selfFenceTimeout"},
		{Name: "startupHold", Inequality: "startupHold 30s >= detectionWorst 1m0s", Required: true, Field: "watchdog.heartbeat.interval"},
		{Name: "confirmTimeout", Inequality: "confirmTimeout 1m0s > startupHold 30s + claimTimeout 1m0s", Required: true, Field: "watchdog.failureDetection.probeTimeout"},
		{Name: "restartYield", Inequality: "restartYield 1m0s > takeoverHold 2m0s", Required: true, Field: "watchdog.heartbeat.interval"},
		{Name: "sessionsAlone", Inequality: "sessionEvidence 25s > selfFence 1m21s", Required: false, Field: "watchdog.failureDetection.arbiterSessionTimeout"},
	} {
		c, ok := got[want.Name]
		if !ok {
			t.Errorf("no %s check", want.Name)
			continue
		}
		if c.Holds || c.Fix == "" {
			t.Errorf("%s: holds %v, fix %q", want.Name, c.Holds, c.Fix)
		}
		c.Holds, c.Fix = false, ""
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("%s (-want +got):\n%s", want.Name, diff)
		}
	}
}

// TestTimingKeysRejected: the keys the contract reads, and the bounds that
// keep its sums from overflowing.
func TestTimingKeysRejected(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"self-fence zero", minimal + "failover: {selfFenceTimeout: 0s}\n", "failover.selfFenceTimeout: must be positive"},
		{"self-fence beyond a demotion", minimal + "failover: {selfFenceTimeout: 3m}\n", "failover.selfFenceTimeout: 3m0s is longer than a demotion's own bound 2m0s"},
		{"self-fence below the PostgreSQL fence", minimal + "pgsql: {enabled: true, dsn: postgres://x}\nfailover: {selfFenceTimeout: 5s}\n", "failover.selfFenceTimeout: 5s is too short with pgsql.enabled: the PostgreSQL fence alone waits up to 5s"},
		{"session timeout zero", minimal + "watchdog: {failureDetection: {arbiterSessionTimeout: 0}}\n", "watchdog.failureDetection.arbiterSessionTimeout: must be positive"},
		{"interval beyond an hour", minimal + "watchdog: {heartbeat: {interval: 2h, timeout: 5s}}\n", "watchdog.heartbeat.interval: 2h0m0s is longer than an hour"},
		{"script timeout beyond an hour", minimal + "watchdog: {failureDetection: {scriptTimeout: 90m}}\n", "watchdog.failureDetection.scriptTimeout: 1h30m0s is longer than an hour"},
		{"seconds beyond a duration", minimal + "failover: {selfFenceTimeout: 1e12}\n", `duration "1e12" is too long`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not name the problem\n got: %v\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestTimingKeyDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)
	if got := cfg.Failover.SelfFenceTimeout.D(); got != 10*time.Second {
		t.Errorf("failover.selfFenceTimeout default %s, want 10s", got)
	}
	// The arbiter README's example sshd: ClientAliveInterval 10 × ClientAliveCountMax 3.
	if got := cfg.Watchdog.FailureDetection.ArbiterSessionTimeout.D(); got != 30*time.Second {
		t.Errorf("watchdog.failureDetection.arbiterSessionTimeout default %s, want 30s", got)
	}
}
