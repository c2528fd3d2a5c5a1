package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseDisableDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"2h", 2 * time.Hour, ""},
		{"30m", 30 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"2", 2 * time.Hour, ""},
		{"1.5", 90 * time.Minute, ""},
		{"0", 0, ""},
		{" 4 ", 4 * time.Hour, ""},
		{"2x", 0, `"2x" is not a duration`},
		{"", 0, "empty duration"},
		{"-1", 0, "negative"},
		{"-2h", 0, "not positive"},
		{"0s", 0, "not positive: use 0"},
	}
	for _, tt := range tests {
		got, err := ParseDisableDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDisableDuration(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDisableDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitSQLKeepsThePostgresDoBlockWhole(t *testing.T) {
	p := &pairSpec{Active: "a", Standby: "b", ActiveAddr: "10.0.0.1", StandbyAdr: "10.0.0.2", Users: replUsers{PgRepUser: "replication", PgRepPass: "r", PgAdminUser: "postgres", PgAdminPass: "p", MySQLRepUser: "repUser", MySQLRepPass: "x", MySQLAdminUser: "repAdmin", MySQLAdminPass: "y"}}
	pg := splitSQL(p.pgUsers(), true)
	if len(pg) != 3 || !strings.HasPrefix(pg[0], "DO $$") || !strings.HasSuffix(pg[0], "END $$") {
		t.Errorf("pg statements = %q", pg)
	}
	my := splitSQL(p.mysqlUsers(), false)
	want := []string{"CREATE USER", "GRANT", "CREATE USER", "GRANT", "FLUSH"}
	var got []string
	for _, s := range my {
		got = append(got, strings.Fields(s)[0]+map[bool]string{true: " USER"}[strings.HasPrefix(s, "CREATE USER")])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mysql statements (-want +got):\n%s\n%q", diff, my)
	}
}

func TestWords(t *testing.T) {
	if rest, err := words([]string{"v1", "config", "--list"}, "v1", "config"); err != nil || len(rest) != 1 {
		t.Errorf("words = %v, %v", rest, err)
	}
	if _, err := words([]string{"v2"}, "v1", "config"); err == nil || !strings.Contains(err.Error(), `expected "v1", got "v2"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := words([]string{"v1"}, "v1", "config"); err == nil || !strings.Contains(err.Error(), "got nothing") {
		t.Errorf("err = %v", err)
	}
}

// validateSite is a site with the seed's timers, a line with a VIP and
// nodes, and three arbiters whose sshd drops a silent session after 6 s.
const validateSite = `site: {name: a, peer: b, peerAddresses: [10.0.0.2]}
core: {peerVip: 10.0.0.2, peerLoadBalancerNodes: [10.0.1.2]}
watchdog:
  failureDetection:
    arbiterSessionTimeout: 6s
    arbiters:
      - {host: 10.0.0.31, username: u, password: p, knownHosts: /k}
      - {host: 10.0.0.32, username: u, password: p, knownHosts: /k}
      - {host: 10.0.0.33, username: u, password: p, knownHosts: /k}
`

func runValidate(t *testing.T, yaml string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"validate", "-config", path}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestValidatePrintsTheTimingContract: after "ok", every derived figure
// with its formula, and each inequality checked.
func TestValidatePrintsTheTimingContract(t *testing.T) {
	code, out, errOut := runValidate(t, validateSite)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasSuffix(strings.SplitN(out, "\n", 2)[0], "site.yaml: ok") {
		t.Errorf("first line %q, want <path>: ok", strings.SplitN(out, "\n", 2)[0])
	}
	for _, want := range []string{
		"detectionWorst    1m0s     interval + (retries + 2) × timeout = 30s + 6 × 5s",
		"selfFence         1m31s    detectionWorst + activeVerdict + decisionTick + selfFenceTimeout = 1m0s + 20s + 1s + 10s",
		"takeoverHold      2m33s    selfFence + detectionWorst + slack = 1m31s + 1m0s + 2s",
		"sessionEvidence   1s       arbiterSessionTimeout − probeTimeout = 6s − 5s",
		"claimTimeout      1m1s     interval + 5 × probeTimeout + 6s = 30s + 5 × 5s + 6s",
		"  ok   earliestTakeover 1m33s > selfFence 1m31s",
		"  ok   confirmTimeout 2m3s > startupHold 1m0s + claimTimeout 1m1s",
		"  no   sessionEvidence 1s > selfFence 1m31s (not required: the takeover hold alone keeps the contract",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	code, out, errOut := runValidate(t, validateSite, "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var got struct {
		OK      bool
		Figures []struct {
			Name, Value, Formula, Why string
			Seconds                   float64
		}
		Checks []struct {
			Name, Inequality string
			Holds, Required  bool
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if !got.OK {
		t.Error("ok is false")
	}
	figures := map[string]float64{}
	for _, f := range got.Figures {
		figures[f.Name] = f.Seconds
		if f.Formula == "" || f.Why == "" || f.Value == "" {
			t.Errorf("figure %+v lacks a field", f)
		}
	}
	for name, want := range map[string]float64{"selfFence": 91, "takeoverHold": 153, "earliestTakeover": 93, "restartYield": 163, "confirmTimeout": 123} {
		if figures[name] != want {
			t.Errorf("%s = %gs, want %gs", name, figures[name], want)
		}
	}
	for _, c := range got.Checks {
		if c.Required && !c.Holds {
			t.Errorf("required check %s does not hold in an accepted file", c.Inequality)
		}
	}
	if len(got.Checks) == 0 || got.Checks[0].Name != "contract" {
		t.Errorf("checks = %+v, want the contract first", got.Checks)
	}
}

func TestValidateRejectsWithTheField(t *testing.T) {
	code, out, errOut := runValidate(t, validateSite+"failover: {selfFenceTimeout: 0s}\n", "--json")
	if code != exitError {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitError, out, errOut)
	}
	if out != "" || !strings.Contains(errOut, "failover.selfFenceTimeout: must be positive") {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}
