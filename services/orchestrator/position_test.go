package orchestrator

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// laggingDBMonitor stands in for dbmonitor on the real bus: a position
// command is answered with lagTxns transactions behind, everything else OK.
// It returns the commands it answered.
func (h *harness) laggingDBMonitor(ctx context.Context, lagTxns int64) func() []events.DatabaseCommand {
	var mu sync.Mutex
	var cmds []events.DatabaseCommand
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
				mu.Lock()
				cmds = append(cmds, cmd)
				mu.Unlock()
				done := events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, OK: true, Position: "0-1-42", FailoverID: cmd.FailoverID}
				if cmd.Command == "position" {
					done.LagTransactions = lagTxns
				}
				_, err = h.other.Publish(ctx, done, env)
				return err
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() []events.DatabaseCommand {
		mu.Lock()
		defer mu.Unlock()
		return append([]events.DatabaseCommand(nil), cmds...)
	}
}

// An automatic failover asks for the replica's position right before
// promoting: 5 transactions behind (failover.maxLagTransactions 0) aborts
// it with the reason and no promote is sent; a forced manual failover then
// goes through, recording what it overrode, and its promote carries force.
func TestCheckPositionAbortsALaggingFailoverUnlessForced(t *testing.T) {
	h := newHarness(t, events.RoleStandby)
	h.opts.Databases = []events.Database{events.MySQL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	commands := h.laggingDBMonitor(ctx, 5)
	h.start()
	h.peerDown()

	h.waitFor("FailoverAborted", func() bool { return len(decodeAll[events.FailoverAborted](h)) == 1 })
	ab := decodeAll[events.FailoverAborted](h)[0]
	want := "not promoting: mysql replica is 5 transactions behind, more than failover.maxLagTransactions 0; a forced failover promotes anyway"
	if ab.Step != saga.StepCheckPosition || ab.Reason != want {
		t.Fatalf("aborted %+v, want at %s with %q", ab, saga.StepCheckPosition, want)
	}
	for _, c := range commands() {
		if c.Command == "promote" {
			t.Fatalf("promoted a lagging replica: %+v", c)
		}
	}
	for _, rc := range decodeAll[events.RoleChanged](h) {
		if rc.To == events.RoleActive {
			t.Fatalf("became active after the abort: %+v", rc)
		}
	}

	h.publish(events.FailoverRequested{Target: "a", ToRole: events.RoleActive, Manual: true, Force: true, Reason: "site b is gone", RequestedBy: "root@a", Epoch: maxEpoch(t, h.bus)})
	h.waitRole(events.RoleActive, 1)
	var promote *events.DatabaseCommand
	for _, c := range commands() {
		if c.Command == "promote" {
			promote = &c
		}
	}
	if promote == nil || !promote.Force {
		t.Fatalf("forced failover's promote %+v, want force", promote)
	}
	var overrode bool
	for _, s := range decodeAll[events.FailoverStepDone](h) {
		overrode = overrode || (s.Step == saga.StepCheckPosition && s.OK && strings.Contains(s.Output, "forced: promoting despite mysql replica is 5 transactions behind"))
	}
	if !overrode {
		t.Errorf("the forced check-position does not record the lag it overrode: %+v", decodeAll[events.FailoverStepDone](h))
	}
}
