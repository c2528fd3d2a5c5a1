package vipmon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
)

// fakeVIP is an address whose state and failures the test sets; the real
// one is moved in the orchestrator's network-namespace test.
type fakeVIP struct {
	held    bool
	heldErr error
	moveErr error
	ops     []string
}

func (f *fakeVIP) Held(context.Context) (bool, error) { return f.held, f.heldErr }
func (f *fakeVIP) Names() (string, string)            { return "10.0.0.10/24", "eth0" }

func (f *fakeVIP) Take(context.Context) error {
	f.ops = append(f.ops, "take")
	if f.moveErr != nil {
		return f.moveErr
	}
	f.held = true
	return nil
}

func (f *fakeVIP) Release(context.Context) error {
	f.ops = append(f.ops, "release")
	if f.moveErr != nil {
		return f.moveErr
	}
	f.held = false
	return nil
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name    string
		held    bool
		st      Status
		ops     []string
		changed *events.VIPChanged
		skipped string
	}{
		{name: "active without the VIP takes it", held: false, st: Status{Role: events.RoleActive},
			ops: []string{"take"}, changed: &events.VIPChanged{Address: "10.0.0.10/24", Interface: "eth0", Held: true, Role: events.RoleActive}},
		{name: "active with the VIP leaves it", held: true, st: Status{Role: events.RoleActive}},
		{name: "standby holding the VIP is fenced", held: true, st: Status{Role: events.RoleStandby},
			ops: []string{"release"}, changed: &events.VIPChanged{Address: "10.0.0.10/24", Interface: "eth0", Held: false, Role: events.RoleStandby}},
		{name: "standalone holding the VIP drops it", held: true, st: Status{Role: events.RoleStandalone},
			ops: []string{"release"}, changed: &events.VIPChanged{Address: "10.0.0.10/24", Interface: "eth0", Held: false, Role: events.RoleStandalone}},
		{name: "standby without the VIP: nothing", held: false, st: Status{Role: events.RoleStandby}},
		{name: "a saga owns the VIP: paused", held: false, st: Status{Role: events.RoleActive, Paused: true}, skipped: "paused"},
		{name: "paused even when a standby holds it", held: true, st: Status{Role: events.RoleStandby, Paused: true}, skipped: "paused"},
		{name: "observe-only reports and never moves", held: true, st: Status{Role: events.RoleStandby, ObserveOnly: true}, skipped: "observe-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeVIP{held: tt.held}
			var published []events.VIPChanged
			m := &Monitor{VIP: v, Log: slog.New(slog.DiscardHandler), Publish: func(_ context.Context, ev events.VIPChanged) error {
				published = append(published, ev)
				return nil
			}}
			out := m.Reconcile(context.Background(), tt.st)
			if out.Err != nil || out.Skipped != tt.skipped {
				t.Fatalf("outcome %+v, want skipped %q", out, tt.skipped)
			}
			if diff := cmp.Diff(tt.ops, v.ops); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
			if tt.changed == nil {
				if out.Changed != nil || len(published) != 0 {
					t.Errorf("changed %+v, published %+v; want nothing", out.Changed, published)
				}
				return
			}
			ignoreReason := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Reason" }, cmp.Ignore())
			if diff := cmp.Diff(tt.changed, out.Changed, ignoreReason); diff != "" {
				t.Errorf("change (-want +got):\n%s", diff)
			}
			if len(published) != 1 || published[0].Reason == "" {
				t.Fatalf("published %+v, want one VIPChanged with a reason", published)
			}
			if err := events.Validate(published[0]); err != nil {
				t.Errorf("the record does not validate: %v", err)
			}
			if again := m.Reconcile(context.Background(), tt.st); again.Changed != nil {
				t.Errorf("a second round changed it again: %+v", again.Changed)
			}
		})
	}
}

// TestPermissionErrorReportedOnce: a site without CAP_NET_ADMIN says so
// clearly once, not on every round, and again only after it recovered and
// failed anew.
func TestPermissionErrorReportedOnce(t *testing.T) {
	var buf bytes.Buffer
	v := &fakeVIP{moveErr: fmt.Errorf("add 10.0.0.10/24 on eth0: %w", vip.ErrPermission)}
	m := &Monitor{VIP: v, Log: slog.New(slog.NewTextHandler(&buf, nil))}
	active := Status{Role: events.RoleActive}
	for range 5 {
		if out := m.Reconcile(context.Background(), active); !errors.Is(out.Err, vip.ErrPermission) {
			t.Fatalf("outcome %+v, want the permission error", out)
		}
	}
	logged := strings.Count(buf.String(), "level=ERROR")
	if logged != 1 || !strings.Contains(buf.String(), "CAP_NET_ADMIN") {
		t.Fatalf("logged %d errors, want 1 naming CAP_NET_ADMIN:\n%s", logged, buf.String())
	}
	if len(v.ops) != 5 {
		t.Errorf("%d attempts, want one per round (it keeps trying quietly)", len(v.ops))
	}

	// Granted, then lost again: reported anew.
	v.moveErr = nil
	if out := m.Reconcile(context.Background(), active); out.Changed == nil {
		t.Fatalf("after the grant: %+v", out)
	}
	v.held, v.moveErr = false, fmt.Errorf("add: %w", vip.ErrPermission)
	m.Reconcile(context.Background(), active)
	if n := strings.Count(buf.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors logged, want 2 (once per episode)", n)
	}
}

func TestReadErrorReportedOnce(t *testing.T) {
	var buf bytes.Buffer
	v := &fakeVIP{heldErr: errors.New(`vip.interface "eth9": Link not found`)}
	m := &Monitor{VIP: v, Log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 3 {
		m.Reconcile(context.Background(), Status{Role: events.RoleStandby})
	}
	if n := strings.Count(buf.String(), "level=ERROR"); n != 1 || !strings.Contains(buf.String(), "eth9") {
		t.Errorf("logged %d errors, want 1 naming the interface:\n%s", n, buf.String())
	}
	if len(v.ops) != 0 {
		t.Errorf("moved an address it could not read: %v", v.ops)
	}
}

func TestWant(t *testing.T) {
	for role, want := range map[events.Role]bool{events.RoleActive: true, events.RoleStandby: false, events.RoleStandalone: false, "": false} {
		if got := Want(role); got != want {
			t.Errorf("Want(%q) = %v, want %v", role, got, want)
		}
	}
}
