package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// TestRestartedActiveWithoutItsPeer is the partition fuzzer's finding:
// a's process died (its host kept the VIP), the link was cut, b took over
// at epoch 2 behind the cut. a comes back with its log saying active and
// its heartbeat losing b. With automatic failover on it must stand down
// without ever taking the VIP back (the VIP monitor removes the one its
// host kept); arbitration decides later whether it takes over again. With
// automatic failover off nobody would promote it back, so it resumes.
func TestRestartedActiveWithoutItsPeer(t *testing.T) {
	tests := []struct {
		name      string
		automatic bool
		wantRole  events.Role
		wantOps   []string
		wantHeld  bool
	}{
		{"automatic on: stands down", true, events.RoleStandby, []string{"release"}, false},
		{"automatic off: resumes active", false, events.RoleActive, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bustest.RunPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			aBus := p.A.Bus(t, "orchestrator", "b")
			bBus := p.B.Bus(t, "orchestrator", "a")
			if _, err := aBus.Publish(ctx, events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial"}, nil); err != nil {
				t.Fatal(err)
			}
			p.Link.Cut()
			if _, err := bBus.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Reason: "a lost", FailoverID: "f1"}, nil); err != nil {
				t.Fatal(err)
			}
			vip := &fakeVIP{held: true} // the host kept it while the process was down
			o := DefaultOptions()
			o.Site, o.Peer, o.InitialRole = "a", "b", events.RoleActive
			o.Lines = []string{"default"}
			o.Policy = decide.Policy{Automatic: tt.automatic, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, RestartYield: time.Hour}
			o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
			o.VIP = vip
			// The stand-down demotes the database too: before, it only
			// recorded standby and left the primary writable (safety-core
			// path 9).
			o.Databases = []events.Database{events.MySQL}
			seen := make(chan events.DatabaseCommand, 16)
			fakeDBMonitor(ctx, t, p.A.Bus(t, "dbmonitor", "b"), "a", seen)
			o.Tick = 20 * time.Millisecond
			o.VIPInterval = 20 * time.Millisecond
			o.KeepPeerSource = false // the link stays cut
			done := make(chan error, 1)
			go func() { done <- RunWith(ctx, service.Deps{Bus: aBus, Log: quiet(), Now: time.Now}, o) }()
			defer func() { cancel(); <-done }()
			time.Sleep(300 * time.Millisecond) // held: b's role is unknown here
			if got := vip.opsSeen(); len(got) != 0 {
				t.Fatalf("a moved the VIP (%v) while it was held", got)
			}
			hb := p.A.Bus(t, "heartbeat", "b")
			if _, err := hb.Publish(ctx, events.RemoteUnreachable{Peer: "b", Line: "default", Since: time.Now(), Failed: []events.ProbeResult{{Target: "b", Kind: "icmp"}}}, nil); err != nil {
				t.Fatal(err)
			}
			var last events.RoleChanged
			bustest.WaitFor(t, 15*time.Second, "the hold ends", func() bool {
				r, _ := roleOf(t, aBus, "a")
				if r != tt.wantRole {
					return false
				}
				_, err := aBus.Replay(ctx, 0, []string{events.SiteTypeFilter("a", "RoleChanged")}, func(_ uint64, env *events.Envelope) error {
					last, _ = events.DecodeInto[events.RoleChanged](env)
					return nil
				})
				return err == nil && (tt.wantRole == events.RoleActive || len(vip.opsSeen()) > 0)
			})
			time.Sleep(300 * time.Millisecond) // VIP rounds after the hold
			if tt.wantRole == events.RoleStandby && (last.Reason != pair.RestartStandDownReason || last.Epoch != 1 || last.From != events.RoleActive) {
				t.Errorf("stand-down recorded as %+v", last)
			}
			if tt.wantRole == events.RoleActive && last.Epoch != 1 {
				t.Errorf("a resumed as %+v, want its epoch 1 unchanged", last)
			}
			var confirmed []events.RoleConfirmed
			if _, err := aBus.Replay(ctx, 0, []string{events.SiteTypeFilter("a", "RoleConfirmed")}, func(_ uint64, env *events.Envelope) error {
				rc, err := events.DecodeInto[events.RoleConfirmed](env)
				confirmed = append(confirmed, rc)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(confirmed) != 1 || confirmed[0].Role != tt.wantRole || confirmed[0].Epoch != 1 {
				t.Errorf("RoleConfirmed %+v, want one with %s at epoch 1", confirmed, tt.wantRole)
			}
			var cmds []string
			for len(seen) > 0 {
				cmds = append(cmds, (<-seen).Command)
			}
			if want := map[bool][]string{true: {"demote"}}[tt.wantRole == events.RoleStandby]; !cmp.Equal(cmds, want) {
				t.Errorf("database commands %v, want %v", cmds, want)
			}
			if got := vip.opsSeen(); !cmp.Equal(got, tt.wantOps) || vip.holds() != tt.wantHeld {
				t.Errorf("VIP ops %v held=%v, want %v held=%v", got, vip.holds(), tt.wantOps, tt.wantHeld)
			}
		})
	}
}
