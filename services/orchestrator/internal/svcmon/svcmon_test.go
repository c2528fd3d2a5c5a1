package svcmon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
)

// scriptService writes a real service script whose state is a pid-less
// marker file: start creates it, stop removes it, status tests it.
func scriptService(t *testing.T, dir, name, runOn string) (Service, string) {
	t.Helper()
	state := filepath.Join(dir, name+".running")
	p := filepath.Join(dir, name+".sh")
	body := `#!/bin/sh
case "$1" in
start) touch ` + state + ` ;;
stop) rm -f ` + state + ` ;;
status) test -e ` + state + ` ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return Service{Name: name, Kind: "script", Target: p, RunOn: runOn}, state
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestReconcileScripts(t *testing.T) {
	dir := t.TempDir()
	web, webState := scriptService(t, dir, "web", "active")
	sync, syncState := scriptService(t, dir, "sync", "standby")
	agent, agentState := scriptService(t, dir, "agent", "both")
	services := []Service{web, sync, agent}
	c := Controller{Timeout: 5 * time.Second}
	ctx := context.Background()

	got := c.Reconcile(ctx, services, events.RoleStandby)
	want := []Action{{Service: "sync", Verb: "start"}, {Service: "agent", Verb: "start"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("standby round (-want +got):\n%s", diff)
	}
	if exists(webState) || !exists(syncState) || !exists(agentState) {
		t.Fatal("standby: want sync and agent running, web stopped")
	}
	if got := c.Reconcile(ctx, services, events.RoleStandby); len(got) != 0 {
		t.Fatalf("a second round must change nothing, got %+v", got)
	}
	got = c.Reconcile(ctx, services, events.RoleActive)
	want = []Action{{Service: "web", Verb: "start"}, {Service: "sync", Verb: "stop"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("active round (-want +got):\n%s", diff)
	}
	if !exists(webState) || exists(syncState) || !exists(agentState) {
		t.Fatal("active: want web and agent running, sync stopped")
	}
}

func TestReconcileReportsFailures(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broken.sh")
	os.WriteFile(p, []byte("#!/bin/sh\n[ \"$1\" = status ] && exit 3\necho cannot start >&2; exit 1\n"), 0o755)
	ok, okState := scriptService(t, dir, "ok", "active")
	services := []Service{{Name: "broken", Kind: "script", Target: p, RunOn: "active"}, ok}
	acts := Controller{Timeout: 5 * time.Second}.Reconcile(context.Background(), services, events.RoleActive)
	if len(acts) != 2 || acts[0].Err == nil || !strings.Contains(acts[0].Err.Error(), "cannot start") || acts[1].Err != nil {
		t.Fatalf("got %+v", acts)
	}
	if !exists(okState) {
		t.Fatal("a failing service stopped the others")
	}
	missing := Service{Name: "ghost", Kind: "script", Target: filepath.Join(dir, "nope"), RunOn: "active"}
	acts = Controller{}.Reconcile(context.Background(), []Service{missing}, events.RoleActive)
	if len(acts) != 1 || acts[0].Err == nil || !strings.Contains(acts[0].Err.Error(), "ghost") {
		t.Fatalf("missing script: %+v", acts)
	}
}

func TestMonitorFollowsRole(t *testing.T) {
	dir := t.TempDir()
	web, webState := scriptService(t, dir, "web", "active")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	role := events.RoleStandby
	var roleMu = make(chan events.Role, 1)
	roleMu <- role
	get := func() (events.Role, bool) { r := <-roleMu; roleMu <- r; return r, false }
	done := make(chan struct{})
	go func() {
		Monitor(ctx, Controller{}, []Service{web}, 20*time.Millisecond, get, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	<-roleMu
	roleMu <- events.RoleActive
	deadline := time.Now().Add(5 * time.Second)
	for !exists(webState) {
		if time.Now().After(deadline) {
			t.Fatal("monitor did not start web for the active role")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(webState) // the service dies; the monitor restarts it
	for !exists(webState) {
		if time.Now().After(deadline) {
			t.Fatal("monitor did not restart web")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
