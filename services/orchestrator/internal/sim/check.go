package sim

import (
	"fmt"
	"strings"

	"github.com/drwatch/drwatch/pkg/events"
)

func (w *world) violate(msg string) {
	if w.violated == "" {
		w.violated = msg
		w.tracef("VIOLATION %s", msg)
	}
}

// active reports whether s is active in the checker's sense
// (pkg/checker): its projection says active and its process is up and
// past the restart hold (a RoleConfirmed or a newer RoleChanged).
func (s *site) active() bool {
	return s.proc && s.powered && !s.held && s.st.Role == events.RoleActive
}

// checkSafety runs after every simulated event: never two VIP holders,
// two writable primaries or two active sites at one instant.
func (w *world) checkSafety() {
	a, b := w.sites[0], w.sites[1]
	switch {
	case a.vip && b.vip:
		w.violate("two VIP holders")
	case a.powered && a.db.writable && b.powered && b.db.writable:
		if x := w.bootWindow(a, b); x != nil {
			if !x.unfencedSeen {
				x.unfencedSeen = true
				w.unfenced++
				w.tracef("%s database writable beside %s's primary while its process is down or held, without the VIP (tolerated)", x.id, x.other().id)
			}
			return
		}
		w.violate("two writable primaries")
	case a.active() && b.active():
		w.violate(fmt.Sprintf("two active sites (a at epoch %d, b at epoch %d)", a.st.Epoch, b.st.Epoch))
	}
}

// bootWindow returns the site whose writable database nothing can fence
// now — its drwatch process is down or in its restart hold — and which
// holds no VIP, so no client writes reach it; nil when there is none or
// Options.StrictFence. Such a window is the crash's or the power cut's,
// not a decision's: it ends when the process stands down or the epoch
// fence demotes it.
func (w *world) bootWindow(a, b *site) *site {
	if w.opt.StrictFence {
		return nil
	}
	for _, s := range []*site{a, b} {
		if !s.vip && (s.held || !s.proc) {
			return s
		}
	}
	return nil
}

// checkLiveness runs Bound after the last fault healed: exactly one site
// active, holding the VIP, its database the one primary.
func (w *world) checkLiveness() {
	var act []string
	for _, s := range w.sites {
		if s.active() {
			act = append(act, string(s.id))
		}
	}
	if len(act) != 1 {
		w.violate(fmt.Sprintf("liveness: %d active sites %s after the last heal [%s]; %s", len(act), w.tm.Bound, strings.Join(act, ","), w.describe()))
		return
	}
	s := w.sites[0]
	if !s.active() {
		s = w.sites[1]
	}
	if !s.vip || !s.db.writable {
		w.violate(fmt.Sprintf("liveness: %s is active but holds the VIP %v, its database writable %v, %s after the last heal; %s", s.id, s.vip, s.db.writable, w.tm.Bound, w.describe()))
	}
}

func (w *world) describe() string {
	var b strings.Builder
	for _, s := range w.sites {
		st := s.st
		fmt.Fprintf(&b, "%s: proc %v held %v role %s epoch %d peer %s/%d saga %v lastActive %s vip %v writable %v; ",
			s.id, s.proc, s.held, st.Role, st.Epoch, st.PeerRole, st.PeerEpoch, st.SagaRunning(), st.LastActive, s.vip, s.db.writable)
	}
	return b.String()
}
