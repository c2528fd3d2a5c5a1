package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// confirmPeer ends the hold of a site restarted active (decide.Restart):
// once its projection knows the peer's latest role — read from the peer's
// own log over the leafnode link, then awaited in the sourced copy, so the
// decision loop sees a newer epoch and stands down before the VIP is ever
// taken — it resumes; a peer the heartbeat declares unreachable makes it
// stand down instead, since that peer may have taken over while this
// process was down; StartupHold passing resumes it on its own authority.
func (r *runner) confirmPeer(ctx context.Context) {
	release := func(d decide.RestartDecision) {
		r.mu.Lock()
		r.held = false
		r.mu.Unlock()
		if d.Warn {
			r.log.Warn("restarted active: startup hold ends", "outcome", d.Action, "why", d.Reason)
		} else {
			r.log.Info("restarted active: startup hold ends", "outcome", d.Action, "why", d.Reason)
		}
		// The arbiter holds its managing sessions only once the role is
		// confirmed: recorded, so the log says why this site resumed.
		st, _ := r.snapshot()
		rc := events.RoleConfirmed{Role: st.Role, Epoch: st.Epoch, Reason: clip(string(d.Action)+": "+d.Reason, 1024)}
		if _, err := r.deps.Bus.Publish(ctx, rc, nil); err != nil && ctx.Err() == nil {
			r.log.Error("record the role confirmed after a restart; the arbiter holds its sessions after its own timeout", "err", err)
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	deadline := time.Now().Add(r.opts.StartupHold)
	var want *events.RoleChanged
	noRole := false
	var promotingSince time.Time // when this site first saw the peer promoting
	for {
		st, changed := r.snapshot()
		switch {
		case !st.PeerPromoting():
			promotingSince = time.Time{}
		case promotingSince.IsZero():
			promotingSince = time.Now()
		}
		k := decide.PeerPending
		switch {
		case st.PeerUnreachable():
			k = decide.PeerUnreachable
		case noRole || (want != nil && (st.PeerEpoch > want.Epoch || (st.PeerEpoch == want.Epoch && st.PeerRole == want.To))):
			k = decide.PeerLearned
		case time.Now().After(deadline):
			k = decide.PeerUnknown
		}
		d := decide.Restart(decide.RestartInput{
			Site: r.opts.Site, Peer: r.opts.Peer, Role: st.Role, Epoch: st.Epoch, SagaRunning: st.SagaRunning(), PeerPromoting: st.PeerPromoting(),
			PeerPromotingStuck: st.PeerPromoting() && !promotingSince.IsZero() && time.Since(promotingSince) > r.opts.Policy.RestartYield,
			Knowledge:          k, PeerRole: st.PeerRole, PeerEpoch: st.PeerEpoch,
			Automatic: !st.AutomaticOffForTheActive(r.opts.Policy.Automatic, r.deps.Now(), st.LastHeard(r.deps.Now()), r.opts.Policy.ClockSkew),
		})
		if d.Action == decide.RestartResume && d.Warn && r.opts.ClaimTimeout > 0 {
			// Resuming on this site's own authority: only if the
			// arbiters show the peer does not hold them.
			d = r.claimOnRestart(ctx, d)
		}
		switch d.Action {
		case decide.RestartResume:
			release(d)
			return
		case decide.RestartStandDown:
			err := r.standDown(ctx, st, d.Reason)
			if err == nil {
				release(d)
				return
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Error("restarted active: standing down failed; retrying", "err", err)
		}
		if want == nil && !noRole {
			rc, found, err := r.peerRole(ctx)
			switch {
			case err == nil && !found:
				noRole = true
				continue
			case err == nil:
				want = &rc
				continue
			}
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// claimOnRestart claims the arbiters for a site about to resume active on
// its own authority: clear, it resumes with the arbiters' word; anything
// else stands it down, since the peer may be the one holding them.
func (r *runner) claimOnRestart(ctx context.Context, d decide.RestartDecision) decide.RestartDecision {
	x := &saga.Executor{Bus: r.deps.Bus, Wait: r.wait, ClaimTimeout: r.opts.ClaimTimeout}
	id := "restart-" + uuid.Must(uuid.NewV7()).String()
	c, err := x.Claim(ctx, id, "restarted active: "+d.Reason)
	if err != nil {
		return decide.RestartDecision{Action: decide.RestartStandDown, Reason: d.Reason + "; " + err.Error()}
	}
	return decide.RestartDecision{Action: decide.RestartResume,
		Reason: fmt.Sprintf("%s; the arbiters confirm it: %d of %d held, %d managed by the peer", d.Reason, c.Held, c.N, c.Managed)}
}

// standDown demotes a site restarted active without its peer: a
// demotion saga like any other (the VIP goes, the databases turn
// read-only, then hooks and services), marked StandDown so the projection
// knows the site was active last. It returns once the saga has ended, so
// the hold is lifted on a standby site whose databases accept no writes.
// startStandDown records the stand-down that settles a site with no role
// of its own on standby (announceInitialRole): release-vip and demote-*
// first, like every demotion, then rc as the saga's RoleChanged. It
// returns once the projection holds the saga; the loop runs it.
func (r *runner) startStandDown(ctx context.Context, rc events.RoleChanged) error {
	r.log.Info("standing down before announcing standby: this site may have been active", "epoch", rc.Epoch, "why", rc.Reason)
	// Not a restart stand-down (StandDown): such a site was active last
	// by its own log, which this one cannot say; the restart yield that
	// follows a stand-down would only hold back a standby that never was
	// active (a pair's first start seen from its second site).
	id, err := r.recordDemotion(ctx, events.FailoverStarted{From: events.RoleStandby, Epoch: rc.Epoch, Reason: rc.Reason})
	if err != nil {
		return err
	}
	_, err = r.wait(ctx, func(s *pair.State) bool { return s.Saga != nil && s.Saga.ID == id }, 10*time.Second)
	return err
}

func (r *runner) standDown(ctx context.Context, st *pair.State, why string) error {
	epoch := max(st.Epoch, st.MaxEpoch)
	r.log.Warn("restarted active without its peer: standing down", "epoch", epoch, "why", why)
	id, err := r.recordDemotion(ctx, events.FailoverStarted{From: events.RoleActive, Epoch: epoch, Reason: pair.RestartStandDownReason, StandDown: true})
	if err != nil {
		return err
	}
	_, err = r.wait(ctx, func(s *pair.State) bool {
		return s.Saga != nil && s.Saga.ID == id && s.Saga.Finished && s.Role != events.RoleActive
	}, 30*time.Minute)
	return err
}

// recordDemotion records ev, with a new ID and the demotion's plan, as a
// saga of this process's own for the loop to run, and returns its ID.
func (r *runner) recordDemotion(ctx context.Context, ev events.FailoverStarted) (string, error) {
	ev.FailoverID, ev.To = uuid.Must(uuid.NewV7()).String(), events.RoleStandby
	ev.Steps = (&saga.Executor{Peer: r.opts.Peer, VIP: r.sagaVIP(), Services: r.opts.Services, Hooks: r.opts.Hooks, Databases: r.opts.Databases}).Plan(events.RoleStandby, false)
	r.mu.Lock()
	r.started[ev.FailoverID] = true
	r.mu.Unlock()
	if _, err := r.deps.Bus.Publish(ctx, ev, nil); err != nil {
		return "", fmt.Errorf("record the stand-down: %w", err)
	}
	return ev.FailoverID, nil
}
