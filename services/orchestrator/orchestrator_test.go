package orchestrator

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
)

// clock is a virtual clock for deps.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fakeVIP records what the saga did with the address; the real one is
// moved in internal/vip's namespace test.
type fakeVIP struct {
	mu   sync.Mutex
	held bool
	ops  []string
}

func (v *fakeVIP) Take(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held, v.ops = true, append(v.ops, "take")
	return nil
}

func (v *fakeVIP) Release(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held, v.ops = false, append(v.ops, "release")
	return nil
}

func (v *fakeVIP) Held(context.Context) (bool, error) { return v.holds(), nil }

func (v *fakeVIP) Names() (string, string) { return "10.0.0.10/24", "eth0" }

func (v *fakeVIP) holds() bool { v.mu.Lock(); defer v.mu.Unlock(); return v.held }

func (v *fakeVIP) opsSeen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.ops...)
}

// markerHook writes a hook script appending "$1 $2" to log.
func markerHook(t testing.TB, dir, name, log, extra string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := "#!/bin/sh\necho \"$1 $2 $DRWATCH_FAILOVER_ID\" >> " + log + "\n" + extra + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func scriptService(t testing.TB, dir string) (svcmon.Service, string) {
	t.Helper()
	st := filepath.Join(dir, "web.running")
	p := filepath.Join(dir, "web.sh")
	body := "#!/bin/sh\ncase \"$1\" in start) touch " + st + ";; stop) rm -f " + st + ";; status) test -e " + st + ";; esac\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return svcmon.Service{Name: "web", Kind: "script", Target: p, RunOn: "active"}, st
}

type harness struct {
	t      testing.TB
	site   *bustest.Site
	bus    *bus.Bus // the orchestrator's
	other  *bus.Bus // other services of the site (heartbeat, arbiter, operator)
	clock  *clock
	vip    *fakeVIP
	dir    string
	hooks  string // marker file
	svc    string // service state file
	opts   Options
	cancel context.CancelFunc
	done   chan error
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t testing.TB, role events.Role) *harness {
	t.Helper()
	// The peer's server runs with an empty store and no orchestrator: it
	// answers that it records no role, so site.role applies (role.go).
	site := bustest.RunPair(t).A
	h := &harness{t: t, site: site, clock: &clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}, vip: &fakeVIP{}, dir: t.TempDir()}
	h.bus = site.Bus(t, "orchestrator", "b")
	h.other = site.Bus(t, "operator", "b")
	h.hooks = filepath.Join(h.dir, "hooks.log")
	svc, st := scriptService(t, h.dir)
	h.svc = st
	o := DefaultOptions()
	o.Site, o.Peer, o.InitialRole = "a", "b", role
	o.Lines = []string{"default"}
	o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, WaitDuration: 8 * time.Hour}
	o.Hooks = saga.Hooks{
		Veto:    markerHook(t, h.dir, "veto.sh", h.hooks, ""),
		PreS2M:  markerHook(t, h.dir, "pre-s2m.sh", h.hooks, ""),
		PostS2M: markerHook(t, h.dir, "post-s2m.sh", h.hooks, ""),
		PreM2S:  markerHook(t, h.dir, "pre-m2s.sh", h.hooks, ""),
		PostM2S: markerHook(t, h.dir, "post-m2s.sh", h.hooks, ""),
		Timeout: 5 * time.Second,
	}
	o.VIP = h.vip
	o.Services = []svcmon.Service{svc}
	o.Tick = 20 * time.Millisecond
	o.ServiceInterval = time.Hour // the saga moves services in these tests
	o.DBTimeout, o.FenceTimeout = 5*time.Second, 5*time.Second
	o.KeepPeerSource = false
	h.opts = o
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	deps := service.Deps{Bus: h.bus, Log: quiet(), Now: h.clock.Now}
	opts := h.opts
	go func() { h.done <- RunWith(ctx, deps, opts) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not stop within 10s")
	}
	h.cancel = nil
}

func (h *harness) publish(ev events.Event) *events.Envelope {
	h.t.Helper()
	env, err := h.other.Publish(context.Background(), ev, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

// log returns the site's log as (type, payload) in order.
func (h *harness) log() []*events.Envelope {
	h.t.Helper()
	var out []*events.Envelope
	_, err := h.bus.Replay(context.Background(), 0, nil, func(_ uint64, env *events.Envelope) error {
		out = append(out, env)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func decodeAll[E events.Event](h *harness) []E {
	var out []E
	var zero E
	for _, env := range h.log() {
		if env.Type == zero.EventType() {
			ev, err := events.DecodeInto[E](env)
			if err != nil {
				h.t.Fatal(err)
			}
			out = append(out, ev)
		}
	}
	return out
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	bustest.WaitFor(h.t, 15*time.Second, what, cond)
}

func (h *harness) waitRole(role events.Role, n int) events.RoleChanged {
	h.t.Helper()
	var last events.RoleChanged
	h.waitFor("RoleChanged to "+string(role), func() bool {
		c := 0
		for _, rc := range decodeAll[events.RoleChanged](h) {
			if rc.To == role && rc.FailoverID != "" {
				c++
				last = rc
			}
		}
		return c >= n
	})
	return last
}

func (h *harness) hookLines() []string {
	data, _ := os.ReadFile(h.hooks)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

func (h *harness) peerDown() {
	h.publish(events.RemoteUnreachable{Peer: "b", Line: "default", Since: h.clock.Now(), Failed: []events.ProbeResult{{Target: "10.0.0.2", Kind: "icmp"}}})
	h.publish(events.ArbitrationDecided{Role: events.RoleStandby, Method: "arbiters", Action: events.ActionBeActive, Branch: "standby.managed+unreachable<failover", N: 3})
}

// dbmonitor answers every DatabaseCommand of site a, as the real one does.
func (h *harness) dbmonitor(ctx context.Context, ok bool) {
	go func() {
		seen := map[events.ID]bool{}
		for ctx.Err() == nil {
			_, _ = h.other.Replay(ctx, 0, []string{events.TypeFilter("DatabaseCommand")}, func(_ uint64, env *events.Envelope) error {
				if seen[env.ID] {
					return nil
				}
				seen[env.ID] = true
				cmd, err := events.DecodeInto[events.DatabaseCommand](env)
				if err != nil || cmd.Target != "a" {
					return nil
				}
				done := events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, OK: ok, Position: "0/3000060", FailoverID: cmd.FailoverID}
				if !ok {
					done.Error = "pg_promote() returned false"
				}
				_, err = h.other.Publish(ctx, done, env)
				return err
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

func steps(h *harness) []string {
	var out []string
	for _, s := range decodeAll[events.FailoverStepDone](h) {
		if s.OK {
			out = append(out, s.Step)
		}
	}
	return out
}

func TestFailoverSagaEndToEnd(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Databases = []events.Database{events.PgSQL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.dbmonitor(ctx, true)
	h.start()
	h.peerDown()
	rc := h.waitRole(events.RoleActive, 1)
	h.waitFor("FailoverCompleted", func() bool { return len(decodeAll[events.FailoverCompleted](h)) == 1 })

	started := decodeAll[events.FailoverStarted](h)
	wantPlan := []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-pgsql", "take-vip", "start-services", "post-s2m"}
	if len(started) != 1 || !cmp.Equal(started[0].Steps, wantPlan) {
		t.Fatalf("plan: %+v", started)
	}
	if diff := cmp.Diff(wantPlan, steps(h)); diff != "" {
		t.Errorf("steps done (-want +got):\n%s", diff)
	}
	if rc.Epoch != 1 || rc.From != events.RoleStandby {
		t.Errorf("RoleChanged %+v, want standby→active at epoch 1", rc)
	}
	if diff := cmp.Diff([]string{"veto s2m", "pre s2m", "post s2m"}, h.hookLines()); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if !h.vip.holds() {
		t.Error("VIP not taken")
	}
	if _, err := os.Stat(h.svc); err != nil {
		t.Error("service not started")
	}
	// The fence was asked although the peer is unreachable? No: it is
	// unreachable, so the step says so and no request goes out.
	if reqs := decodeAll[events.FailoverRequested](h); len(reqs) != 0 {
		t.Errorf("fenced an unreachable peer: %+v", reqs)
	}

	// And back: an operator asks this site to stand down (m2s).
	h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleStandby, Manual: true, Reason: "maintenance", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	rc = h.waitRole(events.RoleStandby, 1)
	h.waitFor("second FailoverCompleted", func() bool { return len(decodeAll[events.FailoverCompleted](h)) == 2 })
	if rc.Epoch != 1 {
		t.Errorf("demotion epoch %d, want 1", rc.Epoch)
	}
	if diff := cmp.Diff([]string{"veto s2m", "pre s2m", "post s2m", "pre m2s", "post m2s"}, h.hookLines()); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if h.vip.holds() {
		t.Error("VIP still held after demotion")
	}
	if _, err := os.Stat(h.svc); err == nil {
		t.Error("service still running after demotion")
	}
	var demoted bool
	for _, d := range decodeAll[events.DatabaseCommand](h) {
		demoted = demoted || d.Command == "demote"
	}
	if !demoted {
		t.Error("databases not demoted")
	}

	// A restart rebuilds the same role from the log and does nothing more.
	h.stop()
	n := len(h.log())
	h.start()
	time.Sleep(300 * time.Millisecond)
	if got := len(h.log()); got != n {
		t.Errorf("a restart added %d events to a quiet log", got-n)
	}
}

// TestCrashAtEveryStepResumes stops Run right after the k-th event of the
// saga and starts a new Run on the same log: every step runs once, the role
// changes once.
// TestCrashAtEveryStepResumes stops the process after every event of a
// promotion and starts it again. A promotion that had announced active
// completes; any other is aborted as interrupted, what it took is undone,
// and the decision is taken again: a second saga, at a new epoch, runs the
// whole plan (its claim and position included when configured), instead
// of carrying on from authorisations as old as the crash.
func TestCrashAtEveryStepResumes(t *testing.T) {
	plan := []string{"veto", "pre-s2m", "fence-peer", "take-vip", "start-services", "post-s2m"}
	// FailoverStarted, one StepDone per step, RoleChanged.
	for k := 1; k <= len(plan)+2; k++ {
		t.Run(crashName(k, plan), func(t *testing.T) {
			h := newHarness(t, events.RoleStandby)
			var seen int
			crashed := make(chan struct{})
			h.opts.afterPublish = func(env *events.Envelope) {
				switch env.Type {
				case "FailoverStarted", "FailoverStepDone", "RoleChanged":
					seen++
					if seen == k {
						h.cancel()
						close(crashed)
					}
				}
			}
			h.start()
			h.peerDown()
			<-crashed
			h.stop()
			h.opts.afterPublish = nil
			h.start()
			// Past RoleChanged the restart's stand-down may complete a
			// second saga between two looks: at least one.
			h.waitFor("FailoverCompleted", func() bool { return len(decodeAll[events.FailoverCompleted](h)) >= 1 })
			sagas := decodeAll[events.FailoverStarted](h)
			aborts := decodeAll[events.FailoverAborted](h)
			announced := k == len(plan)+2
			switch {
			// Past RoleChanged the promotion completes; the restart
			// then finds the peer unreachable and stands down (it may
			// have taken over meanwhile): arbitration decides again.
			case announced && (len(aborts) != 0 || (len(sagas) == 2 && !sagas[1].StandDown) || len(sagas) > 2):
				t.Fatalf("sagas %+v, aborts %+v after a crash past RoleChanged; want the one saga completed, then at most a stand-down", sagas, aborts)
			case !announced && (len(sagas) != 2 || len(aborts) != 1 || !aborts[0].Interrupted || aborts[0].FailoverID != sagas[0].FailoverID):
				t.Fatalf("sagas %+v, aborts %+v; want the first aborted as interrupted and a second one", sagas, aborts)
			case !announced && sagas[1].Epoch <= sagas[0].Epoch:
				t.Errorf("second saga at epoch %d, first at %d: a new decision opens a new epoch", sagas[1].Epoch, sagas[0].Epoch)
			}
			last := sagas[len(sagas)-1].FailoverID
			if announced {
				return
			}
			var lastSteps []string
			for _, s := range decodeAll[events.FailoverStepDone](h) {
				if s.FailoverID == last && s.OK {
					lastSteps = append(lastSteps, s.Step)
				}
			}
			if want := plan; !announced && !cmp.Equal(want, lastSteps) {
				t.Errorf("the new saga's steps %v, want the whole plan %v", lastSteps, want)
			}
			var actives int
			for _, rc := range decodeAll[events.RoleChanged](h) {
				if rc.To == events.RoleActive {
					actives++
				}
			}
			if actives != 1 {
				t.Errorf("%d RoleChanged to active, want 1", actives)
			}
			if !h.vip.holds() {
				t.Error("VIP not held at the end")
			}
		})
	}
}

func crashName(k int, plan []string) string {
	switch {
	case k == 1:
		return "after FailoverStarted"
	case k <= len(plan)+1:
		return "after step " + plan[k-2]
	default:
		return "after RoleChanged"
	}
}

func TestHangingHookTimesOutAndAborts(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Hooks.PreS2M = markerHook(t, h.dir, "hang.sh", h.hooks, "echo hanging; sleep 60")
	h.opts.Hooks.Timeout = 300 * time.Millisecond
	h.start()
	h.peerDown()
	h.waitFor("FailoverAborted", func() bool { return len(decodeAll[events.FailoverAborted](h)) == 1 })
	ab := decodeAll[events.FailoverAborted](h)[0]
	if ab.Step != "pre-s2m" || !strings.Contains(ab.Reason, "timed out") {
		t.Errorf("aborted %+v", ab)
	}
	var rec events.FailoverStepDone
	for _, s := range decodeAll[events.FailoverStepDone](h) {
		if s.Step == "pre-s2m" {
			rec = s
		}
	}
	if rec.OK || !strings.Contains(rec.Error, "process group was killed") || !strings.Contains(rec.Output, "hanging") {
		t.Errorf("step record %+v", rec)
	}
	if h.vip.holds() || len(decodeAll[events.RoleChanged](h)) != 1 { // only the initial announcement
		t.Error("an aborted failover changed the role or took the VIP")
	}
}

func TestVetoHookAborts(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Hooks.Veto = markerHook(t, h.dir, "veto.sh", h.hooks, "echo 'replica not verified'; exit 1")
	h.start()
	h.peerDown()
	h.waitFor("FailoverAborted", func() bool { return len(decodeAll[events.FailoverAborted](h)) == 1 })
	ab := decodeAll[events.FailoverAborted](h)[0]
	if ab.Step != "veto" || !strings.Contains(ab.Reason, "vetoed") {
		t.Errorf("aborted %+v", ab)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(decodeAll[events.FailoverAborted](h)); n != 1 {
		t.Errorf("the aborted failover was retried on the same verdict: %d aborts", n)
	}
	if diff := cmp.Diff([]string{"veto s2m"}, h.hookLines()); diff != "" {
		t.Errorf("hooks after a veto (-want +got):\n%s", diff)
	}
}

func TestManualFailoverWithAndWithoutForce(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Policy.Automatic = false
	h.start()
	h.publish(events.ReplicationLagHigh{Database: events.PgSQL, Server: "pg-a", LagBytes: 8 << 20, ThresholdBytes: 1 << 20})
	req := h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleActive, Manual: true, Reason: "drill", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	h.waitFor("the request answered", func() bool { return len(decodeAll[events.FailoverDecided](h)) == 1 })
	d := decodeAll[events.FailoverDecided](h)[0]
	if !d.Blocked || d.Branch != "guard.lag" || d.RequestID != req.ID || !strings.Contains(d.Reason, "force") {
		t.Fatalf("unforced manual failover while lagging: %+v", d)
	}
	if len(decodeAll[events.FailoverStarted](h)) != 0 {
		t.Fatal("a lagging replica was promoted without force")
	}
	// Site b burned: the heartbeat has lost it, so force may promote
	// past a fence nobody answers (this site has no arbiters to claim).
	h.peerDown()
	req = h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleActive, Manual: true, Force: true, Reason: "site b burned", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	rc := h.waitRole(events.RoleActive, 1)
	st := decodeAll[events.FailoverStarted](h)
	if len(st) != 1 || !st[0].Force || !st[0].Manual || st[0].RequestID != req.ID || rc.Epoch != 1 {
		t.Fatalf("forced failover: %+v %+v", st, rc)
	}
}

func TestAutomaticFailoverDisabledThenReenabledByTime(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.start()
	until := h.clock.Now().Add(30 * time.Minute)
	h.publish(events.AutomaticFailoverChanged{Enabled: false, Until: &until, Reason: "maintenance", By: "root@b"})
	h.peerDown()
	h.waitFor("blocked decision", func() bool {
		for _, d := range decodeAll[events.FailoverDecided](h) {
			if d.Branch == "guard.automatic-off" && d.Blocked {
				return true
			}
		}
		return false
	})
	h.clock.Add(20 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	if len(decodeAll[events.FailoverStarted](h)) != 0 {
		t.Fatal("failed over while automatic failover was disabled")
	}
	if n := len(decodeAll[events.FailoverDecided](h)); n != 1 {
		t.Errorf("a standing decision was recorded %d times, want once", n)
	}
	h.clock.Add(11 * time.Minute)
	h.waitRole(events.RoleActive, 1)
}

func TestObserveOnlyRecordsAndNeverActs(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Policy.ObserveOnly = true
	h.start()
	h.peerDown()
	h.waitFor("observe-only decision", func() bool { return len(decodeAll[events.FailoverDecided](h)) == 1 })
	d := decodeAll[events.FailoverDecided](h)[0]
	if !d.ObserveOnly || d.Action != events.ActionBeActive || !strings.Contains(d.Reason, "would beActive") {
		t.Errorf("decision %+v", d)
	}
	time.Sleep(200 * time.Millisecond)
	if len(decodeAll[events.FailoverStarted](h)) != 0 || h.vip.holds() || len(h.hookLines()) != 0 {
		t.Error("observe-only acted")
	}
}

func TestOptionsRejectBadInput(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "hook")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	o := DefaultOptions()
	o.Site, o.InitialRole = "a", "primary"
	o.Hooks = saga.Hooks{PreS2M: notExec, PostS2M: filepath.Join(dir, "missing")}
	err := o.validate()
	for _, want := range []string{"site.peer", `site.role "primary"`, "hooks.preS2M", "chmod +x", "hooks.postS2M", "hooks.timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}

// TestCrashInsideAHookResumes stops Run while the pre-s2m hook is running
// (a process dying mid-step, not between steps). Nothing records the
// interrupted step, so the restart runs it again — steps are at least
// once — and the saga completes once.
func TestCrashInsideAHookResumes(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	once, running := filepath.Join(h.dir, "once"), filepath.Join(h.dir, "running")
	h.opts.Hooks.PreS2M = markerHook(t, h.dir, "pre-s2m.sh", h.hooks,
		"if [ ! -e "+once+" ]; then touch "+once+" "+running+"; sleep 30; fi")
	h.start()
	h.peerDown()
	h.waitFor("the hook running", func() bool { _, err := os.Stat(running); return err == nil })
	h.stop()
	for _, s := range decodeAll[events.FailoverStepDone](h) {
		if s.Step == "pre-s2m" {
			t.Fatalf("the interrupted step was recorded: %+v", s)
		}
	}
	h.start()
	h.waitFor("FailoverCompleted", func() bool { return len(decodeAll[events.FailoverCompleted](h)) == 1 })
	// The interrupted promotion is aborted and decided again: the new
	// saga runs its hooks from the start.
	if diff := cmp.Diff([]string{"veto s2m", "pre s2m", "veto s2m", "pre s2m", "post s2m"}, h.hookLines()); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"veto", "veto", "pre-s2m", "fence-peer", "take-vip", "start-services", "post-s2m"}, steps(h)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	var actives int
	for _, rc := range decodeAll[events.RoleChanged](h) {
		if rc.To == events.RoleActive {
			actives++
		}
	}
	if actives != 1 || len(decodeAll[events.FailoverStarted](h)) != 2 {
		t.Errorf("%d RoleChanged to active, %d sagas; want 1 and 2", actives, len(decodeAll[events.FailoverStarted](h)))
	}
}

// TestRequestExpires: a request its issuer stopped waiting for — here one
// recorded ten minutes ago by its issuer's clock and delivered only now,
// as a request sent into a cut is — is discarded and recorded as such, not
// acted on; a fresh one acts.
func TestRequestExpires(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.clock.now = time.Now()
	h.opts.Policy.Automatic = false
	h.opts.Policy.RequestExpiry, h.opts.Policy.ClockSkew = 2*time.Minute, 10*time.Second
	h.start()
	late, err := events.New(h.other.Source(), events.FailoverRequested{Target: "a", ToRole: events.RoleActive, Manual: true,
		Reason: "typed during the cut", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)}, h.clock.Now().Add(-10*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.other.PublishEnvelope(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the late request answered", func() bool { return len(decodeAll[events.FailoverDecided](h)) == 1 })
	d := decodeAll[events.FailoverDecided](h)[0]
	if d.Branch != "request.expired" || d.RequestID != late.ID || d.Action != events.ActionNothing || !strings.Contains(d.Reason, "issued at") {
		t.Fatalf("late request: %+v", d)
	}
	if len(decodeAll[events.FailoverStarted](h)) != 0 {
		t.Fatal("a request its issuer no longer waits for was acted on")
	}
	// Forced, b lost by the heartbeat: the harness runs no orchestrator
	// for b, so nothing answers the fence, and this site has no arbiters
	// to claim.
	h.peerDown()
	fresh := h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleActive, Manual: true, Force: true, Reason: "drill", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	h.waitRole(events.RoleActive, 1)
	if st := decodeAll[events.FailoverStarted](h); len(st) != 1 || st[0].RequestID != fresh.ID {
		t.Fatalf("fresh request: %+v", st)
	}
}
