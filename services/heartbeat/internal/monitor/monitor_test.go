package monitor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
)

func TestStep(t *testing.T) {
	spec := Spec{Name: "web", Kind: "service", MaxFailures: 3, Scope: "both"}
	fail := errors.New("unit web is not running")
	type step struct {
		err  error
		want string // event type or ""
	}
	tests := []struct {
		name  string
		spec  Spec
		steps []step
	}{
		{"trips at the limit, once", spec, []step{{fail, ""}, {fail, ""}, {fail, "MonitorTripped"}, {fail, ""}, {fail, ""}}},
		{"a pass in between restarts the count", spec, []step{{fail, ""}, {fail, ""}, {nil, ""}, {fail, ""}, {fail, ""}, {nil, ""}}},
		{"recovers once", spec, []step{{fail, ""}, {fail, ""}, {fail, "MonitorTripped"}, {nil, "MonitorRecovered"}, {nil, ""}}},
		{"limit of one", Spec{Name: "m", Kind: "disk", MaxFailures: 1, Scope: "both"}, []step{{fail, "MonitorTripped"}, {nil, "MonitorRecovered"}, {fail, "MonitorTripped"}}},
		{"healthy says nothing", spec, []step{{nil, ""}, {nil, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st State
			for i, s := range tt.steps {
				var ev events.Event
				st, ev = Step(tt.spec, st, s.err)
				got := ""
				if ev != nil {
					got = string(ev.EventType())
				}
				if got != s.want {
					t.Fatalf("step %d: event %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

func TestStepTrippedEvent(t *testing.T) {
	tests := []struct {
		spec    Spec
		logOnly bool
	}{
		{Spec{Name: "a", Kind: "cpu", MaxFailures: 2, Scope: "primary"}, false},
		{Spec{Name: "a", Kind: "cpu", MaxFailures: 2, Scope: "primary", LogOnly: true}, true},
		{Spec{Name: "a", Kind: "cpu", MaxFailures: 2, Scope: "standby"}, true},
		{Spec{Name: "a", Kind: "cpu", MaxFailures: 2, Scope: "both"}, false},
	}
	for _, tt := range tests {
		st, _ := Step(tt.spec, State{}, errors.New("x"))
		_, ev := Step(tt.spec, st, errors.New("cpu 99.0% busy"))
		want := &events.MonitorTripped{Monitor: "a", Kind: "cpu", Failures: 2, Detail: "cpu 99.0% busy", LogOnly: tt.logOnly}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.spec, diff)
		}
	}
}

func TestInScope(t *testing.T) {
	tests := []struct {
		scope string
		role  events.Role
		want  bool
	}{
		{"both", events.RoleActive, true}, {"both", events.RoleStandby, true},
		{"primary", events.RoleActive, true}, {"primary", events.RoleStandby, false}, {"primary", events.RoleStandalone, true},
		{"standby", events.RoleActive, false}, {"standby", events.RoleStandby, true}, {"standby", events.RoleStandalone, false},
		{"bogus", events.RoleActive, false},
	}
	for _, tt := range tests {
		if got := InScope(tt.scope, tt.role); got != tt.want {
			t.Errorf("InScope(%q, %q) = %v, want %v", tt.scope, tt.role, got, tt.want)
		}
	}
}

// writeExec writes an executable shell script.
func writeExec(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func check(t *testing.T, c Config, h Host) error {
	t.Helper()
	ch, err := NewChecker(c, h)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Check(context.Background())
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	switch {
	case substr == "" && err != nil:
		t.Errorf("want success, got %v", err)
	case substr != "" && err == nil:
		t.Errorf("want an error containing %q, got success", substr)
	case substr != "" && !strings.Contains(err.Error(), substr):
		t.Errorf("want an error containing %q, got %v", substr, err)
	}
}

// TestServiceChecker runs stand-in systemctl and docker commands that answer
// as the real ones do for a running and a stopped unit or container.
func TestServiceChecker(t *testing.T) {
	dir := t.TempDir()
	h := Host{
		Systemctl: writeExec(t, dir, "systemctl", `[ "$1" = is-active ] || exit 9
case "$2" in nginx) echo active;; crashed) echo failed; exit 3;; *) echo inactive; exit 3;; esac`),
		Docker: writeExec(t, dir, "docker", `[ "$1 $2 $3" = "inspect --format {{.State.Running}}" ] || exit 9
case "$4" in web) echo true;; stopped) echo false;; *) echo "Error: No such object: $4" >&2; exit 1;; esac`),
	}
	tests := []struct{ target, err string }{
		{"nginx", ""},
		{"systemd:nginx", ""},
		{"crashed", `unit crashed is not running: systemctl says "failed"`},
		{"sshd", `unit sshd is not running: systemctl says "inactive"`},
		{"container:web", ""},
		{"docker:web", ""},
		{"container:stopped", `container stopped is not running: docker says "false"`},
		{"container:ghost", `container ghost is not running: docker says "Error: No such object: ghost"`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			wantErr(t, check(t, Config{Spec: Spec{Name: "s", Kind: "service"}, Target: tt.target, Interval: time.Second}, h), tt.err)
		})
	}
	t.Run("missing command", func(t *testing.T) {
		err := check(t, Config{Spec: Spec{Name: "s", Kind: "service"}, Target: "x", Interval: time.Second}, Host{Systemctl: filepath.Join(dir, "nope")})
		wantErr(t, err, "unit x: run "+filepath.Join(dir, "nope"))
	})
}

func TestProcessChecker(t *testing.T) {
	cmd := exec.Command("sleep", "4242.5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := Config{Spec: Spec{Name: "p", Kind: "process"}}
	for _, pattern := range []string{"sleep 4242.5", "sleep4242.5", "4242.5"} {
		c.Target = pattern
		wantErr(t, check(t, c, Host{}), "")
	}
	c.Target = "sleep 4242.6"
	wantErr(t, check(t, c, Host{}), `no process whose /proc/PID/cmdline contains "sleep 4242.6"`)
	c.Target = "x"
	wantErr(t, check(t, c, Host{Proc: "/nonexistent"}), `process "x": list /nonexistent`)
}

func procFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMemoryChecker(t *testing.T) {
	meminfo := func(total, avail string) string {
		return "MemTotal:       " + total + " kB\nMemFree:         100 kB\nMemAvailable:   " + avail + " kB\n"
	}
	tests := []struct {
		name, body string
		threshold  float64
		err        string
	}{
		{"below", meminfo("1000", "500"), 80, ""},
		{"exactly at threshold passes", meminfo("1000", "200"), 80, ""},
		{"above", meminfo("1000", "100"), 80, "memory 90.0% used, above the 80.0% threshold"},
		{"no MemAvailable", "MemTotal: 1000 kB\n", 80, "has no MemAvailable"},
		{"garbage", "hello\n", 80, "has no MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := procFixture(t, map[string]string{"meminfo": tt.body})
			wantErr(t, check(t, Config{Spec: Spec{Name: "m", Kind: "memory"}, Threshold: tt.threshold}, Host{Proc: proc}), tt.err)
		})
	}
	t.Run("real /proc", func(t *testing.T) {
		wantErr(t, check(t, Config{Spec: Spec{Name: "m", Kind: "memory"}, Threshold: 100}, Host{}), "")
	})
}

func TestCPUChecker(t *testing.T) {
	proc := procFixture(t, map[string]string{"stat": "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n"})
	c, err := NewChecker(Config{Spec: Spec{Name: "c", Kind: "cpu"}, Threshold: 50}, Host{Proc: proc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, c.Check(ctx), "") // baseline
	// +100 busy, +100 idle: 50 % busy, not above 50.
	write("cpu  150 0 150 850 50 0 0 0 0 0\n")
	wantErr(t, c.Check(ctx), "")
	// +90 busy (user+irq), +10 iowait: 90 % busy. guest (+500) is inside user already.
	write("cpu  230 0 150 850 60 10 0 0 500 0\n")
	wantErr(t, c.Check(ctx), "cpu 90.0% busy, above the 50.0% threshold")
	write("intr 1 2 3\n")
	wantErr(t, c.Check(ctx), "does not start with a cpu line")
	write("cpu  a b c d e\n")
	wantErr(t, c.Check(ctx), `field 1 "a" is not a number`)
	t.Run("real /proc", func(t *testing.T) {
		c, _ := NewChecker(Config{Spec: Spec{Name: "c", Kind: "cpu"}, Threshold: 100}, Host{})
		wantErr(t, c.Check(ctx), "")
		time.Sleep(20 * time.Millisecond)
		wantErr(t, c.Check(ctx), "")
	})
}

func TestDiskChecker(t *testing.T) {
	dir := t.TempDir()
	wantErr(t, check(t, Config{Spec: Spec{Name: "d", Kind: "disk"}, Target: dir, Threshold: 100}, Host{}), "")
	err := check(t, Config{Spec: Spec{Name: "d", Kind: "disk"}, Target: dir, Threshold: 0.0001}, Host{})
	wantErr(t, err, "disk "+dir+" ")
	wantErr(t, err, "above the 0.0% threshold")
	wantErr(t, check(t, Config{Spec: Spec{Name: "d", Kind: "disk"}, Target: "/nonexistent/x", Threshold: 90}, Host{}), "disk /nonexistent/x: no such file or directory")
}

// TestScriptChecker runs real scripts, among them seed 004's example shape:
// exit 0 and say true or false in a result file.
func TestScriptChecker(t *testing.T) {
	dir := t.TempDir()
	result := filepath.Join(dir, "result.log")
	seedLike := writeExec(t, dir, "java_app_mon.sh", `if [ -e "`+dir+`/down" ]; then echo false > `+result+`; else echo true > `+result+`; fi`)
	tests := []struct {
		name       string
		script     string
		resultFile string
		prepare    func()
		err        string
	}{
		{"exit 0, no result file configured", writeExec(t, dir, "ok.sh", "exit 0"), "", nil, ""},
		{"exit 3", writeExec(t, dir, "bad.sh", "echo broken pipe >&2; exit 3"), "", nil, "exited with status 3: broken pipe"},
		{"seed example says true", seedLike, result, func() { os.Remove(filepath.Join(dir, "down")) }, ""},
		{"seed example says false", seedLike, result, func() { os.WriteFile(filepath.Join(dir, "down"), nil, 0o644) }, "wrote false to " + result},
		{"false must be the first five characters", writeExec(t, dir, "sp.sh", `echo " false" > `+result), result, nil, ""},
		{"falsehood is false", writeExec(t, dir, "fh.sh", `printf falsehood > `+result), result, nil, "wrote false"},
		{"other text changes nothing", writeExec(t, dir, "other.sh", `echo maybe > `+result), result, nil, ""},
		{"empty result file", writeExec(t, dir, "empty.sh", `: > `+result), result, nil, ""},
		{"result file never written", writeExec(t, dir, "silent.sh", "exit 0"), filepath.Join(dir, "missing.log"), nil, "result file: open " + dir + "/missing.log: no such file"},
		{"hangs", writeExec(t, dir, "hang.sh", "sleep 30"), "", nil, "did not finish within 300ms (interval × maxFailures)"},
		{"hangs in a child that holds stdout", writeExec(t, dir, "hang2.sh", "(sleep 30; echo) & wait"), "", nil, "did not finish within 300ms"},
		{"not executable", func() string { p := filepath.Join(dir, "plain.sh"); os.WriteFile(p, []byte("exit 0"), 0o644); return p }(), "", nil, "permission denied"},
		{"missing", filepath.Join(dir, "nope.sh"), "", nil, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare()
			}
			start := time.Now()
			err := check(t, Config{Spec: Spec{Name: "s", Kind: "script", MaxFailures: 3}, Target: tt.script, ResultFile: tt.resultFile, Interval: 100 * time.Millisecond}, Host{})
			wantErr(t, err, tt.err)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("check took %s", d)
			}
		})
	}
}

func TestNewCheckerBadKind(t *testing.T) {
	_, err := NewChecker(Config{Spec: Spec{Name: "x", Kind: "gpu"}}, Host{})
	wantErr(t, err, `monitor "x": kind "gpu" must be service, process, memory, cpu, disk or script`)
}

type sink struct {
	mu  sync.Mutex
	evs []events.Event
}

func (s *sink) emit(ev events.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *sink) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.evs {
		out = append(out, string(e.EventType()))
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunTripsAndRecoversWithRole runs a script monitor scoped to the
// primary: it is checked only while the site is active, trips after its
// limit and recovers.
func TestRunTripsAndRecoversWithRole(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "down")
	result := filepath.Join(dir, "r")
	counter := filepath.Join(dir, "runs")
	script := writeExec(t, dir, "mon.sh", `echo x >> `+counter+`; if [ -e `+flag+` ]; then echo false > `+result+`; else echo true > `+result+`; fi`)
	c := Config{Spec: Spec{Name: "app", Kind: "script", MaxFailures: 3, Scope: "primary"}, Target: script, ResultFile: result, Interval: 10 * time.Millisecond}
	ch, err := NewChecker(c, Host{})
	if err != nil {
		t.Fatal(err)
	}
	roles := service.NewRoleView(events.RoleStandby, 1)
	var s sink
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, c, ch, roles, s.emit, slog.New(slog.DiscardHandler)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	os.WriteFile(flag, nil, 0o644)
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(counter); err == nil {
		t.Fatal("a primary-scoped monitor ran on the standby")
	}
	roles.Set(events.RoleActive, 2)
	waitFor(t, "trip", func() bool { return len(s.types()) == 1 })
	os.Remove(flag)
	waitFor(t, "recovery", func() bool { return len(s.types()) == 2 })
	if diff := cmp.Diff([]string{"MonitorTripped", "MonitorRecovered"}, s.types()); diff != "" {
		t.Error(diff)
	}
	tr := s.evs[0].(*events.MonitorTripped)
	if tr.Failures != 3 || tr.LogOnly || !strings.Contains(tr.Detail, "wrote false") {
		t.Errorf("tripped = %+v", tr)
	}
}
