package script_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/arbiter/internal/script"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "arbitration")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true needs python3 for the custom script tests")
		}
		t.Skip("python3 not installed; the Python script tests need it")
	}
}

var config = []byte(`{"role":"standby","watchdog":{"failureDetection":{"isCustom":true}}}`)

func TestRunEveryAction(t *testing.T) {
	needPython(t)
	wait := time.Date(2025, 3, 1, 20, 30, 0, 0, time.UTC)
	for _, action := range []events.Action{events.ActionBeActive, events.ActionBeStandby, events.ActionNothing, events.ActionWait} {
		waitTime := ""
		if action == events.ActionWait {
			waitTime = "2025-03-01 20:30+00:00"
		}
		shell := `#!/bin/sh
# The config arrives on stdin and in the file $DRWATCH_CONFIG_JSON.
role=$(sed -n 's/.*"role":"\([a-z]*\)".*/\1/p' "$DRWATCH_CONFIG_JSON")
cat >/dev/null
printf '{"state":"%s","action":"` + string(action) + `","description":"sh says so","payload":{"waitTime":"` + waitTime + `","details":{"lang":"sh"}}}\n' "$role"
`
		python := `#!/usr/bin/env python3
import json, os, sys
cfg = json.load(sys.stdin)
with open(os.environ["DRWATCH_CONFIG_JSON"]) as f:
    assert json.load(f) == cfg
print(json.dumps({"state": cfg["role"], "action": "` + string(action) + `", "description": "",
                  "payload": {"waitTime": "` + waitTime + `", "details": {"lang": "python", "custom": cfg["watchdog"]["failureDetection"]["isCustom"]}}}))
`
		for lang, body := range map[string]string{"sh": shell, "python": python} {
			t.Run(string(action)+"/"+lang, func(t *testing.T) {
				r := script.Runner{Path: writeScript(t, body), Timeout: 10 * time.Second}
				a, err := r.Run(context.Background(), config)
				if err != nil {
					var se *script.Error
					errors.As(err, &se)
					t.Fatalf("Run: %v (output %q)", err, se.Output)
				}
				if a.State != events.RoleStandby || a.Action != action {
					t.Errorf("got state %s action %s, want standby %s", a.State, a.Action, action)
				}
				if (action == events.ActionWait) != (a.WaitUntil != nil) || (a.WaitUntil != nil && !a.WaitUntil.Equal(wait)) {
					t.Errorf("waitUntil = %v", a.WaitUntil)
				}
				var details map[string]any
				if err := json.Unmarshal(a.Details, &details); err != nil || details["lang"] != lang {
					t.Errorf("details = %s (%v)", a.Details, err)
				}
			})
		}
	}
}

func TestRunBadScripts(t *testing.T) {
	needPython(t)
	tests := []struct {
		name, body string
		reason     string // in Error.Reason
		output     string // in Error.Output
	}{
		{"sh crashes", "#!/bin/sh\necho starting\necho 'cannot reach arbiters' >&2\nexit 3\n", "exit status 3", "cannot reach arbiters"},
		{"python raises", "#!/usr/bin/env python3\nraise SystemExit('boom: no route')\n", "exit status 1", "boom: no route"},
		{"sh prints garbage", "#!/bin/sh\necho 'all good, I think'\n", "not a JSON object", "all good"},
		{"python prints garbage", "#!/usr/bin/env python3\nprint('{\"state\": ')\n", "not a JSON object", `{"state":`},
		{"sh empty state", `#!/bin/sh
echo '{"state":"","action":"beActive","description":"","payload":{"waitTime":"","details":{}}}'
`, `"state" must not be empty`, `"state":""`},
		{"python empty state", `#!/usr/bin/env python3
import json; print(json.dumps({"state": "", "action": "nothing", "description": "", "payload": {"waitTime": "", "details": {}}}))
`, `"state" must not be empty`, `"state": ""`},
		{"prints nothing", "#!/bin/sh\nexit 0\n", "nothing printed", ""},
		{"not executable", "", "could not run", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeScript(t, tt.body)
			if tt.body == "" {
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := script.Runner{Path: p, Timeout: 10 * time.Second}.Run(context.Background(), config)
			var se *script.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *script.Error", err)
			}
			if !strings.Contains(se.Reason, tt.reason) || !strings.Contains(se.Output, tt.output) {
				t.Errorf("reason %q output %q; want reason with %q and output with %q", se.Reason, se.Output, tt.reason, tt.output)
			}
		})
	}
}

// A hanging script is killed at the timeout with the children it started.
func TestRunHangKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	body := "#!/bin/sh\necho 'thinking...'\nsleep 300 &\necho $! > " + pidFile + "\nwait\n"
	start := time.Now()
	_, err := script.Runner{Path: writeScript(t, body), Timeout: 300 * time.Millisecond}.Run(context.Background(), config)
	var se *script.Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "did not finish within scriptTimeout 300ms") || !strings.Contains(se.Output, "thinking") {
		t.Fatalf("err = %v, want a timeout *script.Error with the output", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run returned after %s for a 300ms timeout", took)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d outlived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParse(t *testing.T) {
	wt := time.Date(2025, 3, 1, 20, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		out  string
		want script.Answer
		err  string
	}{
		{"minimal", `{"state":"active","action":"nothing","description":"","payload":{"waitTime":""}}`,
			script.Answer{State: "active", Action: "nothing"}, ""},
		{"wait seed form", `{"state":"standby","action":"wait","description":"grace","payload":{"waitTime":"2025-03-01 20:30+00:00","details":{"a":1}}}`,
			script.Answer{State: "standby", Action: "wait", Description: "grace", WaitUntil: &wt, Details: json.RawMessage(`{"a":1}`)}, ""},
		{"wait RFC 3339 other zone", `{"state":"standby","action":"wait","description":"","payload":{"waitTime":"2025-03-01T21:30:00+01:00"}}`,
			script.Answer{State: "standby", Action: "wait", WaitUntil: &wt}, ""},
		{"wait no zone is UTC", `{"state":"standby","action":"wait","description":"","payload":{"waitTime":"2025-03-01 20:30"}}`,
			script.Answer{State: "standby", Action: "wait", WaitUntil: &wt}, ""},
		{"surrounding whitespace", "\n  {\"state\":\"active\",\"action\":\"beStandby\",\"description\":\"x\",\"payload\":{\"waitTime\":\"\",\"details\":null}}\n\n",
			script.Answer{State: "active", Action: "beStandby", Description: "x"}, ""},
		{"empty", "", script.Answer{}, "nothing printed"},
		{"array", `[1]`, script.Answer{}, "not a JSON object"},
		{"two objects", `{"state":"active","action":"nothing","description":"","payload":{"waitTime":""}} {}`, script.Answer{}, "more than one JSON value"},
		{"no state", `{"action":"nothing","description":"","payload":{"waitTime":""}}`, script.Answer{}, `"state" is required`},
		{"bad state", `{"state":"primary","action":"nothing","description":"","payload":{"waitTime":""}}`, script.Answer{}, `"state" "primary" must be active or standby`},
		{"no action", `{"state":"active","description":"","payload":{"waitTime":""}}`, script.Answer{}, `"action" is required`},
		{"empty action", `{"state":"active","action":"","description":"","payload":{"waitTime":""}}`, script.Answer{}, `"action" must not be empty`},
		{"bad action", `{"state":"active","action":"failover","description":"","payload":{"waitTime":""}}`, script.Answer{}, `"action" "failover" must be`},
		{"no description", `{"state":"active","action":"nothing","payload":{"waitTime":""}}`, script.Answer{}, `"description" is required`},
		{"description not a string", `{"state":"active","action":"nothing","description":1,"payload":{"waitTime":""}}`, script.Answer{}, "not a JSON object"},
		{"no payload", `{"state":"active","action":"nothing","description":""}`, script.Answer{}, `"payload" is required`},
		{"no waitTime", `{"state":"active","action":"nothing","description":"","payload":{}}`, script.Answer{}, `"payload.waitTime" is required`},
		{"wait without time", `{"state":"standby","action":"wait","description":"","payload":{"waitTime":""}}`, script.Answer{}, `action "wait" needs`},
		{"bad waitTime", `{"state":"standby","action":"wait","description":"","payload":{"waitTime":"tomorrow"}}`, script.Answer{}, `"tomorrow" is not a time`},
		{"details not an object", `{"state":"active","action":"nothing","description":"","payload":{"waitTime":"","details":""}}`, script.Answer{}, `"payload.details" must be a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := script.Parse([]byte(tt.out))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
