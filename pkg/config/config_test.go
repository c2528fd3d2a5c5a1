package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const minimal = "site: {name: a, peer: b}\n"

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// TestSeedDefaults checks every default seed 000 gives (its api v1 config
// examples) and seed 004's monitor defaults.
func TestSeedDefaults(t *testing.T) {
	cfg := mustParse(t, minimal+"watchdog: {monitors: [{name: m, kind: memory, threshold: 90}], failureDetection: {arbiters: [{username: u, password: p, host: 10.0.0.1, knownHosts: /k}]}}\n")
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"core.scpTimeout", cfg.Core.SCPTimeout.D(), 120 * time.Second},
		{"file.backup.maxCount", cfg.File.Backup.MaxCount, 3},
		{"file.backup.hoursOfDay", cfg.File.Backup.HoursOfDay, "*"},
		{"file.backup.daysOfWeek", cfg.File.Backup.DaysOfWeek, "*"},
		{"file.restore.hoursOfDay", cfg.File.Restore.HoursOfDay, "*"},
		{"file.restore.daysOfWeek", cfg.File.Restore.DaysOfWeek, "*"},
		{"watchdog.heartbeat.retries", cfg.Watchdog.Heartbeat.Retries, 4},
		{"watchdog.heartbeat.timeout", cfg.Watchdog.Heartbeat.Timeout.D(), 5 * time.Second},
		{"watchdog.heartbeat.interval", cfg.Watchdog.Heartbeat.Interval.D(), 30 * time.Second},
		{"watchdog.notification.interval", cfg.Watchdog.Notification.Interval.D(), 3600 * time.Second},
		{"watchdog.failureDetection.isCustom", cfg.Watchdog.FailureDetection.IsCustom, false},
		{"watchdog.failureDetection.script", cfg.Watchdog.FailureDetection.Script, "/var/cache/jmp-geo/watchdog/bin/arbitration"},
		{"watchdog.failureDetection.threshold.failover", cfg.Watchdog.FailureDetection.Threshold.Failover, 0.5},
		{"watchdog.failureDetection.threshold.adjustManaged", cfg.Watchdog.FailureDetection.Threshold.AdjustManaged, 0.5},
		{"watchdog.failureDetection.threshold.warning", cfg.Watchdog.FailureDetection.Threshold.Warning, 0.7},
		{"watchdog.failureDetection.waitDuration", cfg.Watchdog.FailureDetection.WaitDuration.D(), 8 * time.Hour},
		{"watchdog.failureDetection.arbiters[0].port", cfg.Watchdog.FailureDetection.Arbiters[0].Port, 22},
		{"watchdog.failureDetection.probeTimeout", cfg.Watchdog.FailureDetection.ProbeTimeout.D(), 5 * time.Second},
		{"watchdog.monitors[0].interval (seed 004)", cfg.Watchdog.Monitors[0].Interval.D(), 2 * time.Second},
		{"watchdog.monitors[0].maxFailures (seed 004)", cfg.Watchdog.Monitors[0].MaxFailures, 5},
		{"watchdog.monitors[0].scope (seed 004)", cfg.Watchdog.Monitors[0].Scope, "both"},
		{"failover.failback (seeds 001/002)", cfg.Failover.Failback, "manual"},
		{"failover.maxLagBytes (Patroni maximum_lag_on_failover)", cfg.Failover.MaxLagBytes, int64(1 << 20)},
		{"failover.automatic", cfg.Failover.Automatic, true},
		{"nats.embedded.syncAlways", cfg.NATS.Embedded.SyncAlways, true},
		{"site.role", cfg.Site.Role, "standby"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s default (-want +got):\n%s", tt.field, diff)
		}
	}
}

// TestBrokenFilesNameTheField feeds broken configurations; each must be
// rejected with a message that names the field and the problem.
func TestBrokenFilesNameTheField(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no site name", "site: {peer: b}\n", "site.name: is required"},
		{"bad site name", "site: {name: Site-A, peer: b}\n", `site.name: "Site-A" must be lower-case`},
		{"peer is self", "site: {name: a, peer: a}\n", `site.peer: "a" is this site's own name`},
		{"site address a host name", "site: {name: a, peer: b, addresses: [site-a]}\n", `site.addresses[0]: "site-a" is not an IP address`},
		{"timeout not below interval", minimal + "watchdog: {heartbeat: {interval: 5s, timeout: 5s}}\n", "watchdog.heartbeat.timeout: must be less than interval (5s >= 5s)"},
		{"negative retries", minimal + "watchdog: {heartbeat: {retries: -1}}\n", "watchdog.heartbeat.retries: -1 must be 0-100"},
		{"unknown probe", minimal + "watchdog: {heartbeat: {probe: udp}}\n", `watchdog.heartbeat.probe: "udp" must be icmp or tcp`},
		{"tcp probe without port", minimal + "watchdog: {heartbeat: {probe: tcp}}\n", "watchdog.heartbeat.port: 0 must be 1-65535 for a tcp probe"},
		{"threshold over one", minimal + "watchdog: {failureDetection: {threshold: {failover: 1.5}}}\n", "watchdog.failureDetection.threshold.failover: 1.5 must be a share between 0 and 1"},
		{"adjustManaged above failover", minimal + "watchdog: {failureDetection: {threshold: {failover: 0.4, adjustManaged: 0.6}}}\n", "threshold.adjustManaged: 0.6 must not exceed failover 0.4"},
		{"custom without script", minimal + "watchdog: {failureDetection: {isCustom: true, script: \"\"}}\n", "watchdog.failureDetection.script: is required when isCustom is true"},
		{"arbiter without known hosts", minimal + "watchdog: {failureDetection: {arbiters: [{username: u, password: p, host: 10.0.0.1}]}}\n", "watchdog.failureDetection.arbiters[0].knownHosts: is required"},
		{"arbiter without credentials", minimal + "watchdog: {failureDetection: {arbiters: [{username: u, host: 10.0.0.1, knownHosts: /k}]}}\n", "watchdog.failureDetection.arbiters[0]: needs a password or a privateKey"},
		{"bad schedule", minimal + "file: {backup: {hoursOfDay: \"1,25\"}}\n", `file.backup.hoursOfDay: "25" is outside 0-23`},
		{"zero maxCount", minimal + "file: {backup: {maxCount: 0}}\n", "file.backup.maxCount: 0 must be at least 1"},
		{"bad duration", minimal + "watchdog: {heartbeat: {interval: soon}}\n", `"soon" is not a duration`},
		{"unknown key", minimal + "watchdog: {heartbeat: {intervall: 5s}}\n", "field intervall not found"},
		{"mail without smtp host", minimal + "watchdog: {notification: {email: [ops@example.com]}}\n", "watchdog.notification.smtp.host: is required"},
		{"bad mail security", minimal + "watchdog: {notification: {smtp: {security: ssl}}}\n", `watchdog.notification.smtp.security: "ssl" must be starttls, tls or none`},
		{"vip without prefix", minimal + "vip: {address: 10.0.0.10, interface: eth0}\n", `vip.address: "10.0.0.10" must be an address with prefix length`},
		{"mysql without dsn", minimal + "mysql: {enabled: true}\n", "mysql.dsn: is required when mysql.enabled is true"},
		{"bad failback", minimal + "failover: {failback: sometimes}\n", `failover.failback: "sometimes" must be manual or automatic`},
		{"monitor bad scope", minimal + "watchdog: {monitors: [{name: m, kind: cpu, threshold: 90, scope: everywhere}]}\n", `watchdog.monitors[0].scope: "everywhere" must be primary, standby or both`},
		{"secret env missing", minimal + "core: {adminPass: env:DRWATCH_TEST_SURELY_UNSET}\n", "environment variable DRWATCH_TEST_SURELY_UNSET is not set"},
		{"nats url not a url", minimal + "nats: {url: localhost}\n", `nats.url: "localhost" must be a URL`},
		{"failover share NaN", minimal + "watchdog: {failureDetection: {threshold: {failover: .nan}}}\n", "watchdog.failureDetection.threshold.failover: NaN is not a number"},
		{"warning share NaN", minimal + "watchdog: {failureDetection: {threshold: {warning: .NaN}}}\n", "watchdog.failureDetection.threshold.warning: NaN is not a number"},
		{"adjustManaged share NaN", minimal + "watchdog: {failureDetection: {threshold: {adjustManaged: .nan}}}\n", "watchdog.failureDetection.threshold.adjustManaged: NaN is not a number"},
		{"failover share +Inf", minimal + "watchdog: {failureDetection: {threshold: {failover: .inf}}}\n", "watchdog.failureDetection.threshold.failover: +Inf is not a number"},
		{"warning share -Inf", minimal + "watchdog: {failureDetection: {threshold: {warning: -.inf}}}\n", "watchdog.failureDetection.threshold.warning: -Inf is not a number"},
		{"failover share zero", minimal + "watchdog: {failureDetection: {threshold: {failover: 0, adjustManaged: 0}}}\n", "watchdog.failureDetection.threshold.failover: 0 would never fence an isolated active nor promote the standby"},
		{"negative share", minimal + "watchdog: {failureDetection: {threshold: {warning: -0.1}}}\n", "watchdog.failureDetection.threshold.warning: -0.1 must be a share between 0 and 1"},
		{"arbiter listed twice", minimal + "watchdog: {failureDetection: {arbiters: [{username: u, password: p, host: 10.0.0.1, knownHosts: /k}, {username: u, password: p, host: 10.0.0.2, knownHosts: /k}, {username: v, password: p, host: 10.0.0.1, port: 22, knownHosts: /k}]}}\n", "watchdog.failureDetection.arbiters[2]: 10.0.0.1:22 is arbiters[0] again"},
		{"arbiter listed twice, host name case", minimal + "watchdog: {failureDetection: {arbiters: [{username: u, password: p, host: arb1.example.org, knownHosts: /k}, {username: u, password: p, host: ARB1.example.org., knownHosts: /k}]}}\n", "watchdog.failureDetection.arbiters[1]: ARB1.example.org.:22 is arbiters[0] again"},
		{"arbiter listed twice, IPv6 spelling", minimal + "watchdog: {failureDetection: {arbiters: [{username: u, password: p, host: \"fd00::1\", port: 2222, knownHosts: /k}, {username: u, password: p, host: \"fd00:0::0:1\", port: 2222, knownHosts: /k}]}}\n", "watchdog.failureDetection.arbiters[1]: [fd00:0::0:1]:2222 is arbiters[0] again"},
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

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Parse(strings.NewReader("site: {name: A}\nwatchdog: {heartbeat: {retries: -2}}\n"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"site.name", "site.peer", "watchdog.heartbeat.retries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in %v", want, err)
		}
	}
}

func TestSecretsFromFileAndEnvNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DRWATCH_TEST_SMTP", "s3cret-env")
	cfg := mustParse(t, minimal+"core: {adminPass: file:"+pw+"}\nwatchdog: {notification: {smtp: {password: env:DRWATCH_TEST_SMTP}}, failureDetection: {arbiters: [{username: u, password: s3cret-lit, host: h, knownHosts: /k}]}}\n")
	if cfg.Core.AdminPass.Value() != "s3cret-file" || cfg.Watchdog.Notification.SMTP.Password.Value() != "s3cret-env" {
		t.Fatalf("secrets not resolved: %q %q", cfg.Core.AdminPass.Value(), cfg.Watchdog.Notification.SMTP.Password.Value())
	}
	sections, err := cfg.APISections(Runtime{Role: "active"})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(sections)
	for _, secret := range []string{"s3cret-file", "s3cret-env", "s3cret-lit"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("api output leaks %q: %s", secret, out)
		}
	}
}

func TestListsAcceptSeedCommaStrings(t *testing.T) {
	cfg := mustParse(t, minimal+"core: {peerLoadBalancerNodes: \"10.0.0.1, 10.0.0.2\"}\n")
	if diff := cmp.Diff(List{"10.0.0.1", "10.0.0.2"}, cfg.Core.PeerLoadBalancerNodes); diff != "" {
		t.Error(diff)
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in      string
		lo, hi  int
		want    []int
		wantErr string
	}{
		{"*", 0, 6, []int{0, 1, 2, 3, 4, 5, 6}, ""},
		{"1,3,5", 0, 6, []int{1, 3, 5}, ""},
		{"20-23,0", 0, 23, []int{0, 20, 21, 22, 23}, ""},
		{"3,3", 0, 6, []int{3}, ""},
		{"7", 0, 6, nil, "outside 0-6"},
		{"5-2", 0, 6, nil, "outside"},
		{"mon", 0, 6, nil, "not a number"},
	}
	for _, tt := range tests {
		got, err := ParseSchedule(tt.in, tt.lo, tt.hi)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSchedule(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSchedule(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestAPISectionsMatchSeedLayout compares the api v1 config rendering with
// the seed's example JSON key by key and type by type.
func TestAPISectionsMatchSeedLayout(t *testing.T) {
	cfg := mustParse(t, minimal+`core: {peerVip: 10.155.90.210, adminPass: ABCDE12345, peerLoadBalancerNodes: 10.155.90.211, peerBusinessLogicNodes: 10.155.90.211, peerDeviceMgtIps: 10.155.90.211}
mysql: {peerVip: 10.155.90.210, peerNodes: 10.155.90.211}
pgsql: {peerFmpmVip: 10.155.90.210, peerNodes: 10.155.90.211}
watchdog:
  notification: {email: abc@example.com, smtp: {host: mail}}
  failureDetection: {arbiters: [{username: user1, password: xxx, host: 10.155.69.114, knownHosts: /k}]}
deviceManagement: {peerNodes: 10.155.90.211, nodes: 10.155.90.222, ip: "10.155.90.228,eth0"}
`)
	got, err := cfg.APISections(Runtime{Role: "active", Failover: ""})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(got)
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	// The seed's examples (seed 000, table 1), secrets masked.
	seed := `{
"role": "active", "failover": "",
"core": {"peerVip": "10.155.90.210", "adminPass": "********", "scpTimeout": 120, "peerLoadBalancerNodes": "10.155.90.211", "peerBusinessLogicNodes": "10.155.90.211", "peerDeviceMgtIps": "10.155.90.211"},
"mysql": {"hasDedicatedDb": false, "peerVip": "10.155.90.210", "peerNodes": "10.155.90.211"},
"pgsql": {"hasFmpm": false, "peerFmpmVip": "10.155.90.210", "peerNodes": "10.155.90.211"},
"file": {"backup": {"maxCount": 3, "hoursOfDay": "*", "daysOfWeek": "*"}, "restore": {"hoursOfDay": "*", "daysOfWeek": "*"}},
"watchdog": {"heartbeat": {"retries": 4, "timeout": 5, "interval": 30},
  "notification": {"email": "abc@example.com", "interval": 3600},
  "failureDetection": {"isCustom": false, "script": "/var/cache/jmp-geo/watchdog/bin/arbitration",
    "threshold": {"failover": 0.5, "adjustManaged": 0.5, "warning": 0.7}, "waitDuration": "8h",
    "arbiters": [{"username": "user1", "password": "********", "host": "10.155.69.114", "port": 22, "privateKey": ""}]}},
"deviceManagement": {"peerNodes": "10.155.90.211", "nodes": "10.155.90.222", "ip": "10.155.90.228,eth0"}
}`
	var want map[string]any
	if err := json.Unmarshal([]byte(seed), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("api v1 config differs from the seed's layout (-seed +got):\n%s", diff)
	}

	if _, err := cfg.APISections(Runtime{}, "core", "nonsense"); err == nil || !strings.Contains(err.Error(), `unknown section "nonsense"`) {
		t.Errorf("unknown section err = %v", err)
	}
	only, err := cfg.APISections(Runtime{}, "psql")
	if err != nil || only["pgsql"] == nil || len(only) != 1 {
		t.Errorf("--include psql (the seed example's spelling) = %v, %v", only, err)
	}
}

// TestSampleConfigsAreValid loads every site file under deployments/ (local
// and compose); each must validate, timing contract included.
func TestSampleConfigsAreValid(t *testing.T) {
	one, _ := filepath.Glob("../../deployments/*/*.yaml")
	two, _ := filepath.Glob("../../deployments/*/*/*.yaml")
	paths := append(one, two...)
	if len(paths) < 4 {
		t.Fatalf("found %q; want the local and compose sites", paths)
	}
	for _, p := range paths {
		cfg, err := Load(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, c := range cfg.Timing().Checks() {
			if c.Required && !c.Holds {
				t.Errorf("%s: %s does not hold", p, c.Inequality)
			}
		}
	}
}
