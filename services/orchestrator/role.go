package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

// rebuild folds the log into the projection and returns its last
// sequence. bus.Replay delivers first the durable facts the log's
// retention took (roles and the automatic-failover switch, kept in
// ROLES), so a role outlives the log.
func (r *runner) rebuild(ctx context.Context) (uint64, error) {
	return r.deps.Bus.Replay(ctx, 0, filters(), func(_ uint64, env *events.Envelope) error {
		r.apply(env)
		return nil
	})
}

// peerAskWindow is how long a site with no role of its own keeps asking
// its peer before it starts standby without an answer: the leafnode link
// comes up a moment after the server.
const peerAskWindow = 2 * time.Second

// awaitPeerInterval is how often a site that started standby without its
// peer's answer asks again.
const awaitPeerInterval = time.Second

// announceInitialRole settles the role of a site whose store holds none of
// its own (a first start, or a store wiped or lost) and records it with
// why. site.role applies only to the pair's first start, which only the
// peer's store can confirm:
//   - the peer answers and its store records an activation (a role at an
//     epoch above 0, or active): the pair ran before, and this site may have been
//     replaced; it starts standby at the highest epoch known and the
//     ordinary rules (epoch fence, arbitration, failback) go on from there;
//   - the peer answers and records none: the pair's first start, site.role;
//   - the peer does not answer: standby, which keeps the VIP and services
//     away; awaitPeer (awaiting reports true) then applies site.role if
//     the peer turns out to have no record either, and arbitration
//     promotes the site meanwhile if the peer is gone.
func (r *runner) announceInitialRole(ctx context.Context) (awaiting bool, err error) {
	st, _ := r.snapshot()
	peer, err := r.askPeer(ctx)
	var rc events.RoleChanged
	switch {
	case err != nil:
		r.log.Warn("no role of its own and the peer does not answer: starting standby", "err", err)
		rc = events.RoleChanged{To: events.RoleStandby, Epoch: st.MaxEpoch, Reason: reasonNoAnswer}
		awaiting = true
	case pairStarted(peer):
		r.learnFromPeer(peer)
		st, _ = r.snapshot()
		epoch := max(st.MaxEpoch, highestEpoch(peer))
		why := fmt.Sprintf("%s%s; starts standby at epoch %d and the ordinary rules decide", reasonNotFirst, describe(peer, r.opts.Site, r.opts.Peer), epoch)
		rc = events.RoleChanged{To: events.RoleStandby, Epoch: epoch, Reason: clip(why, 1024)}
	default:
		rc = r.configured(st, reasonFirstStart)
	}
	rc.From = rc.To
	_, hadRole := roles(peer)[r.opts.Site]
	if rc.To == events.RoleStandby && (awaiting || hadRole) {
		// This site may have been active before its store was lost (the
		// peer's store holds a role of it, or the peer cannot be asked):
		// its VIP may be up and its databases may accept writes. Standby
		// is recorded once they are fenced, by a stand-down the loop
		// runs first (its completion records the RoleChanged). A site
		// the peer's store never heard of (the pair's first start seen
		// from its second site) has nothing to fence.
		return awaiting, r.startStandDown(ctx, rc)
	}
	st, _ = r.snapshot()
	rc.Lineage = st.LineageAfter(rc)
	r.log.Info("announcing the initial role", "role", rc.To, "epoch", rc.Epoch, "why", rc.Reason)
	if _, err := r.deps.Bus.Publish(ctx, rc, nil); err != nil {
		return false, err
	}
	_, err = r.wait(ctx, func(s *pair.State) bool { return s.RoleKnown }, 10*time.Second)
	return awaiting, err
}

// Why a site with no role of its own started as it did (the initial
// RoleChanged's reason).
const (
	reasonFirstStart = "initial role from site.role: the pair's first start (no role of its own in this site's store, no activation in the peer's)"
	reasonLateFirst  = "initial role from site.role: the pair's first start after all (the peer answered and records no activation)"
	reasonNoAnswer   = "no role of its own in this site's store and the peer does not answer: starts standby until the peer answers or arbitration decides"
	reasonNotFirst   = "no role of its own in this site's store, and not the pair's first start: the peer's store records "
)

// configured is the RoleChanged of site.role: an active site opens its
// first epoch.
func (r *runner) configured(st *pair.State, why string) events.RoleChanged {
	rc := events.RoleChanged{To: r.opts.InitialRole, Epoch: st.MaxEpoch, Reason: why}
	if rc.To == events.RoleActive {
		rc.Epoch = decide.NextEpoch(st.MaxEpoch, r.opts.Site, r.opts.Peer)
	}
	rc.Lineage = st.LineageAfter(rc)
	return rc
}

// askPeer reads the peer's durable facts, retrying for peerAskWindow.
func (r *runner) askPeer(ctx context.Context) ([]bus.Fact, error) {
	deadline := time.Now().Add(peerAskWindow)
	for {
		facts, err := r.deps.Bus.PeerFacts(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return facts, err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// awaitPeer follows a site that started standby because its peer did not
// answer, until the peer answers: with no activation recorded, this is the
// pair's first start after all and site.role applies; with one, the site
// stays standby. It ends early when anything else settled the role (a
// takeover on arbitration, the peer's activation reaching the log).
func (r *runner) awaitPeer(ctx context.Context) {
	tick := time.NewTicker(awaitPeerInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, _ := r.snapshot()
		if st.SagaRunning() {
			continue // the initial stand-down, or a takeover: its end decides
		}
		if st.MaxEpoch > 0 || st.Role != events.RoleStandby {
			return
		}
		peer, err := r.deps.Bus.PeerFacts(ctx)
		if err != nil {
			continue
		}
		if pairStarted(peer) {
			r.learnFromPeer(peer)
			r.log.Info("the peer answers and records the pair's roles: staying standby", "peer", describe(peer, r.opts.Site, r.opts.Peer))
			return
		}
		if r.opts.InitialRole == events.RoleStandby {
			return
		}
		rc := r.configured(st, reasonLateFirst)
		rc.From = events.RoleStandby
		r.log.Info("announcing the initial role", "role", rc.To, "epoch", rc.Epoch, "why", rc.Reason)
		if _, err := r.deps.Bus.Publish(ctx, rc, nil); err != nil && ctx.Err() == nil {
			r.log.Error("announce the initial role; retrying", "err", err)
			continue
		}
		return
	}
}

// learnFromPeer applies the peer's facts that its log no longer holds:
// the peer source cannot bring them, and they may be the peer's latest
// role (an activation long ago).
func (r *runner) learnFromPeer(facts []bus.Fact) {
	for _, f := range facts {
		if f.Env.Site == r.opts.Peer && !f.InLog {
			r.apply(f.Env)
		}
	}
}

// peerRole is the peer's latest RoleChanged, read from its store over the
// leafnode link: its log, or its ROLES when retention took it from the
// log; in that case it is applied at once, since the peer source will
// never bring it.
func (r *runner) peerRole(ctx context.Context) (events.RoleChanged, bool, error) {
	facts, err := r.deps.Bus.PeerFacts(ctx)
	if err != nil {
		return events.RoleChanged{}, false, err
	}
	for _, f := range facts {
		if f.Env.Site != r.opts.Peer || f.Env.Type != "RoleChanged" {
			continue
		}
		rc, err := events.DecodeInto[events.RoleChanged](f.Env)
		if err != nil {
			return events.RoleChanged{}, false, fmt.Errorf("peer's last RoleChanged: %w", err)
		}
		if !f.InLog {
			r.apply(f.Env)
		}
		return rc, true, nil
	}
	return events.RoleChanged{}, false, nil
}

// pairStarted reports whether facts record an activation of either site:
// every activation opens an epoch above 0, and a site that learned of one
// announces even its standby at that epoch. A store with roles at epoch 0
// only is one of a pair that never had an active site.
func pairStarted(facts []bus.Fact) bool { return highestEpoch(facts) > 0 || anyActive(facts) }

func highestEpoch(facts []bus.Fact) events.Epoch {
	var e events.Epoch
	for _, rc := range roles(facts) {
		e = max(e, rc.Epoch)
	}
	return e
}

func anyActive(facts []bus.Fact) bool {
	for _, rc := range roles(facts) {
		if rc.To == events.RoleActive {
			return true
		}
	}
	return false
}

// roles are the RoleChanged among facts, by site.
func roles(facts []bus.Fact) map[events.SiteID]events.RoleChanged {
	out := map[events.SiteID]events.RoleChanged{}
	for _, f := range facts {
		if f.Env.Type != "RoleChanged" {
			continue
		}
		if rc, err := events.DecodeInto[events.RoleChanged](f.Env); err == nil {
			out[f.Env.Site] = rc
		}
	}
	return out
}

// describe says what the peer's store records of each site's role, for
// the reason and the log.
func describe(facts []bus.Fact, self, peer events.SiteID) string {
	rs := roles(facts)
	s := ""
	for _, c := range []struct {
		site events.SiteID
		who  string
	}{{peer, "the peer"}, {self, "this site"}} {
		rc, ok := rs[c.site]
		if !ok {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %s at epoch %d", c.who, rc.To, rc.Epoch)
	}
	if s == "" {
		return "no role"
	}
	return s
}
