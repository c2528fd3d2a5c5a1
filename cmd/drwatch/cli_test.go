package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// drwatchBin builds the binary once for every CLI test.
func drwatchBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drwatch-cli-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "drwatch")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// result of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func runCLI(t *testing.T, cfgPath string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, drwatchBin(t), args...)
	cmd.Env = append(os.Environ(), "DRWATCH_CONFIG="+cfgPath)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// testSite is a `drwatch run` process on the embedded NATS server.
type testSite struct {
	dir, cfgPath, cfgText string
	natsURL, httpAddr     string
	bus                   *bus.Bus
	stderr                *syncBuffer
}

// syncBuffer is shared with standalone_test.go.

// connectAs connects to the site's NATS as one of its identities, with its
// key from the site's keys directory.
func (s *testSite) connectAs(t *testing.T, identity string) *nats.Conn {
	t.Helper()
	auth, err := bus.ClientAuth(filepath.Join(s.dir, "nats", "keys"), identity)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.natsURL, auth, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

const siteTemplate = `site: {name: a, peer: b, role: active, peerAddresses: [127.0.0.1]}
nats:
  embedded: {host: 127.0.0.1, port: %d, storeDir: %s}
core: {peerVip: 127.0.0.1, adminPass: s3cret-admin}
watchdog:
  heartbeat: {probe: tcp, port: %d, interval: 2s, timeout: 500ms, retries: %d}
  failureDetection: {arbiters: [{username: u, password: s3cret-arbiter, host: 127.0.0.1, knownHosts: %s}]}
http: {listen: "127.0.0.1:%d", token: s3cret-token}
`

func writeSiteConfig(t *testing.T, dir string, natsPort, httpPort, retries int) (string, string) {
	t.Helper()
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(siteTemplate, natsPort, filepath.Join(dir, "nats"), natsPort, retries, knownHosts, httpPort)
	path := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// startSite runs `drwatch run` with runArgs and connects a test bus to its
// NATS.
func startSite(t *testing.T, runArgs ...string) *testSite {
	t.Helper()
	dir := t.TempDir()
	natsPort, httpPort := freePort(t), freePort(t)
	cfgPath, text := writeSiteConfig(t, dir, natsPort, httpPort, 1)
	s := &testSite{dir: dir, cfgPath: cfgPath, cfgText: text, natsURL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort), httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), stderr: &syncBuffer{}}
	cmd := exec.Command(drwatchBin(t), append([]string{"run", "-config", cfgPath}, runArgs...)...)
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	s.waitHealthy(t, done)
	// The test speaks for the orchestrator, with the site's own key.
	var err error
	s.bus, err = bus.New(s.connectAs(t, "orchestrator"), bus.Options{Source: events.Source{Site: "a", Node: "test", Service: "orchestrator"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *testSite) waitHealthy(t *testing.T, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("drwatch run exited:\n%s", s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("site never healthy:\n%s", s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logOf returns the site's events matching filter.
func (s *testSite) logOf(t *testing.T, filter string) []*events.Envelope {
	t.Helper()
	var out []*events.Envelope
	var filters []string
	if filter != "" {
		filters = []string{filter}
	}
	if _, err := s.bus.Replay(context.Background(), 0, filters, func(_ uint64, env *events.Envelope) error {
		out = append(out, env)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// operatorEvents counts what the CLI itself recorded: "nothing changed"
// means this does not move.
func (s *testSite) operatorEvents(t *testing.T) int {
	return len(s.logOf(t, "drwatch.a.evt.cli.>"))
}

func (s *testSite) lastSeq(t *testing.T) uint64 {
	t.Helper()
	st, err := s.bus.JetStream().Stream(context.Background(), bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func (s *testSite) publish(t *testing.T, ev events.Event, parent *events.Envelope) *events.Envelope {
	t.Helper()
	env, err := s.bus.Publish(context.Background(), ev, parent)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// expectFail asserts a non-zero exit code, a message, and that the CLI
// recorded nothing.
func (s *testSite) expectFail(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	before := s.operatorEvents(t)
	r := runCLI(t, s.cfgPath, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Errorf("drwatch %v: want exit %d and %q in stderr, got %v", args, code, want, r)
	}
	if after := s.operatorEvents(t); after != before {
		t.Errorf("drwatch %v recorded %d events; a failed command must change nothing", args, after-before)
	}
}

func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case nil:
		return "null"
	}
	return reflect.TypeOf(v).Kind().String()
}

// seedAPI is every example of seed 000's table 1 in one document: the
// layout `api v1 config --list` must keep for existing scripts.
const seedAPI = `{
"role": "active", "failover": "",
"core": {"peerVip": "10.155.90.210", "adminPass": "ABCDE12345", "scpTimeout": 120, "peerLoadBalancerNodes": "10.155.90.211", "peerBusinessLogicNodes": "10.155.90.211", "peerDeviceMgtIps": "10.155.90.211"},
"mysql": {"hasDedicatedDb": false, "peerVip": "10.155.90.210", "peerNodes": "10.155.90.211"},
"pgsql": {"hasFmpm": false, "peerFmpmVip": "10.155.90.210", "peerNodes": "10.155.90.211"},
"file": {"backup": {"maxCount": 3, "hoursOfDay": "*", "daysOfWeek": "*"}, "restore": {"hoursOfDay": "*", "daysOfWeek": "*"}},
"watchdog": {"heartbeat": {"retries": 4, "timeout": 5, "interval": 30},
  "notification": {"email": "abc@example.com", "interval": 3600},
  "failureDetection": {"isCustom": false, "script": "/var/cache/jmp-geo/watchdog/bin/arbitration",
    "threshold": {"failover": 0.5, "adjustManaged": 0.5, "warning": 0.7}, "waitDuration": "8h",
    "arbiters": [{"username": "user1", "password": "xxx", "host": "10.155.69.114", "port": 22, "privateKey": ""}]}},
"deviceManagement": {"peerNodes": "10.155.90.211", "nodes": "10.155.90.222", "ip": "10.155.90.228,eth0"},
"states": {
    "arbiterMonitor": {"progress": "idle", "msg": {"service": "arbiterMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:18:55+00:00"}, "service": {}},
    "configMonitor": {"progress": "idle", "msg": {"service": "configMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:15+00:00"}, "service": {}},
    "fileMonitor": {"progress": "idle", "msg": {"service": "fileMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:18:59+00:00"}, "service": {}},
    "heartbeat": {"progress": "unknown", "msg": {"service": "heartbeat", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"localFailover": false}, "time": "2015-07-18T22:17:49+00:00"},
      "service": {"booting": false, "bootEndTime": null, "waitTime": null, "automaticFailover": false, "automaticFailoverEndTime": "2015-07-18T07:41:41+00:00"}},
    "mysqlMonitor": {"progress": "idle", "msg": {"service": "mysqlMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:09+00:00"}, "service": {}},
    "pgsqlMonitor": {"progress": "unknown", "msg": {"service": "pgsqlMonitor", "description": "Master node pgsql in active or standby site maybe CRASHED.", "state": false, "force": false, "progress": "unknown", "payload": {"code": 1098}, "time": "2015-07-18T22:18:27+00:00"}, "service": {}},
    "serviceMonitor": {"progress": "running", "msg": {"service": "serviceMonitor", "description": "", "state": true, "force": false, "progress": "unknown", "payload": {"code": 0}, "time": "2015-07-18T22:19:30+00:00"}, "service": {}}
}}`

// TestCLIAgainstARunningSite runs every operator command of the built
// binary against a real site process, checking exit codes, output and
// what each recorded in the log.
//
// The site runs without its orchestrator, so that a stand-in can answer
// (or not answer) manualFailover; TestManualFailoverWithTheOrchestrator
// drives the real one.
func TestCLIAgainstARunningSite(t *testing.T) {
	s := startSite(t, "-services", "heartbeat,arbiter,dbmonitor,filesync,notifier")
	cfg := s.cfgPath

	t.Run("help and bad commands", func(t *testing.T) {
		if r := runCLI(t, cfg, "help"); r.code != 0 || !strings.Contains(r.stdout, "manualFailover") {
			t.Errorf("help: %v", r)
		}
		s.expectFail(t, 2, `unknown command "failsafe"`, "failsafe")
		s.expectFail(t, 2, `expected "v1"`, "api", "v2", "config")
		s.expectFail(t, 2, "toolkit takes", "toolkit", "nonsense")
	})

	t.Run("api v1 config matches the seed", func(t *testing.T) {
		// One event per watchdog service so that states is complete.
		until := time.Now().Add(time.Hour)
		s.publish(t, events.FileSyncCompleted{Transport: "objectstore", Files: 1}, nil)
		s.publish(t, events.ReplicationBroken{Database: "pgsql", Scope: "cross", Server: "pg-b", Check: "wal_receiver", Error: "no sender"}, nil)
		s.publish(t, events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "test", By: "test"}, nil)
		r := runCLI(t, cfg, "api", "v1", "config", "--list")
		if r.code != 0 {
			t.Fatalf("--list: %v", r)
		}
		for _, secret := range []string{"s3cret-admin", "s3cret-arbiter", "s3cret-token"} {
			if strings.Contains(r.stdout, secret) {
				t.Errorf("--list prints the secret %q:\n%s", secret, r.stdout)
			}
		}
		var got, seed map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("--list is not JSON: %v\n%s", err, r.stdout)
		}
		if err := json.Unmarshal([]byte(seedAPI), &seed); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(shape(seed), shape(got)); diff != "" {
			t.Errorf("--list layout differs from seed 000 (-seed +got):\n%s", diff)
		}
		pg := got["states"].(map[string]any)["pgsqlMonitor"].(map[string]any)["msg"].(map[string]any)
		if pg["state"] != false || !strings.Contains(pg["description"].(string), "no sender") {
			t.Errorf("states.pgsqlMonitor.msg = %v", pg)
		}
		if got["role"] != "active" || got["core"].(map[string]any)["adminPass"] != "********" {
			t.Errorf("role %v, adminPass %v", got["role"], got["core"].(map[string]any)["adminPass"])
		}

		r = runCLI(t, cfg, "api", "v1", "config", "--include", "core,psql")
		var only map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &only) != nil || len(only) != 2 || only["pgsql"] == nil {
			t.Errorf("--include core,psql: %v", r)
		}
		s.expectFail(t, 2, `unknown section "nonsense"`, "api", "v1", "config", "--include", "core,nonsense")
		s.expectFail(t, 2, "exactly one of --list or --include", "api", "v1", "config")
	})

	t.Run("http api", func(t *testing.T) {
		get := func(path, token string) (int, map[string]any) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, body
		}
		if code, _ := get("/api/v1/config", ""); code != http.StatusUnauthorized {
			t.Errorf("no token: %d", code)
		}
		if code, _ := get("/api/v1/config", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("wrong token: %d", code)
		}
		code, body := get("/api/v1/config", "s3cret-token")
		if code != http.StatusOK || body["states"] == nil || body["core"] == nil {
			t.Errorf("config: %d %v", code, body)
		}
		r := runCLI(t, cfg, "api", "v1", "config", "--list")
		var cli map[string]any
		_ = json.Unmarshal([]byte(r.stdout), &cli)
		if diff := cmp.Diff(shape(cli), shape(body)); diff != "" {
			t.Errorf("HTTP and CLI layouts differ:\n%s", diff)
		}
		if code, body := get("/api/v1/config?include=bogus", "s3cret-token"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), "bogus") {
			t.Errorf("bad include: %d %v", code, body)
		}
		if code, body := get("/api/v1/status", "s3cret-token"); code != http.StatusOK || body["sites"] == nil {
			t.Errorf("status: %d %v", code, body)
		}
	})

	t.Run("watchdog status", func(t *testing.T) {
		s.expectFail(t, 2, `"2x" is not a duration`, "toolkit", "watchdog", "status", "--disable-automatic-failover", "2x")
		s.expectFail(t, 2, "is negative", "toolkit", "watchdog", "status", "--disable-automatic-failover", "-1")
		s.expectFail(t, 2, "exclude each other", "toolkit", "watchdog", "status", "--enable-automatic-failover", "--disable-automatic-failover", "2h")
		s.expectFail(t, 2, "flag needs an argument", "toolkit", "watchdog", "status", "--disable-automatic-failover")
		tests := []struct {
			arg   string
			until time.Duration // 0: until enabled
		}{{"2h", 2 * time.Hour}, {"30m", 30 * time.Minute}, {"3", 3 * time.Hour}, {"0", 0}}
		for _, tt := range tests {
			start := time.Now()
			r := runCLI(t, cfg, "toolkit", "watchdog", "status", "--disable-automatic-failover", tt.arg)
			if r.code != 0 {
				t.Fatalf("%s: %v", tt.arg, r)
			}
			log := s.logOf(t, events.SiteTypeFilter("a", "AutomaticFailoverChanged"))
			ev, err := events.DecodeInto[events.AutomaticFailoverChanged](log[len(log)-1])
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ev.Enabled:
				t.Errorf("%s: recorded enabled", tt.arg)
			case tt.until == 0 && ev.Until != nil:
				t.Errorf("0: until %v, want until enabled", ev.Until)
			case tt.until > 0 && (ev.Until == nil || ev.Until.Before(start.Add(tt.until-time.Second)) || ev.Until.After(time.Now().Add(tt.until))):
				t.Errorf("%s: until %v, want now+%s", tt.arg, ev.Until, tt.until)
			}
		}
		r := runCLI(t, cfg, "toolkit", "watchdog", "status")
		if r.code != 0 || !strings.Contains(r.stdout, "disabled until enabled") {
			t.Errorf("status after 0: %v", r)
		}
		if r := runCLI(t, cfg, "toolkit", "watchdog", "status", "--enable-automatic-failover"); r.code != 0 {
			t.Fatal(r)
		}
		if r := runCLI(t, cfg, "toolkit", "watchdog", "status"); !strings.Contains(r.stdout, "automatic failover: enabled") {
			t.Errorf("after enable: %v", r)
		}
	})

	t.Run("manualFailover", func(t *testing.T) {
		s.expectFail(t, 2, "-a and -s exclude each other", "manualFailover", "-a", "-s")
		s.expectFail(t, 2, "flag provided but not defined", "manualFailover", "--nope")

		// Nobody answers: exit 4, and the request stays in the log.
		before := len(s.logOf(t, events.SiteTypeFilter("a", "FailoverRequested")))
		r := runCLI(t, cfg, "manualFailover", "-s", "--timeout", "1s")
		if r.code != 4 || !strings.Contains(r.stderr, "is recorded; no answer from the orchestrator") {
			t.Errorf("unanswered: %v", r)
		}
		reqs := s.logOf(t, events.SiteTypeFilter("a", "FailoverRequested"))
		if len(reqs) != before+1 {
			t.Fatalf("requests %d → %d", before, len(reqs))
		}
		req, _ := events.DecodeInto[events.FailoverRequested](reqs[len(reqs)-1])
		if req.Target != "a" || req.ToRole != events.RoleStandby || !req.Manual || req.Force {
			t.Errorf("request = %+v", req)
		}

		// A stand-in orchestrator answers the next request with a saga.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go answerRequests(ctx, s, s.lastSeq(t)+1, "")
		r = runCLI(t, cfg, "manualFailover", "-a", "--force", "--timeout", "20s")
		if r.code != 0 {
			t.Fatalf("answered: %v", r)
		}
		for _, want := range []string{"requested: site a to become active with force", "failover fo-", "step fence done", "step promote done", "role standby→active", "completed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("manualFailover output lacks %q:\n%s", want, r.stdout)
			}
		}
		cancel()

		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		go answerRequests(ctx, s, s.lastSeq(t)+1, "guard.lag")
		r = runCLI(t, cfg, "manualFailover", "-a", "--timeout", "20s")
		if r.code != 1 || !strings.Contains(r.stderr, "refused by site a") || !strings.Contains(r.stderr, "guard.lag") {
			t.Errorf("refused: %v", r)
		}
	})

	t.Run("events and timeline", func(t *testing.T) {
		fid := publishSaga(t, s)
		r := runCLI(t, cfg, "events", "list", "--type", "FailoverStepDone", "--site", "a")
		if r.code != 0 || strings.Count(r.stdout, "FailoverStepDone") < 3 {
			t.Errorf("list: %v", r)
		}
		s.expectFail(t, 2, `--type "Bogus" is not an event type`, "events", "list", "--type", "Bogus")
		s.expectFail(t, 2, "--since", "events", "list", "--since", "yesterday")
		s.expectFail(t, 2, "events takes", "events")
		if r := runCLI(t, cfg, "events", "list", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); r.code != 0 || r.stdout != "" {
			t.Errorf("future --since: %v", r)
		}

		out := filepath.Join(t.TempDir(), "export.jsonl")
		if r := runCLI(t, cfg, "events", "export", "--since", "1h", "-o", out); r.code != 0 {
			t.Fatal(r)
		}
		data, _ := os.ReadFile(out)
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if _, err := events.Unmarshal(sc.Bytes()); err != nil {
				t.Errorf("export line %d: %v", lines, err)
			}
			lines++
		}
		if all := len(s.logOf(t, "")); lines == 0 || lines > all {
			t.Errorf("export wrote %d lines, log holds %d", lines, all)
		}

		// tail sees an event published after it started.
		tail := exec.Command(drwatchBin(t), "events", "tail", "--type", "FailoverAcknowledged", "--count", "1")
		tail.Env = append(os.Environ(), "DRWATCH_CONFIG="+cfg)
		var tailOut bytes.Buffer
		tail.Stdout = &tailOut
		if err := tail.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		s.publish(t, events.FailoverAcknowledged{By: "tester", Reason: "seen"}, nil)
		if err := waitCmd(tail, 20*time.Second); err != nil {
			t.Fatalf("tail: %v", err)
		}
		if !strings.Contains(tailOut.String(), "failover acknowledged by tester") {
			t.Errorf("tail printed %q", tailOut.String())
		}

		checkTimeline(t, s, fid)
	})

	t.Run("health and status", func(t *testing.T) {
		r := runCLI(t, cfg, "health")
		if r.code != 0 && r.code != 1 {
			t.Fatalf("health: %v", r)
		}
		for _, want := range []string{"CHECK", "RESULT", "site process", "OK", "http"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("health lacks %q:\n%s", want, r.stdout)
			}
		}
		// The stand-in saga left pgsql broken (published above): a FAIL row
		// and exit 1.
		if r.code != 1 || !strings.Contains(r.stdout, "FAIL") {
			t.Errorf("health with a broken replication: %v", r)
		}
		s.publish(t, events.ReplicationRepaired{Database: "pgsql", Scope: "cross", Server: "pg-b", Check: "wal_receiver", Attempts: 1}, nil)
		r = runCLI(t, cfg, "health", "--json")
		var h struct {
			Healthy bool
			Checks  []struct {
				Name   string
				OK     bool
				Detail string
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
			t.Fatalf("health --json: %v\n%v", err, r)
		}
		if h.Healthy != (r.code == 0 || r.code == 5) {
			t.Errorf("healthy %v with exit %d (0 all OK, 5 warnings only)", h.Healthy, r.code)
		}
		for _, c := range h.Checks {
			if c.Name == "pgsql replication" && !c.OK {
				t.Errorf("pgsql still failing after repair: %v", c)
			}
		}

		r = runCLI(t, cfg, "status")
		for _, want := range []string{"PAIR a/b", "SITE", "a *", "active", "b ", "last failover"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("status lacks %q:\n%v", want, r)
			}
		}
		r = runCLI(t, cfg, "status", "--json")
		var pair struct {
			Self  string
			Sites []struct {
				Name  string
				Role  string
				Epoch int
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &pair); err != nil || len(pair.Sites) != 2 || pair.Sites[0].Role != "active" || pair.Sites[0].Epoch == 0 {
			t.Errorf("status --json: %v %+v\n%v", err, pair, r)
		}
	})

	t.Run("toolkit config update", func(t *testing.T) {
		r := runCLI(t, cfg, "toolkit", "config", "update")
		if r.code != 0 || !strings.Contains(r.stdout, "update recorded") {
			t.Fatalf("first update: %v", r)
		}
		before := s.operatorEvents(t)
		if r := runCLI(t, cfg, "toolkit", "config", "update"); r.code != 0 || !strings.Contains(r.stdout, "unchanged") || s.operatorEvents(t) != before {
			t.Errorf("unchanged update: %v", r)
		}

		good := s.cfgText
		bad := strings.Replace(good, "interval: 2s, timeout: 500ms", "interval: 2s, timeout: 5s", 1)
		if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		s.expectFail(t, 1, "watchdog.heartbeat.timeout: must be less than interval", "toolkit", "config", "update")

		// A real change: recorded with its section, and the site restarts
		// its services on it.
		changed := strings.Replace(good, "retries: 1", "retries: 2", 1)
		if err := os.WriteFile(cfg, []byte(changed), 0o600); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, cfg, "toolkit", "config", "update")
		if r.code != 0 || !strings.Contains(r.stdout, "changed sections: [watchdog]") {
			t.Fatalf("changed update: %v", r)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(s.stderr.String(), "restarting the site on the updated configuration") {
			if time.Now().After(deadline) {
				t.Fatalf("the site did not reload:\n%s", s.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.waitHealthy(t, nil)
		if r := runCLI(t, cfg, "api", "v1", "config", "--include", "watchdog"); !strings.Contains(r.stdout, `"retries": 2`) {
			t.Errorf("after reload: %v", r)
		}
	})
}

// answerRequests plays the orchestrator for the next FailoverRequested:
// a saga, or a blocked decision when blockBranch is set.
func answerRequests(ctx context.Context, s *testSite, from uint64, blockBranch string) {
	_ = s.bus.Follow(ctx, from, []string{events.SiteTypeFilter("a", "FailoverRequested")}, func(_ uint64, req *events.Envelope) {
		if blockBranch != "" {
			_, _ = s.bus.Publish(ctx, events.FailoverDecided{Action: "beActive", Branch: blockBranch, Reason: "pgsql replica is behind", Blocked: true, Manual: true, RequestID: req.ID}, req)
			return
		}
		publishSagaFor(ctx, s, req, "fo-"+string(req.ID)[:8])
	})
}

func publishSagaFor(ctx context.Context, s *testSite, req *events.Envelope, fid string) {
	steps := []string{"fence", "promote", "vip"}
	started, err := s.bus.Publish(ctx, events.FailoverStarted{FailoverID: fid, From: "standby", To: "active", Epoch: 7, Manual: true, Reason: "operator", RequestID: req.ID, Steps: steps}, req)
	if err != nil {
		return
	}
	for _, st := range steps {
		_, _ = s.bus.Publish(ctx, events.FailoverStepDone{FailoverID: fid, Step: st, OK: true, DurationSeconds: 0.25}, started)
	}
	_, _ = s.bus.Publish(ctx, events.RoleChanged{From: "standby", To: "active", Epoch: 7, Reason: "manual failover", FailoverID: fid}, started)
	_, _ = s.bus.Publish(ctx, events.FailoverCompleted{FailoverID: fid, Role: "active", Epoch: 7, DurationSeconds: 1}, started)
}

// publishSaga records a complete failover: request, start, steps (one
// failed then retried), role change, completion — and an unrelated event
// in the middle that the timeline must leave out.
func publishSaga(t *testing.T, s *testSite) string {
	t.Helper()
	fid := "fo-timeline"
	req := s.publish(t, events.FailoverRequested{Target: "a", ToRole: "active", Manual: true, Reason: "drill", RequestedBy: "tester"}, nil)
	started := s.publish(t, events.FailoverStarted{FailoverID: fid, From: "standby", To: "active", Epoch: 9, Manual: true, Reason: "drill", RequestID: req.ID, Steps: []string{"fence", "promote", "vip", "services"}}, req)
	s.publish(t, events.FailoverStepDone{FailoverID: fid, Step: "fence", OK: true, DurationSeconds: 0.5}, started)
	s.publish(t, events.FileSyncCompleted{Transport: "sftp", Files: 3}, nil) // another incident
	s.publish(t, events.DatabaseCommand{Command: "promote", Database: "pgsql", Target: "a", FailoverID: fid}, started)
	s.publish(t, events.FailoverStepDone{FailoverID: fid, Step: "promote", OK: false, Error: "timeout", DurationSeconds: 5}, started)
	s.publish(t, events.FailoverStepDone{FailoverID: fid, Step: "promote", OK: true, DurationSeconds: 1.5}, started)
	s.publish(t, events.FailoverStepDone{FailoverID: fid, Step: "vip", OK: true, DurationSeconds: 0.1}, started)
	s.publish(t, events.FailoverStepDone{FailoverID: fid, Step: "services", OK: true, DurationSeconds: 2}, started)
	s.publish(t, events.RoleChanged{From: "standby", To: "active", Epoch: 9, Reason: "drill", FailoverID: fid}, started)
	s.publish(t, events.FailoverCompleted{FailoverID: fid, Role: "active", Epoch: 9, DurationSeconds: 9.6}, started)
	return fid
}

// checkTimeline renders the saga by failover id and by correlation id, as
// text and HTML, and checks its lines are the saga's events in log order.
func checkTimeline(t *testing.T, s *testSite, fid string) {
	t.Helper()
	// What the log holds for this incident, in order.
	var want []string
	var corr events.CorrelationID
	for _, env := range s.logOf(t, "") {
		var p struct {
			FailoverID string `json:"failoverId"`
		}
		_ = json.Unmarshal(env.Payload, &p)
		if p.FailoverID == fid && corr == "" {
			corr = env.CorrelationID
		}
		if p.FailoverID == fid || (corr != "" && env.CorrelationID == corr) {
			want = append(want, string(env.Type))
		}
	}
	// the request precedes the saga and shares its correlation id
	want = append([]string{"FailoverRequested"}, want...)
	if len(want) != 10 {
		t.Fatalf("expected 10 events of the saga in the log, found %v", want)
	}

	r := runCLI(t, s.cfgPath, "events", "timeline", "--failover", fid)
	if r.code != 0 {
		t.Fatal(r)
	}
	var got []string
	stepsAt := strings.Index(r.stdout, "failover steps")
	for _, line := range strings.Split(r.stdout[:stepsAt], "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[0] != "SEQ" && strings.HasPrefix(f[2], "+") {
			got = append(got, f[5])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline events differ from the log (-log +timeline):\n%s\n%s", diff, r.stdout)
	}
	steps := r.stdout[stepsAt:]
	for i, want := range []string{"1. fence", "2. promote", "3. vip", "4. services"} {
		if !strings.Contains(steps, want) {
			t.Errorf("step %d %q missing:\n%s", i, want, steps)
		}
	}
	if !strings.Contains(steps, "(completed)") || strings.Count(steps, " done ") != 4 || !strings.Contains(r.stdout, "step promote FAILED after 5.0s: timeout") {
		t.Errorf("steps:\n%s", r.stdout)
	}

	byCorr := runCLI(t, s.cfgPath, "events", "timeline", "--correlation", string(corr))
	if byCorr.code != 0 || strings.Count(byCorr.stdout, "\n") != strings.Count(r.stdout, "\n") {
		t.Errorf("by correlation differs:\n%s\nvs\n%s", byCorr.stdout, r.stdout)
	}

	page := filepath.Join(t.TempDir(), "incident.html")
	if r := runCLI(t, s.cfgPath, "events", "timeline", "--failover", fid, "--html", "-o", page); r.code != 0 {
		t.Fatal(r)
	}
	html, _ := os.ReadFile(page)
	doc := string(html)
	if !strings.HasPrefix(doc, "<!DOCTYPE html>") || strings.Contains(doc, "<script") || strings.Contains(doc, "http://") || strings.Contains(doc, "https://") {
		t.Errorf("page is not self-contained:\n%s", doc)
	}
	last := -1
	for _, typ := range want {
		i := strings.Index(doc[last+1:], ">"+typ+"<")
		if i < 0 {
			t.Errorf("page lacks %s after offset %d", typ, last)
			break
		}
		last += 1 + i
	}
	for _, st := range []string{`data-step="fence"`, `data-step="promote"`, `data-step="vip"`, `data-step="services"`} {
		if !strings.Contains(doc, st) {
			t.Errorf("page lacks %s", st)
		}
	}
	before := s.operatorEvents(t)
	s.expectFail(t, 1, "no event in the log of site a matches failover nope", "events", "timeline", "--failover", "nope")
	s.expectFail(t, 2, "give --correlation ID or --failover ID", "events", "timeline")
	if s.operatorEvents(t) != before {
		t.Error("timeline recorded events")
	}
}

func waitCmd(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("still running after %s", d)
	}
}

// TestCLIWithTheSiteDown: every command that needs the site says so with
// exit 3 (health: a FAIL row and exit 1); config-only sections still work.
func TestCLIWithTheSiteDown(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := writeSiteConfig(t, dir, freePort(t), freePort(t), 1)
	for _, args := range [][]string{
		{"api", "v1", "config", "--list"},
		{"api", "v1", "config", "--include", "states"},
		{"manualFailover", "-a"},
		{"toolkit", "watchdog", "status", "--disable-automatic-failover", "2h"},
		{"toolkit", "config", "update"},
		{"status"},
		{"events", "list"},
		{"events", "timeline", "--failover", "x"},
	} {
		r := runCLI(t, cfg, append(args, "--connect-timeout", "500ms")...)
		if r.code != 3 || !strings.Contains(r.stderr, "site unreachable: site a: NATS at nats://127.0.0.1:") || !strings.Contains(r.stderr, "drwatch start") {
			t.Errorf("%v: %v", args, r)
		}
	}
	// Bad arguments are judged before the network.
	if r := runCLI(t, cfg, "toolkit", "watchdog", "status", "--disable-automatic-failover", "2x"); r.code != 2 {
		t.Errorf("2x with the site down: %v", r)
	}
	if r := runCLI(t, cfg, "api", "v1", "config", "--include", "core,nonsense"); r.code != 2 {
		t.Errorf("unknown section with the site down: %v", r)
	}
	r := runCLI(t, cfg, "api", "v1", "config", "--include", "core,watchdog")
	if r.code != 0 || !strings.Contains(r.stdout, `"peerVip": "127.0.0.1"`) {
		t.Errorf("config-only sections need no site: %v", r)
	}
	r = runCLI(t, cfg, "health", "--connect-timeout", "500ms")
	if r.code != 1 || !strings.Contains(r.stdout, "site process") || !strings.Contains(r.stdout, "FAIL") {
		t.Errorf("health with the site down: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		t.Error("a command created the site's store")
	}
}

// TestStartStopReset drives the site process through the pidfile.
func TestStartStopReset(t *testing.T) {
	dir := t.TempDir()
	httpPort := freePort(t)
	cfg, _ := writeSiteConfig(t, dir, freePort(t), httpPort, 1)
	pidfile := filepath.Join(dir, "drwatch-a.pid")
	t.Cleanup(func() { runCLI(t, cfg, "stop") })

	r := runCLI(t, cfg, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "site a started") {
		t.Fatalf("start: %v\n%s", r, readFile(filepath.Join(dir, "drwatch-a.log")))
	}
	if _, err := os.Stat(pidfile); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, cfg, "start"); r.code != 0 || !strings.Contains(r.stdout, "already running") {
		t.Errorf("second start: %v", r)
	}
	if r := runCLI(t, cfg, "status"); r.code != 0 {
		t.Errorf("status of the started site: %v", r)
	}
	if r := runCLI(t, cfg, "reset"); r.code != 2 || !strings.Contains(r.stderr, "repeat with --yes") {
		t.Errorf("reset without --yes: %v", r)
	}
	if r := runCLI(t, cfg, "stop"); r.code != 0 || !strings.Contains(r.stdout, "site a stopped") {
		t.Fatalf("stop: %v", r)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left after stop: %v", err)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)); err == nil {
		t.Error("site still answers after stop")
	}
	if r := runCLI(t, cfg, "stop"); r.code != 0 || !strings.Contains(r.stdout, "not running") {
		t.Errorf("second stop: %v", r)
	}
	if r := runCLI(t, cfg, "reset", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "deleted "+filepath.Join(dir, "nats")) {
		t.Errorf("reset: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); !os.IsNotExist(err) {
		t.Errorf("store left after reset: %v", err)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestInitWritesAPairThatValidates checks the files, modes, certificate
// chain and the SQL of `drwatch init`.
func TestInitWritesAPairThatValidates(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, "", "init", "-dir", dir, "--active-addr", "10.0.0.1", "--standby-addr", "dr.example.net")
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, secret := range []string{"'repPass'", "'repAdminPass'", "PASSWORD 'replication'", "PASSWORD 'postgres'"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("init printed a password (%s):\n%s", secret, r.stdout)
		}
	}
	for _, want := range []string{"CREATE USER IF NOT EXISTS 'repUser'@'%'", "'repAdmin'@'%'", `CREATE ROLE "replication" WITH REPLICATION LOGIN`, "hostssl replication replication 10.0.0.1/32", "mysql -u root -p <"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, r.stdout)
		}
	}
	sql := readFile(filepath.Join(dir, "sql", "mysql-users.sql"))
	if !strings.Contains(sql, "IDENTIFIED BY 'repPass' REQUIRE SSL") || !strings.Contains(sql, "IDENTIFIED BY 'repAdminPass'") {
		t.Errorf("mysql-users.sql:\n%s", sql)
	}
	for _, f := range []string{"tls/ca.pem", "tls/ca-key.pem", "tls/a.pem", "tls/a-key.pem", "tls/b.pem", "tls/b-key.pem", "site-a.yaml", "site-b.yaml", "secrets/mysql-rep-pass", "secrets/a-http-token", "sql/pgsql-users.sql",
		"nats/leaf.nk", "nats/a/site.nk", "nats/a/cli.nk", "nats/b/orchestrator.nk", "nats/b/dbmonitor.nk"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	for _, site := range []string{"a", "b"} {
		if r := runCLI(t, "", "validate", "-config", filepath.Join(dir, "site-"+site+".yaml")); r.code != 0 {
			t.Errorf("generated site-%s.yaml: %v", site, r)
		}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(readFile(filepath.Join(dir, "tls/ca.pem"))))
	for site, host := range map[string]string{"a": "10.0.0.1", "b": "dr.example.net"} {
		block, _ := pem.Decode([]byte(readFile(filepath.Join(dir, "tls", site+".pem"))))
		if block == nil {
			t.Fatalf("tls/%s.pem is not PEM", site)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("site %s certificate for %s (usage %v): %v", site, host, usage, err)
			}
		}
	}
	a := readFile(filepath.Join(dir, "site-a.yaml"))
	b := readFile(filepath.Join(dir, "site-b.yaml"))
	if !strings.Contains(a, "listen: 0.0.0.0:7422") || !strings.Contains(b, `remotes: ["nats-leaf://10.0.0.1:7422"]`) || strings.Contains(a+b, "repPass") ||
		!strings.Contains(a, "host: 127.0.0.1") || !strings.Contains(a, "keysDir: "+dir+"/nats/a") || !strings.Contains(b, "key: "+dir+"/nats/leaf.nk") {
		t.Errorf("site configs:\n%s\n%s", a, b)
	}

	// Again without --force: the CA is kept, existing files are not replaced.
	r = runCLI(t, "", "init", "-dir", dir, "--active-addr", "10.0.0.1", "--standby-addr", "dr.example.net", "-s")
	if r.code != 1 || !strings.Contains(r.stdout, "using the existing CA") || !strings.Contains(r.stderr, "exists: pass --force") {
		t.Errorf("init over an existing pair: %v", r)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--active-addr", "10.0.0.1", "--standby-addr", "10.0.0.2", "--active", "x", "--standby", "x"}, "a pair needs two sites"},
		{[]string{"--active-addr", "10.0.0.1"}, "--standby-addr is required"},
		{[]string{"--active-addr", "10.0.0.1", "--standby-addr", "10.0.0.2", "--mysql-rep-pass", "it's"}, "--mysql-rep-pass: must be set and hold no quote"},
		{[]string{"--active-addr", "10.0.0.1", "--standby-addr", "10.0.0.2", "-a", "-s"}, "-a and -s exclude each other"},
	} {
		d := t.TempDir()
		r := runCLI(t, "", append([]string{"init", "-dir", d}, bad.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("init %v: want exit 2 and %q, got %v", bad.args, bad.want, r)
		}
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("init %v wrote files after a usage error", bad.args)
		}
	}
}

// TestManualFailoverWithTheOrchestrator switches a whole site process
// (every service) to standby and back with the operator's command: the
// real orchestrator answers, refuses a lagging promotion without --force
// and accepts it with --force at a higher epoch.
func TestManualFailoverWithTheOrchestrator(t *testing.T) {
	s := startSite(t)
	cfg := s.cfgPath
	roles := func() []events.RoleChanged {
		var out []events.RoleChanged
		for _, env := range s.logOf(t, events.SiteTypeFilter("a", "RoleChanged")) {
			ev, err := events.DecodeInto[events.RoleChanged](env)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(roles()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the orchestrator never announced the configured role\n%s", s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A lone site with no role in its store starts standby (site.role
	// applies only to the pair's first start, which only the peer could
	// confirm); the operator makes it active. Its peer is gone — the
	// heartbeat says so — and never answers the fence, and this site
	// cannot claim its arbiter: only the operator's --force promotes it.
	if first := roles()[0]; first.To != events.RoleStandby {
		t.Fatalf("a lone site announced %+v, want standby until the peer or an operator says otherwise", first)
	}
	hb, err := bus.New(s.connectAs(t, "heartbeat"), bus.Options{Source: events.Source{Site: "a", Node: "test", Service: "heartbeat"}})
	if err != nil {
		t.Fatal(err)
	}
	lost := events.RemoteUnreachable{Peer: "b", Line: "default", Since: time.Now().Add(-time.Hour), Failed: []events.ProbeResult{{Target: "127.0.0.1", Kind: "tcp"}}}
	if _, err := hb.Publish(context.Background(), lost, nil); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, cfg, "manualFailover", "-a", "--force", "--timeout", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, "standby→active") {
		t.Fatalf("manualFailover -a: %v\n%s", r, s.stderr)
	}
	r = runCLI(t, cfg, "manualFailover", "-s", "--timeout", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, "active→standby") {
		t.Fatalf("manualFailover -s: %v\n%s", r, s.stderr)
	}
	if last := roles()[len(roles())-1]; last.To != events.RoleStandby {
		t.Fatalf("last role change %+v, want to standby", last)
	}

	// dbmonitor reports the standby's copy far behind: a promotion without
	// --force must be refused by the lag guard and change nothing.
	db, err := bus.New(s.connectAs(t, "dbmonitor"), bus.Options{Source: events.Source{Site: "a", Node: "test", Service: "dbmonitor"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(context.Background(), events.ReplicationLagHigh{Database: events.PgSQL, Server: "pg-a", LagSeconds: 90, LagBytes: 64 << 20, ThresholdSeconds: 30, ThresholdBytes: 1 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	before := len(roles())
	r = runCLI(t, cfg, "manualFailover", "-a", "--timeout", "30s")
	if r.code != 1 || !strings.Contains(r.stderr, "refused by site a") {
		t.Fatalf("lagging promotion without --force: %v", r)
	}
	if n := len(roles()); n != before {
		t.Fatalf("a refused promotion changed the role (%d → %d role changes)", before, n)
	}

	r = runCLI(t, cfg, "manualFailover", "-a", "--force", "--timeout", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, "standby→active") {
		t.Fatalf("manualFailover -a --force: %v\n%s", r, s.stderr)
	}
	all := roles()
	last, first := all[len(all)-1], all[1]
	if last.To != events.RoleActive || last.Epoch <= first.Epoch {
		t.Errorf("after --force: %+v (first %+v), want active at a higher epoch", last, first)
	}
}
