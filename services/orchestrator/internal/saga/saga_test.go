package saga

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
)

const (
	siteA, siteB = events.SiteID("a"), events.SiteID("b")
	active       = events.RoleActive
	standby      = events.RoleStandby
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// world is the site's log and its projection, in memory: Publish appends
// and folds at once, and the reactions stand for the other services
// (dbmonitor answering a DatabaseCommand, the peer answering a fence).
type world struct {
	t   *testing.T
	mu  sync.Mutex
	st  *pair.State
	log []events.Event
	// dbOK is dbmonitor's answer to every DatabaseCommand but position.
	dbOK bool
	// position, when set, is dbmonitor's answer to a position command
	// (else OK, in sync); positionSilent: no answer at all.
	position       *events.DatabaseCommandDone
	positionSilent bool
	// peerStandsDown: an active peer answers a fence with a stand-down
	// (else it refuses); a standby peer answers that it is standby.
	// peerSilent: it does not answer at all; peerVanishes: the heartbeat
	// loses it instead.
	peerStandsDown, peerSilent, peerVanishes bool
	// peerExpires: a standby peer discards the request as expired.
	peerExpires bool
	// claim, when set, is the arbiter service's answer to a claim (its
	// ClaimID filled in); nil: no answer.
	claim *events.ArbitersClaimed
}

func newWorld(t *testing.T, role events.Role) *world {
	return &world{t: t, st: pair.New(siteA, siteB, role, []string{"default"}), dbOK: true, peerStandsDown: true}
}

func (w *world) apply(site events.SiteID, ev events.Event) *events.Envelope {
	env, err := events.New(events.Source{Site: site, Node: "n", Service: "test"}, ev, t0, nil)
	if err != nil {
		w.t.Fatalf("event %T: %v", ev, err)
	}
	w.st.Apply(env)
	return env
}

func (w *world) Publish(_ context.Context, ev events.Event, _ *events.Envelope) (*events.Envelope, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	env := w.apply(siteA, ev)
	w.log = append(w.log, ev)
	switch e := ev.(type) {
	case events.DatabaseCommand:
		done := events.DatabaseCommandDone{Command: e.Command, Database: e.Database, OK: w.dbOK, Position: "0/3000060", FailoverID: e.FailoverID}
		if !w.dbOK {
			done.Error = "pg_promote() returned false"
		}
		if e.Command == "position" {
			if w.positionSilent {
				break
			}
			done.OK, done.Error = true, ""
			if w.position != nil {
				done = *w.position
				done.Command, done.Database, done.FailoverID = e.Command, e.Database, e.FailoverID
			}
		}
		w.apply(siteA, done)
	case events.ArbitersClaimRequested:
		if w.claim != nil {
			c := *w.claim
			c.ClaimID = e.ClaimID
			w.apply(siteA, c)
		}
	case events.FailoverRequested:
		switch {
		case e.Target != siteB || w.peerSilent:
		case w.peerVanishes:
			w.apply(siteA, events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}})
		case w.st.PeerRole != active && w.peerExpires:
			w.apply(siteB, events.FailoverDecided{Action: events.ActionNothing, Branch: "request.expired", Reason: "expired", RequestID: env.ID})
		case w.st.PeerRole != active:
			w.apply(siteB, events.FailoverDecided{Action: events.ActionNothing, Branch: "request.already", Reason: "already standby", RequestID: env.ID})
		case w.peerStandsDown:
			w.apply(siteB, events.FailoverStarted{FailoverID: "b-down", From: active, To: standby, Epoch: w.st.PeerEpoch, Reason: "request.fenced", RequestID: env.ID, Steps: []string{"release-vip"}})
			w.apply(siteB, events.RoleChanged{From: active, To: standby, Epoch: w.st.PeerEpoch, Reason: "fenced", FailoverID: "b-down"})
			w.apply(siteB, events.FailoverCompleted{FailoverID: "b-down", Role: standby, Epoch: w.st.PeerEpoch})
		default:
			w.apply(siteB, events.FailoverDecided{Action: events.ActionBeStandby, Branch: "guard.observe-only", Reason: "observe only", Blocked: true, RequestID: env.ID})
		}
	}
	return env, nil
}

// Wait looks at the projection; everything in this world happens inside
// Publish, so a condition false now stays false.
func (w *world) Wait(_ context.Context, cond func(*pair.State) bool, timeout time.Duration) (*pair.State, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st.Clone()
	if timeout == 0 || cond(s) {
		return s, nil
	}
	return s, errors.New("timed out after " + timeout.String())
}

// types lists the log as "Type" or "Type:step" for step records.
func (w *world) types() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ev := range w.log {
		switch e := ev.(type) {
		case events.FailoverStepDone:
			out = append(out, "StepDone:"+e.Step+":"+strconv.FormatBool(e.OK))
		case events.FailoverAborted:
			out = append(out, "Aborted:"+e.Step)
		default:
			out = append(out, string(ev.EventType()))
		}
	}
	return out
}

// ops is a file every action of the saga appends one line to — hooks
// (real scripts), the VIP and the services — so their order is one list.
type ops string

func (o ops) add(line string) error {
	f, err := os.OpenFile(string(o), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line + "\n")
	return err
}

func (o ops) lines() []string {
	data, _ := os.ReadFile(string(o))
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type fakeVIP struct {
	ops               ops
	takeErr, relseErr error
}

func (v *fakeVIP) Take(context.Context) error {
	_ = v.ops.add("take-vip")
	return v.takeErr
}

func (v *fakeVIP) Release(context.Context) error {
	_ = v.ops.add("release-vip")
	return v.relseErr
}

type fakeServices struct {
	ops ops
	err error
}

func (s *fakeServices) Start(_ context.Context, svc svcmon.Service) error {
	_ = s.ops.add("start " + svc.Name)
	return s.err
}

func (s *fakeServices) Stop(_ context.Context, svc svcmon.Service) error {
	_ = s.ops.add("stop " + svc.Name)
	return s.err
}

// script writes an executable hook: it appends "<name> $1 $2" to the ops
// file, then runs extra.
func script(t *testing.T, dir, name string, o ops, extra string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := "#!/bin/sh\necho \"" + name + " $1 $2\" >> " + string(o) + "\n" + extra + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// full is an executor with everything configured: hooks (real scripts),
// both databases, the VIP and one service.
func full(t *testing.T, w *world) (*Executor, ops) {
	t.Helper()
	dir := t.TempDir()
	o := ops(filepath.Join(dir, "ops.log"))
	x := &Executor{
		Site: siteA, Peer: siteB, Bus: w,
		VIP:       &fakeVIP{ops: o},
		Services:  []svcmon.Service{{Name: "web", Kind: "script", Target: "/bin/true", RunOn: "active"}},
		Control:   &fakeServices{ops: o},
		Databases: []events.Database{events.PgSQL},
		Hooks: Hooks{
			Veto: script(t, dir, "veto", o, ""), PreS2M: script(t, dir, "pre-s2m", o, ""), PostS2M: script(t, dir, "post-s2m", o, ""),
			PreM2S: script(t, dir, "pre-m2s", o, ""), PostM2S: script(t, dir, "post-m2s", o, ""), Timeout: 5 * time.Second,
		},
		DBTimeout: time.Second, FenceTimeout: time.Second,
		Wait: w.Wait, Now: func() time.Time { return t0 }, Log: slog.New(slog.DiscardHandler),
	}
	return x, o
}

// start records FailoverStarted with x's plan and the given steps already
// done, through the projection, and returns the saga as a restart sees it.
func start(w *world, x *Executor, to events.Role, done ...string) *pair.Saga {
	from := standby
	if to != active {
		from = active
	}
	w.apply(siteA, events.FailoverStarted{FailoverID: "f1", From: from, To: to, Epoch: 2, Reason: "test", Steps: x.Plan(to, false)})
	for _, s := range done {
		w.apply(siteA, events.FailoverStepDone{FailoverID: "f1", Step: s, OK: true})
	}
	return w.st.Clone().Saga
}

func TestPlan(t *testing.T) {
	someHook := "/usr/local/bin/hook"
	tests := []struct {
		name     string
		x        Executor
		s2m, m2s []string
	}{
		{name: "nothing configured: only the fence, an empty demotion announces",
			x:   Executor{Peer: siteB},
			s2m: []string{"fence-peer"}, m2s: []string{"announce"}},
		{name: "no peer either: both announce",
			x:   Executor{},
			s2m: []string{"announce"}, m2s: []string{"announce"}},
		{name: "everything",
			x: Executor{Peer: siteB, VIP: &fakeVIP{}, Services: []svcmon.Service{{Name: "web"}},
				Databases: []events.Database{events.MySQL, events.PgSQL},
				Hooks:     Hooks{Veto: someHook, PreS2M: someHook, PostS2M: someHook, PreM2S: someHook, PostM2S: someHook}},
			s2m: []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-mysql", "promote-pgsql", "take-vip", "start-services", "post-s2m"},
			m2s: []string{"release-vip", "demote-mysql", "demote-pgsql", "pre-m2s", "stop-services", "post-m2s"}},
		{name: "one database only",
			x:   Executor{Peer: siteB, Databases: []events.Database{events.PgSQL}},
			s2m: []string{"check-position", "fence-peer", "catch-up", "promote-pgsql"}, m2s: []string{"demote-pgsql"}},
		{name: "VIP only",
			x:   Executor{Peer: siteB, VIP: &fakeVIP{}},
			s2m: []string{"fence-peer", "take-vip"}, m2s: []string{"release-vip"}},
		{name: "services only",
			x:   Executor{Peer: siteB, Services: []svcmon.Service{{Name: "web"}}},
			s2m: []string{"fence-peer", "start-services"}, m2s: []string{"stop-services"}},
		{name: "a pre hook without veto, a post m2s hook alone",
			x:   Executor{Peer: siteB, Hooks: Hooks{PreS2M: someHook, PostM2S: someHook}},
			s2m: []string{"pre-s2m", "fence-peer"}, m2s: []string{"post-m2s"}},
		{name: "veto alone",
			x:   Executor{Peer: siteB, Hooks: Hooks{Veto: someHook}},
			s2m: []string{"veto", "fence-peer"}, m2s: []string{"announce"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.s2m, tt.x.Plan(active, false)); diff != "" {
				t.Errorf("s2m plan (-want +got):\n%s", diff)
			}
			// A site that cannot claim plans no claim; one that can
			// claims first.
			if diff := cmp.Diff(tt.s2m, tt.x.Plan(active, true)); diff != "" {
				t.Errorf("s2m plan with a claim but no ClaimTimeout (-want +got):\n%s", diff)
			}
			claiming := tt.x
			claiming.ClaimTimeout = time.Second
			want := append([]string{"claim-arbiters"}, tt.s2m...)
			if tt.s2m[0] == "announce" {
				want = want[:1] // the claim is a step: nothing left to announce
			}
			if diff := cmp.Diff(want, claiming.Plan(active, true)); diff != "" {
				t.Errorf("s2m plan with a claim (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.m2s, tt.x.Plan(standby, true)); diff != "" {
				t.Errorf("m2s plan (-want +got):\n%s", diff)
			}
			// standalone is a demotion from active: the same steps.
			if diff := cmp.Diff(tt.m2s, tt.x.Plan(events.RoleStandalone, true)); diff != "" {
				t.Errorf("standalone plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunResumes gives Run a saga with some steps already recorded done
// (a step retried after an error in the same process) and checks that only
// the rest runs, and that nothing taken earlier is taken again unasked.
func TestRunResumes(t *testing.T) {
	allS2M := []string{"veto veto s2m", "pre-s2m pre s2m", "take-vip", "start web", "post-s2m post s2m"}
	tests := []struct {
		name string
		to   events.Role
		done []string
		// roleChanged: the saga's RoleChanged is already in the log.
		roleChanged bool
		ops         []string
		log         []string
	}{
		{name: "fresh promotion runs every step, the position first", to: active,
			ops: allS2M,
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:true",
				"DatabaseCommand", "StepDone:catch-up:true", "DatabaseCommand", "StepDone:promote-pgsql:true",
				"StepDone:take-vip:true", "StepDone:start-services:true", "StepDone:post-s2m:true", "RoleChanged", "FailoverCompleted"}},
		{name: "carried on after the fence", to: active, done: []string{"check-position", "veto", "pre-s2m", "fence-peer"},
			ops: []string{"take-vip", "start web", "post-s2m post s2m"},
			log: []string{"DatabaseCommand", "StepDone:catch-up:true", "DatabaseCommand", "StepDone:promote-pgsql:true", "StepDone:take-vip:true", "StepDone:start-services:true", "StepDone:post-s2m:true", "RoleChanged", "FailoverCompleted"}},
		{name: "a done step out of order is still skipped", to: active, done: []string{"veto", "take-vip"},
			ops: []string{"pre-s2m pre s2m", "start web", "post-s2m post s2m"},
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:true", "DatabaseCommand", "StepDone:catch-up:true",
				"DatabaseCommand", "StepDone:promote-pgsql:true", "StepDone:start-services:true", "StepDone:post-s2m:true", "RoleChanged", "FailoverCompleted"}},
		{name: "every step done: the role and the completion", to: active, done: []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-pgsql", "take-vip", "start-services", "post-s2m"},
			log: []string{"RoleChanged", "FailoverCompleted"}},
		{name: "role already announced: the completion", to: active, done: []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-pgsql", "take-vip", "start-services", "post-s2m"},
			roleChanged: true, log: []string{"FailoverCompleted"}},
		{name: "demotion carried on after the VIP: databases first, then hooks and services", to: standby, done: []string{"release-vip"},
			ops: []string{"pre-m2s pre m2s", "stop web", "post-m2s post m2s"},
			log: []string{"DatabaseCommand", "StepDone:demote-pgsql:true", "StepDone:pre-m2s:true", "StepDone:stop-services:true", "StepDone:post-m2s:true", "RoleChanged", "FailoverCompleted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runFrom(t, tt.to, tt.done, tt.roleChanged, (*Executor).Run, tt.ops, tt.log)
		})
	}
}

// runFrom records a saga to role to with the steps done already done (and
// its RoleChanged when roleChanged), against a peer active at epoch 1,
// carries it on with run (Executor.Run or Resume), checks the actions and
// the log, and returns the world for further checks.
func runFrom(t *testing.T, to events.Role, done []string, roleChanged bool, run func(*Executor, context.Context, *pair.Saga) error, ops, log []string) *world {
	t.Helper()
	w := newWorld(t, standby)
	w.apply(siteB, events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "peer active"})
	x, o := full(t, w)
	s := start(w, x, to, done...)
	if roleChanged {
		w.apply(siteA, events.RoleChanged{From: s.From, To: s.To, Epoch: 2, Reason: "test", FailoverID: "f1"})
		s = w.st.Clone().Saga
	}
	if err := run(x, context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ops, o.lines()); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(log, w.types()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	return w
}

// TestResume: a saga an earlier process left running. Before, a promotion
// carried on from its claim and position answers as old as the crash, and
// took the VIP back before any check (safety-core path 4); now it is
// aborted as interrupted and undone, and the decision is taken again.
func TestResume(t *testing.T) {
	tests := []struct {
		name        string
		to          events.Role
		done        []string
		roleChanged bool
		ops         []string
		log         []string
		undone      []string
	}{
		{name: "promotion stopped while taking the VIP: the VIP goes, the database turns read-only, aborted as interrupted", to: active,
			done:   []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-pgsql"},
			ops:    []string{"release-vip"},
			log:    []string{"StepDone:undo-take-vip:true", "DatabaseCommand", "StepDone:undo-promote-pgsql:true", "Aborted:take-vip"},
			undone: []string{"take-vip", "promote-pgsql"}},
		{name: "promotion stopped before anything was taken: aborted, nothing to undo", to: active,
			done: []string{"check-position", "veto"},
			log:  []string{"Aborted:pre-s2m"}},
		{name: "promotion that announced active: completed; the restart hold decides on the VIP", to: active,
			done:        []string{"check-position", "veto", "pre-s2m", "fence-peer", "catch-up", "promote-pgsql", "take-vip", "start-services", "post-s2m"},
			roleChanged: true, log: []string{"FailoverCompleted"}},
		{name: "demotion: carried on", to: standby, done: []string{"release-vip"},
			ops: []string{"pre-m2s pre m2s", "stop web", "post-m2s post m2s"},
			log: []string{"DatabaseCommand", "StepDone:demote-pgsql:true", "StepDone:pre-m2s:true", "StepDone:stop-services:true", "StepDone:post-m2s:true", "RoleChanged", "FailoverCompleted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := runFrom(t, tt.to, tt.done, tt.roleChanged, (*Executor).Resume, tt.ops, tt.log)
			for _, ev := range w.log {
				if a, ok := ev.(events.FailoverAborted); ok {
					if !a.Interrupted || !cmp.Equal(a.Undone, tt.undone) {
						t.Errorf("abort %+v, want interrupted with %v undone", a, tt.undone)
					}
				}
			}
			if st := w.st.Clone(); tt.to == active && !tt.roleChanged && (!st.Saga.Interrupted || st.Role != standby) {
				t.Errorf("projection: saga %+v, role %s; want an interrupted abort, still standby", st.Saga, st.Role)
			}
		})
	}
}

// TestDemotionRetriesTheDatabaseUntilReadOnly: a demotion whose database
// refuses to turn read-only records each failure and tries again; it never
// announces standby while the database may accept writes (before, the
// failure was skipped and standby recorded: safety-core path 3).
func TestDemotionRetriesTheDatabaseUntilReadOnly(t *testing.T) {
	w := newWorld(t, active)
	w.dbOK = false
	x, _ := full(t, w)
	s := start(w, x, standby)
	done := make(chan error, 1)
	go func() { done <- x.Run(context.Background(), s) }()
	time.Sleep(2500 * time.Millisecond)
	w.mu.Lock()
	failures, roles := 0, 0
	for _, ev := range w.log {
		switch e := ev.(type) {
		case events.FailoverStepDone:
			if e.Step == "demote-pgsql" && !e.OK {
				failures++
			}
		case events.RoleChanged:
			roles++
		}
	}
	w.dbOK = true
	w.mu.Unlock()
	if failures < 2 || roles != 0 {
		t.Errorf("%d failed demote tries and %d RoleChanged while the database refused; want ≥ 2 and 0 (log %v)", failures, roles, w.types())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := w.types()
	if got[len(got)-2] != "RoleChanged" || !slices.Contains(got, "StepDone:demote-pgsql:true") {
		t.Errorf("log %v: want the demote done, then standby announced", got)
	}
}

// TestFailurePolicy: a promotion stops at its first failing step and
// records FailoverAborted; a demotion records the failure and goes on, for
// it must end in standby whatever fails.
func TestFailurePolicy(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		to     events.Role
		break_ func(t *testing.T, w *world, x *Executor, o ops)
		ops    []string
		log    []string
	}{
		{name: "veto exits non-zero: aborted before anything moved", to: active,
			break_: func(t *testing.T, w *world, x *Executor, o ops) {
				x.Hooks.Veto = script(t, t.TempDir(), "veto", o, "exit 1")
			},
			ops: []string{"veto veto s2m"},
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:false", "Aborted:veto"}},
		{name: "pre hook fails", to: active,
			break_: func(t *testing.T, w *world, x *Executor, o ops) {
				x.Hooks.PreS2M = script(t, t.TempDir(), "pre", o, "exit 3")
			},
			ops: []string{"veto veto s2m", "pre pre s2m"},
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:false", "Aborted:pre-s2m"}},
		{name: "the peer does not stand down", to: active,
			break_: func(t *testing.T, w *world, x *Executor, o ops) { w.peerStandsDown = false },
			ops:    []string{"veto veto s2m", "pre-s2m pre s2m"},
			log:    []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:false", "Aborted:fence-peer"}},
		// A promote that fails may have half happened: the database is
		// asked to turn read-only again (here it refuses too, and the
		// abort says so).
		{name: "the database refuses promotion: demoted back", to: active,
			break_: func(t *testing.T, w *world, x *Executor, o ops) { w.dbOK = false },
			ops:    []string{"veto veto s2m", "pre-s2m pre s2m"},
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:true",
				"DatabaseCommand", "StepDone:catch-up:true", "DatabaseCommand", "StepDone:promote-pgsql:false", "DatabaseCommand", "StepDone:undo-promote-pgsql:false", "Aborted:promote-pgsql"}},
		// Before, this left a promoted, writable database under a standby
		// role (safety-core path 7).
		{name: "the VIP cannot be taken: the promoted database is demoted back", to: active,
			break_: func(t *testing.T, w *world, x *Executor, o ops) { x.VIP.(*fakeVIP).takeErr = boom },
			ops:    []string{"veto veto s2m", "pre-s2m pre s2m", "take-vip", "release-vip"},
			log: []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:true",
				"DatabaseCommand", "StepDone:catch-up:true", "DatabaseCommand", "StepDone:promote-pgsql:true", "StepDone:take-vip:false",
				"StepDone:undo-take-vip:true", "DatabaseCommand", "StepDone:undo-promote-pgsql:true", "Aborted:take-vip"}},
		{name: "demotion: the fence first; pre hook and VIP fail, the rest still runs", to: standby,
			break_: func(t *testing.T, w *world, x *Executor, o ops) {
				x.Hooks.PreM2S = script(t, t.TempDir(), "pre", o, "exit 1")
				x.VIP.(*fakeVIP).relseErr = boom
			},
			ops: []string{"release-vip", "pre pre m2s", "stop web", "post-m2s post m2s"},
			log: []string{"StepDone:release-vip:false", "DatabaseCommand", "StepDone:demote-pgsql:true", "StepDone:pre-m2s:false", "StepDone:stop-services:true",
				"StepDone:post-m2s:true", "RoleChanged", "FailoverCompleted"}},
		{name: "demotion: services fail to stop", to: standby,
			break_: func(t *testing.T, w *world, x *Executor, o ops) { x.Control.(*fakeServices).err = boom },
			ops:    []string{"release-vip", "pre-m2s pre m2s", "stop web", "post-m2s post m2s"},
			log: []string{"StepDone:release-vip:true", "DatabaseCommand", "StepDone:demote-pgsql:true", "StepDone:pre-m2s:true", "StepDone:stop-services:false",
				"StepDone:post-m2s:true", "RoleChanged", "FailoverCompleted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, standby)
			w.apply(siteB, events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "peer active"})
			x, o := full(t, w)
			x.FenceTimeout = 50 * time.Millisecond
			tt.break_(t, w, x, o)
			if err := x.Run(context.Background(), start(w, x, tt.to)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ops, o.lines()); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.log, w.types()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			for _, ev := range w.log {
				if d, ok := ev.(events.FailoverStepDone); ok && !d.OK && d.Error == "" {
					t.Errorf("failed step %s recorded without its error", d.Step)
				}
			}
		})
	}
}

// TestHookEnvironment runs a real hook that prints its arguments and
// environment.
func TestHookEnvironment(t *testing.T) {
	w := newWorld(t, standby)
	dir := t.TempDir()
	out := filepath.Join(dir, "env.out")
	hook := filepath.Join(dir, "hook.sh")
	// The hook inherits the environment; the test command exports its own
	// DRWATCH_TEST* variables, which are not the saga's.
	body := "#!/bin/sh\n{ echo \"args=$*\"; env | grep '^DRWATCH_' | grep -v '^DRWATCH_TEST' | sort; } > " + out + "\n"
	if err := os.WriteFile(hook, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	x := &Executor{Site: siteA, Peer: siteB, Bus: w, Hooks: Hooks{PreS2M: hook, Timeout: 5 * time.Second},
		Wait: w.Wait, Now: func() time.Time { return t0 }, Log: slog.New(slog.DiscardHandler)}
	s := &pair.Saga{ID: "0190f0e1-f1", From: standby, To: active, Epoch: 7, Manual: true, Force: true, Reason: "drill",
		Steps: []string{StepPreS2M}, Done: map[string]bool{}}
	if err := x.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"args=pre s2m",
		"DRWATCH_EPOCH=7", "DRWATCH_FAILOVER_ID=0190f0e1-f1", "DRWATCH_FORCE=true", "DRWATCH_FROM=standby",
		"DRWATCH_MANUAL=true", "DRWATCH_PEER=b", "DRWATCH_SITE=a", "DRWATCH_TO=active"}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(data)), "\n")); diff != "" {
		t.Errorf("hook saw (-want +got):\n%s", diff)
	}
}

// liveInGroup lists the processes of group pgid that are not zombies (a
// killed grandchild reparented to init stays a zombie until init reaps it,
// and kill -0 still finds it).
func liveInGroup(pgid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, pid)
		}
	}
	return out
}

// TestCrashInsideAStep cancels Run while a hook runs — what a dying
// process does to its saga. Nothing is recorded for the interrupted step,
// the hook's process group is killed, and the next Run (the restart) runs
// that step again and completes the saga once: steps are at least once.
func TestCrashInsideAStep(t *testing.T) {
	w := newWorld(t, standby)
	w.apply(siteB, events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "peer active"})
	x, o := full(t, w)
	dir := t.TempDir()
	pidFile, once := filepath.Join(dir, "pid"), filepath.Join(dir, "once")
	// The first run records its process group and hangs (a child sleep
	// too); the second returns at once.
	x.Hooks.PreS2M = script(t, dir, "pre-s2m", o,
		"if [ ! -e "+once+" ]; then touch "+once+"; echo $$ > "+pidFile+".tmp; mv "+pidFile+".tmp "+pidFile+"; sleep 30; fi")

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- x.Run(ctx, start(w, x, active)) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hook never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, _ := os.ReadFile(pidFile)
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pgid <= 0 || len(liveInGroup(pgid)) == 0 {
		t.Fatalf("pid file %q: no running hook to interrupt", data)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run returned %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true"}, w.types()); diff != "" {
		t.Fatalf("log after the crash (-want +got); nothing may be recorded for the interrupted step:\n%s", diff)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		alive := liveInGroup(pgid)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted hook's process group %d still runs: pids %v", pgid, alive)
		}
	}

	// Run again on the saga as the log now tells it (a restarted process
	// would abort a promotion instead: TestResume).
	if err := x.Run(context.Background(), w.st.Clone().Saga); err != nil {
		t.Fatal(err)
	}
	wantOps := []string{"veto veto s2m", "pre-s2m pre s2m", "pre-s2m pre s2m", "take-vip", "start web", "post-s2m post s2m"}
	if diff := cmp.Diff(wantOps, o.lines()); diff != "" {
		t.Errorf("actions (-want +got); the interrupted hook runs twice, the rest once:\n%s", diff)
	}
	wantLog := []string{"DatabaseCommand", "StepDone:check-position:true", "StepDone:veto:true", "StepDone:pre-s2m:true", "FailoverRequested", "StepDone:fence-peer:true",
		"DatabaseCommand", "StepDone:catch-up:true", "DatabaseCommand", "StepDone:promote-pgsql:true", "StepDone:take-vip:true", "StepDone:start-services:true", "StepDone:post-s2m:true", "RoleChanged", "FailoverCompleted"}
	if diff := cmp.Diff(wantLog, w.types()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestFenceStep: what fence-peer does for each view of the peer. A
// reachable peer is asked to stand down whatever this site's copy of its
// log says, and its answer decides; a peer with no heartbeat events yet
// counts as reachable.
func TestFenceStep(t *testing.T) {
	tests := []struct {
		name      string
		peer      []events.Event // the peer's events, folded first
		own       []events.Event // this site's heartbeat events
		lines     []string       // configured heartbeat lines; nil: default
		standDown bool
		// claimed: the saga claimed the arbiters already; claim: the
		// arbiter service's answer to a claim made by the fence (nil:
		// this site cannot claim); force: a forced failover.
		claimed, force, vanishes, manual, silent, expired, claimSilent bool
		claim                                                          *events.ArbitersClaimed
		ok                                                             bool
		requested                                                      bool
		output                                                         string
	}{
		{name: "role unknown, no heartbeat events: asked, answers", requested: true, ok: true, output: "is  (it answered request.already)"},
		{name: "standby: asked, answers standby", peer: []events.Event{events.RoleChanged{From: standby, To: standby, Reason: "x"}},
			requested: true, ok: true, output: "is standby (it answered request.already)"},
		// Found by the simulator (seeds 65, 1079…): a clock jumped minutes
		// back made every fence request look expired to the peer, and
		// refusing on that left the pair with no active.
		{name: "standby: asked, discards the request as expired", peer: []events.Event{events.RoleChanged{From: standby, To: standby, Reason: "x"}},
			expired: true, requested: true, ok: true, output: "is standby (it answered request.expired)"},
		{name: "active and stands down", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			standDown: true, requested: true, ok: true, output: "stood down (b-down) and is standby"},
		{name: "active and refuses to stand down: the promotion must not go on", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			requested: true, ok: false},
		// Before, a peer standby in this site's copy of its log was asked
		// and not waited for: a copy lagging behind the peer's own
		// promotion (the sourcing link down, the heartbeat up) let both
		// promote. Silence now goes to the arbiters.
		{name: "standby by a stale copy, silent: no claim possible, an operator's failover: refused", peer: []events.Event{events.RoleChanged{From: standby, To: standby, Reason: "x"}},
			silent: true, manual: true, requested: true, ok: false},
		// Found by review: a peer cut off from everything a moment ago
		// answers nothing yet still serves until it fences itself,
		// counted from a loss this site's heartbeat sees too; claiming at
		// once skipped the takeover hold.
		{name: "standby by a stale copy, silent, the heartbeat still reaches it: refused", peer: []events.Event{events.RoleChanged{From: standby, To: standby, Reason: "x"}},
			silent: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3}, requested: true, ok: false},
		// A failover of the peer's running in this site's copy gives it
		// the whole fence timeout to answer; when that runs out, "no time
		// left" must not read as "the heartbeat lost it".
		{name: "silent while its own failover runs, the heartbeat still reaches it: refused", peer: []events.Event{
			events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"},
			events.FailoverStarted{FailoverID: "b-x", From: active, To: standby, Epoch: 1, Reason: "x", Steps: []string{"release-vip"}}},
			silent: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3}, requested: true, ok: false},
		{name: "active, silent, the heartbeat still reaches it: refused even forced", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			silent: true, manual: true, force: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimFailed, N: 3, Unreachable: 3}, requested: true, ok: false},
		{name: "lost while being fenced, the claim conflicts: refused even forced", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			vanishes: true, manual: true, force: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimConflict, N: 3, Held: 3, Managed: 2}, requested: true, ok: false},
		{name: "lost while being fenced, the arbiters unreachable, forced: goes on", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			vanishes: true, manual: true, force: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimFailed, N: 3, Unreachable: 3}, requested: true, ok: true,
			output: "forced, proceeding on the operator's word although the claim failed"},
		{name: "lost while being fenced, the arbiter service silent, forced: refused", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			vanishes: true, manual: true, force: true, claimSilent: true, requested: true, ok: false},
		// Before, an unreachable peer let every promotion through on the
		// operator's word or the verdict alone (safety-core path 5).
		{name: "unreachable, no claim possible, an operator's failover: refused", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own:    []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			manual: true, ok: false},
		{name: "unreachable, no claim possible, a takeover on a script's verdict: goes on", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own: []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			ok:  true, output: "proceeding on the failure-detection verdict"},
		{name: "unreachable, claimed earlier in the saga: not asked, goes on", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own:     []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			claimed: true, ok: true, output: "the arbiters were claimed"},
		{name: "unreachable: the fence claims the arbiters", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own:   []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			claim: &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3}, ok: true, output: "the arbiters claimed: 3 of 3 held"},
		{name: "unreachable: the claim conflicts, refused", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own:   []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			claim: &events.ArbitersClaimed{Outcome: events.ClaimConflict, N: 3, Held: 3, Managed: 2}, ok: false},
		{name: "unreachable, no claim possible, forced: goes on", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own:    []events.Event{events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}}},
			manual: true, force: true, ok: true, output: "forced"},
		{name: "active, lost while being fenced, no claim possible: refused", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			vanishes: true, manual: true, requested: true, ok: false},
		{name: "active, lost while being fenced: the fence claims the arbiters", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			vanishes: true, claim: &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3}, requested: true, ok: true, output: "became unreachable while being fenced; the arbiters claimed"},
		{name: "one line of two still answers: reachable, asked", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own: []events.Event{
				events.RemoteUnreachable{Peer: siteB, Line: "wan1", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}},
				events.RemoteReachable{Peer: siteB, Line: "wan2", Target: "vip"},
			},
			lines:     []string{"wan1", "wan2"},
			standDown: true, requested: true, ok: true, output: "stood down"},
		// The heartbeat announces changes only: a line up since it started
		// has said nothing. Skipping the fence on the one line that did
		// speak would leave an active peer up beside us.
		{name: "one line of two down, the other never heard from: reachable, asked", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own: []events.Event{
				events.RemoteUnreachable{Peer: siteB, Line: "wan1", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}},
			},
			lines:     []string{"wan1", "wan2"},
			standDown: true, requested: true, ok: true, output: "stood down"},
		{name: "a line no longer configured is not counted", peer: []events.Event{events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"}},
			own: []events.Event{
				events.RemoteReachable{Peer: siteB, Line: "removed", Target: "vip"},
				events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}},
			},
			claimed: true, ok: true, output: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, standby)
			if tt.lines != nil {
				w.st = pair.New(siteA, siteB, standby, tt.lines)
			}
			w.peerStandsDown = tt.standDown
			for _, ev := range tt.peer {
				w.apply(siteB, ev)
			}
			for _, ev := range tt.own {
				w.apply(siteA, ev)
			}
			w.claim, w.peerVanishes, w.peerSilent, w.peerExpires = tt.claim, tt.vanishes, tt.silent, tt.expired
			x := &Executor{Site: siteA, Peer: siteB, Bus: w, FenceTimeout: 50 * time.Millisecond,
				Wait: w.Wait, Now: func() time.Time { return t0 }, Log: slog.New(slog.DiscardHandler)}
			if tt.claim != nil || tt.claimSilent {
				x.ClaimTimeout = time.Second
			}
			s := &pair.Saga{ID: "f1", From: standby, To: active, Epoch: 2, Reason: "x", Force: tt.force, Manual: tt.manual, Steps: []string{StepFencePeer}, Done: map[string]bool{StepClaimArbiters: tt.claimed}}
			out, err := x.step(context.Background(), s, StepFencePeer)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if !strings.Contains(out, tt.output) {
				t.Errorf("output %q does not say %q", out, tt.output)
			}
			var reqs []events.FailoverRequested
			for _, ev := range w.log {
				if r, ok := ev.(events.FailoverRequested); ok {
					reqs = append(reqs, r)
				}
			}
			if tt.requested != (len(reqs) == 1) || len(reqs) > 1 {
				t.Fatalf("requests %+v, want requested=%v", reqs, tt.requested)
			}
			if tt.requested && (reqs[0].Target != siteB || reqs[0].ToRole != standby || reqs[0].Manual) {
				t.Errorf("fence request %+v, want b to standby, not manual", reqs[0])
			}
		})
	}
}

// TestCheckPosition: right before promoting, a fresh position per
// database; a replica behind its limit (in its own unit), a failed answer
// or none abort the promotion unless it is forced, and force reaches the
// promote command.
func TestCheckPosition(t *testing.T) {
	lim := pair.LagLimits{MaxBytes: 1 << 20, MaxTransactions: 0}
	pos := func(ok bool, bytes, txns int64, err string) *events.DatabaseCommandDone {
		return &events.DatabaseCommandDone{OK: ok, Position: "0-1-42", LagBytes: bytes, LagTransactions: txns, Error: err}
	}
	tests := []struct {
		name   string
		db     events.Database
		answer *events.DatabaseCommandDone
		silent bool
		force  bool
		// lineage: this site was active last (epoch 1, then stood down).
		lineage  bool
		aborted  string // "" = promoted; else a substring of the abort reason
		recorded string // a substring of check-position's output when promoted
	}{
		{name: "mysql in sync", db: events.MySQL, answer: pos(true, 0, 0, ""), recorded: "mysql: position 0-1-42, 0 transactions behind"},
		{name: "mysql one transaction behind", db: events.MySQL, answer: pos(true, 0, 1, ""),
			aborted: "not promoting: mysql replica is 1 transactions behind, more than failover.maxLagTransactions 0; a forced failover promotes anyway"},
		{name: "mysql behind, forced", db: events.MySQL, answer: pos(true, 0, 7, ""), force: true,
			recorded: "forced: promoting despite mysql replica is 7 transactions behind"},
		{name: "pg within maxLagBytes", db: events.PgSQL, answer: pos(true, 1<<20, 0, ""), recorded: "pgsql: position 0-1-42, 1048576 bytes behind"},
		{name: "pg over maxLagBytes", db: events.PgSQL, answer: pos(true, 2<<20, 0, ""),
			aborted: "pgsql replica is 2097152 bytes behind, more than failover.maxLagBytes 1048576"},
		{name: "pg transactions are not bytes", db: events.PgSQL, answer: pos(true, 0, 99, ""), recorded: "0 bytes behind"},
		{name: "failed answer", db: events.MySQL, answer: pos(false, 0, 0, "connect: connection refused"),
			aborted: "position of mysql failed: connect: connection refused; a forced failover promotes anyway"},
		{name: "failed answer, forced", db: events.MySQL, answer: pos(false, 0, 0, "connect: connection refused"), force: true,
			recorded: "forced: promoting despite position of mysql failed"},
		{name: "pg follows no primary", db: events.PgSQL, answer: &events.DatabaseCommandDone{OK: true, Position: "0/3000060", FollowsNone: true},
			aborted: "not promoting: pgsql replicates from no primary (a former primary never made a replica again?): it lacks what the active site wrote since; `drwatch db resync --database pgsql` makes it a replica; a forced failover promotes anyway"},
		{name: "mysql follows no primary", db: events.MySQL, answer: &events.DatabaseCommandDone{OK: true, Position: "0-1-42", FollowsNone: true},
			aborted: "mysql replicates from no primary"},
		{name: "follows no primary, forced", db: events.MySQL, answer: &events.DatabaseCommandDone{OK: true, Position: "0-1-42", FollowsNone: true}, force: true,
			recorded: "mysql: position 0-1-42, 0 transactions behind, follows no primary; forced: promoting despite mysql replicates from no primary"},
		// Before, a site whose own attempt (or activation) left its server
		// a primary could never be promoted again (safety-core path 7).
		{name: "follows no primary, but holds the latest history: promoted", db: events.PgSQL, lineage: true,
			answer:   &events.DatabaseCommandDone{OK: true, Position: "0/3000060", FollowsNone: true},
			recorded: "follows no primary: it holds the latest history"},
		{name: "no answer", db: events.PgSQL, silent: true, aborted: "no fresh position of pgsql: position pgsql: no answer from dbmonitor within"},
		{name: "no answer, forced", db: events.PgSQL, silent: true, force: true, recorded: "forced: promoting despite no fresh position of pgsql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, standby)
			w.position, w.positionSilent = tt.answer, tt.silent
			if tt.lineage {
				w.apply(siteA, events.RoleChanged{From: standby, To: active, Epoch: 1, Reason: "x"})
				w.apply(siteA, events.RoleChanged{From: active, To: standby, Epoch: 1, Reason: "x"})
			}
			x, _ := full(t, w)
			x.Databases, x.LagLimits = []events.Database{tt.db}, lim
			x.Hooks, x.VIP, x.Services = Hooks{Timeout: time.Second}, nil, nil
			w.apply(siteA, events.FailoverStarted{FailoverID: "f1", From: standby, To: active, Epoch: 2, Reason: "test", Force: tt.force, Steps: x.Plan(active, false)})
			if err := x.Run(context.Background(), w.st.Clone().Saga); err != nil {
				t.Fatal(err)
			}
			var check events.FailoverStepDone
			var aborted *events.FailoverAborted
			var promote *events.DatabaseCommand
			for _, ev := range w.log {
				switch e := ev.(type) {
				case events.FailoverStepDone:
					if e.Step == StepCheckPosition {
						check = e
					}
				case events.FailoverAborted:
					aborted = &e
				case events.DatabaseCommand:
					if e.Command == "promote" {
						promote = &e
					}
				}
			}
			if tt.aborted != "" {
				if aborted == nil || aborted.Step != StepCheckPosition || !strings.Contains(aborted.Reason, tt.aborted) {
					t.Fatalf("aborted %+v, want at check-position with %q; log %v", aborted, tt.aborted, w.types())
				}
				if promote != nil {
					t.Fatalf("promoted after an aborting check: %+v", promote)
				}
				return
			}
			if aborted != nil || !check.OK || !strings.Contains(check.Output, tt.recorded) {
				t.Fatalf("check-position %+v (aborted %+v), want OK with %q", check, aborted, tt.recorded)
			}
			if promote == nil || promote.Force != tt.force {
				t.Fatalf("promote command %+v, want one with force=%v", promote, tt.force)
			}
		})
	}
}

func TestClaimStepGatesThePromotion(t *testing.T) {
	tests := []struct {
		name  string
		claim *events.ArbitersClaimed
		want  []string
	}{
		{"clear: the promotion goes on", &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3, Branch: "standby-failover"},
			[]string{"ArbitersClaimRequested", "StepDone:claim-arbiters:true", "StepDone:take-vip:true", "RoleChanged", "FailoverCompleted"}},
		{"conflict: nothing is taken", &events.ArbitersClaimed{Outcome: events.ClaimConflict, N: 3, Held: 3, Managed: 2, Branch: "standby-active-manages", Description: "the active site manages 2 of 3"},
			[]string{"ArbitersClaimRequested", "StepDone:claim-arbiters:false", "Aborted:claim-arbiters"}},
		{"no answer: nothing is taken", nil,
			[]string{"ArbitersClaimRequested", "StepDone:claim-arbiters:false", "Aborted:claim-arbiters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, standby)
			w.claim = tt.claim
			vip := &fakeVIP{ops: ops(filepath.Join(t.TempDir(), "ops.log"))}
			x := &Executor{Site: siteA, Peer: siteB, Bus: w, VIP: vip, ClaimTimeout: time.Second,
				Wait: w.Wait, Now: func() time.Time { return t0 }, Log: slog.New(slog.DiscardHandler)}
			steps := x.Plan(active, true)
			if diff := cmp.Diff([]string{"claim-arbiters", "fence-peer", "take-vip"}, steps); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
			// The peer is unreachable: the fence only says so.
			w.apply(siteA, events.RemoteUnreachable{Peer: siteB, Line: "default", Since: t0, DownForSeconds: 1,
				Failed: []events.ProbeResult{{Target: "10.0.0.2", Kind: "tcp", Attempts: 1, Error: "timeout"}}})
			w.apply(siteA, events.FailoverStarted{FailoverID: "f1", From: standby, To: active, Epoch: 1, Reason: "standby.takeover", Steps: steps})
			if err := x.Run(context.Background(), w.st.Clone().Saga); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range w.types() {
				if s != "StepDone:fence-peer:true" {
					got = append(got, s)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			taken := slices.Contains(vip.ops.lines(), "take-vip")
			if want := tt.claim != nil && tt.claim.Outcome == events.ClaimClear; taken != want {
				t.Errorf("VIP taken %v, want %v", taken, want)
			}
		})
	}
}

// TestTakeoverHold: a claim over an unreachable peer is made no sooner
// than TakeoverHold after the peer was last heard (the self-fence
// contract of config.Timing); before, the claim went out at once.
func TestTakeoverHold(t *testing.T) {
	for _, tt := range []struct {
		name      string
		heard     time.Duration // before now
		hold      time.Duration
		wantWait  bool
		wantAbove time.Duration
	}{
		{name: "heard just now: held", heard: 0, hold: 400 * time.Millisecond, wantWait: true, wantAbove: 350 * time.Millisecond},
		{name: "heard long ago: no wait", heard: time.Minute, hold: 400 * time.Millisecond},
		{name: "no hold configured", heard: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, standby)
			w.claim = &events.ArbitersClaimed{Outcome: events.ClaimClear, N: 3, Held: 3}
			now := time.Now()
			w.apply(siteA, events.RemoteUnreachable{Peer: siteB, Line: "default", Since: now.Add(-tt.heard), Failed: []events.ProbeResult{{Target: "vip", Kind: "icmp"}}})
			x := &Executor{Site: siteA, Peer: siteB, Bus: w, ClaimTimeout: time.Second, TakeoverHold: tt.hold,
				Wait: w.Wait, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
			s := &pair.Saga{ID: "f1", From: standby, To: active, Epoch: 2, Reason: "x", Steps: []string{StepClaimArbiters}, Done: map[string]bool{}}
			start := time.Now()
			out, err := x.step(context.Background(), s, StepClaimArbiters)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if strings.Contains(out, "held ") != tt.wantWait || took < tt.wantAbove {
				t.Errorf("claim after %s, output %q; want held=%v, at least %s", took, out, tt.wantWait, tt.wantAbove)
			}
			if !tt.wantWait && took > 200*time.Millisecond {
				t.Errorf("claim took %s with nothing to hold for", took)
			}
		})
	}
}
