package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// automaticSaga records, as site a's orchestrator, a completed automatic
// takeover (standby→active) at epoch.
func automaticSaga(t *testing.T, s *testSite, id string, epoch events.Epoch) {
	t.Helper()
	started := s.publish(t, events.FailoverStarted{FailoverID: id, From: "standby", To: "active", Epoch: epoch, Reason: "standby.takeover: peer unreachable", Steps: []string{"take-vip"}}, nil)
	s.publish(t, events.FailoverStepDone{FailoverID: id, Step: "take-vip", OK: true, DurationSeconds: 0.1}, started)
	s.publish(t, events.RoleChanged{From: "standby", To: "active", Epoch: epoch, Reason: "takeover", FailoverID: id}, started)
	s.publish(t, events.FailoverCompleted{FailoverID: id, Role: "active", Epoch: epoch, DurationSeconds: 2.5}, started)
}

// TestTheDayAfterAFailover drives, against a running site, what an
// operator does after an automatic failover: status and health show the
// block window, `failover ack` and its HTTP route lift it, history lists
// the moves as the log holds them, and GET /role answers a load balancer.
// The site runs without its orchestrator; the test records the sagas.
func TestTheDayAfterAFailover(t *testing.T) {
	s := startSite(t, "-services", "heartbeat,arbiter,dbmonitor,filesync,notifier")
	cfg := s.cfgPath
	role := func() (int, string) {
		resp, err := http.Get("http://" + s.httpAddr + "/role")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	post := func(path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	acks := func() int { return len(s.logOf(t, events.SiteTypeFilter("a", "FailoverAcknowledged"))) }

	if code, body := role(); code != http.StatusServiceUnavailable {
		t.Errorf("GET /role before any role: %d %q, want 503", code, body)
	}
	if r := runCLI(t, cfg, "failover", "ack"); r.code != 0 || !strings.Contains(r.stdout, "nothing to acknowledge") || acks() != 0 {
		t.Errorf("ack with no failover: %v (acks %d)", r, acks())
	}

	automaticSaga(t, s, "f-auto-1", 1)
	if code, body := role(); code != http.StatusOK || body != "active" {
		t.Errorf("GET /role on the active site: %d %q", code, body)
	}
	r := runCLI(t, cfg, "status")
	for _, want := range []string{"epoch 1", "VIP: held by a", "BLOCKED automatic failover until", "f-auto-1", "drwatch failover ack"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%v", want, r)
		}
	}
	r = runCLI(t, cfg, "status", "--json")
	var pair struct {
		BlockWindow *struct {
			Failover string
			Until    time.Time
		}
		VIPHolders []string
		MaxEpoch   int
	}
	if err := json.Unmarshal([]byte(r.stdout), &pair); err != nil || pair.BlockWindow == nil || pair.BlockWindow.Failover != "f-auto-1" ||
		pair.BlockWindow.Until.Before(time.Now().Add(50*time.Minute)) || len(pair.VIPHolders) != 1 || pair.MaxEpoch != 1 {
		t.Errorf("status --json: %v %+v\n%v", err, pair, r)
	}
	r = runCLI(t, cfg, "health")
	if r.code != 5 && r.code != 1 {
		t.Errorf("health with the block window: %v", r)
	}
	if !strings.Contains(r.stdout, "block window") || !strings.Contains(r.stdout, "WARN") || !strings.Contains(r.stdout, "[failover.blockWindow 1h0m0s]") {
		t.Errorf("health lacks the block window warning:\n%s", r.stdout)
	}
	r = runCLI(t, cfg, "health", "--json")
	var h struct {
		Level  string
		Checks []struct{ Name, Level string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("health --json: %v\n%v", err, r)
	}
	for _, c := range h.Checks {
		if c.Name == "block window" && c.Level != "WARN" {
			t.Errorf("block window check %s, want WARN", c.Level)
		}
	}
	if (h.Level == "WARN") != (r.code == 5) || (h.Level == "FAIL") != (r.code == 1) {
		t.Errorf("health level %s with exit %d", h.Level, r.code)
	}

	s.expectFail(t, 2, "flag provided but not defined", "failover", "ack", "--nope")
	s.expectFail(t, 2, "at most 1024", "failover", "ack", "--reason", strings.Repeat("x", 1025))
	r = runCLI(t, cfg, "failover", "ack", "--reason", "checked the new active")
	if r.code != 0 || !strings.Contains(r.stdout, "acknowledged f-auto-1") || acks() != 1 {
		t.Fatalf("failover ack: %v (acks %d)", r, acks())
	}
	ackEnv := s.logOf(t, events.SiteTypeFilter("a", "FailoverAcknowledged"))[0]
	if ev, _ := events.DecodeInto[events.FailoverAcknowledged](ackEnv); ev.Reason != "checked the new active" || ev.By == "" {
		t.Errorf("recorded %+v", ev)
	}
	if r := runCLI(t, cfg, "status"); strings.Contains(r.stdout, "BLOCKED") {
		t.Errorf("status still blocked after ack:\n%s", r.stdout)
	}
	if r := runCLI(t, cfg, "failover", "ack", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"recorded": false`) || acks() != 1 {
		t.Errorf("second ack: %v", r)
	}

	// The HTTP route: authenticated, strict body, same effect.
	s.publish(t, events.RoleChanged{From: "active", To: "standby", Epoch: 1, Reason: "test"}, nil)
	automaticSaga(t, s, "f-auto-2", 3)
	if code, _ := post("/api/v1/failover/ack", "", `{}`); code != http.StatusUnauthorized {
		t.Errorf("ack without a token: %d", code)
	}
	if code, body := post("/api/v1/failover/ack", "s3cret-token", `{"why": "x"}`); code != http.StatusBadRequest || !strings.Contains(body["error"].(string), "unknown field") {
		t.Errorf("ack with a bad body: %d %v", code, body)
	}
	if acks() != 1 {
		t.Fatalf("a refused route recorded an acknowledgement")
	}
	code, body := post("/api/v1/failover/ack", "s3cret-token", `{"reason": "seen from the NOC"}`)
	if code != http.StatusOK || body["recorded"] != true || acks() != 2 {
		t.Errorf("ack over HTTP: %d %v (acks %d)", code, body, acks())
	}

	// A switchover needs an active and a standby that answers: here the
	// peer never ran, so it is refused, recorded nothing, and says why.
	s.expectFail(t, 1, "site b is unknown here, not standby", "switchover", "--yes")
	s.expectFail(t, 2, `--to "c": the pair is a and b`, "switchover", "--to", "c")
	s.expectFail(t, 2, "in the past", "switchover", "--scheduled", "2020-01-01T00:00:00Z")
	s.expectFail(t, 2, "is not a time", "switchover", "--scheduled", "tomorrow")
	s.expectFail(t, 2, "needs --to SITE", "failover")
	s.expectFail(t, 1, "site a is already active", "failover", "--to", "a")
	if code, body := post("/api/v1/switchover", "s3cret-token", `{"to": "b"}`); code != http.StatusConflict {
		t.Errorf("switchover route with the peer silent: %d %v", code, body)
	}

	// pause / resume: pair-wide maintenance, recorded, shown, ended.
	maint := func() int { return len(s.logOf(t, events.SiteTypeFilter("a", "MaintenanceChanged"))) }
	s.expectFail(t, 2, `--for: "2x" is not a duration`, "pause", "--for", "2x")
	r = runCLI(t, cfg, "pause", "--for", "30m", "--reason", "network work")
	if r.code != 0 || !strings.Contains(r.stdout, "pair paused until") || maint() != 1 {
		t.Fatalf("pause: %v", r)
	}
	if r := runCLI(t, cfg, "status"); !strings.Contains(r.stdout, "MAINTENANCE PAUSED until") || !strings.Contains(r.stdout, "network work") {
		t.Errorf("status while paused:\n%s", r.stdout)
	}
	if r := runCLI(t, cfg, "health"); !strings.Contains(r.stdout, "maintenance") || r.code == 0 {
		t.Errorf("health while paused: %v", r)
	}
	if r := runCLI(t, cfg, "resume"); r.code != 0 || !strings.Contains(r.stdout, "maintenance over") || maint() != 2 {
		t.Errorf("resume: %v", r)
	}
	if r := runCLI(t, cfg, "resume", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"recorded": false`) || maint() != 2 {
		t.Errorf("resume when not paused: %v", r)
	}
	if code, body := post("/api/v1/pause", "s3cret-token", `{"for": "soon"}`); code != http.StatusBadRequest || maint() != 2 {
		t.Errorf("pause route with a bad duration: %d %v", code, body)
	}
	if code, body := post("/api/v1/pause", "s3cret-token", `{"for": "1h", "observeOnly": true}`); code != http.StatusOK || body["mode"] != "observe-only" || maint() != 3 {
		t.Errorf("pause route: %d %v", code, body)
	}
	if r := runCLI(t, cfg, "status", "--json"); !strings.Contains(r.stdout, `"mode": "observe-only"`) {
		t.Errorf("status --json while observe-only:\n%s", r.stdout)
	}
	if code, body := post("/api/v1/resume", "s3cret-token", ``); code != http.StatusOK || body["recorded"] != true || maint() != 4 {
		t.Errorf("resume route: %d %v", code, body)
	}

	// history: one line per move, as the log holds them.
	s.publish(t, events.FailoverStarted{FailoverID: "f-down", From: "active", To: "standby", Epoch: 3, Manual: true, RequestID: "r1", Reason: "request.manual: maintenance", Steps: []string{"release-vip"}}, nil)
	s.publish(t, events.FailoverAborted{FailoverID: "f-down", Step: "release-vip", Reason: "ip: operation not permitted"}, nil)
	r = runCLI(t, cfg, "history")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 {
		t.Fatalf("history: %v", r)
	}
	for i, want := range [][]string{
		{"STARTED", "MOVE"},
		{"none→a", "automatic", "2.5s", "completed", "f-auto-1"},
		{"none→a", "automatic", "completed", "f-auto-2"},
		{"a→none", "manual", "aborted at release-vip: ip: operation not permitted", "f-down"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("history line %d lacks %q: %s", i, w, lines[i])
			}
		}
	}
	r = runCLI(t, cfg, "history", "--json")
	var hist []struct {
		ID, Outcome string
	}
	if err := json.Unmarshal([]byte(r.stdout), &hist); err != nil || len(hist) != 3 || hist[2].Outcome != "aborted" {
		t.Errorf("history --json: %v %+v", err, hist)
	}
	if code, body := role(); code != http.StatusOK {
		t.Errorf("GET /role while the demotion aborted: %d %q", code, body)
	}
	s.publish(t, events.RoleChanged{From: "active", To: "standby", Epoch: 3, Reason: "test"}, nil)
	if code, body := role(); code != http.StatusServiceUnavailable || body != "standby" {
		t.Errorf("GET /role on a standby: %d %q, want 503 standby", code, body)
	}
}
