package sim

import (
	"fmt"
	"strconv"

	"github.com/drwatch/drwatch/pkg/events"
)

// writeNode is one acknowledged write; histories are paths in a tree of
// them (node 0 is the empty history), so two primaries diverge as
// branches and a lost write is one the final history does not hold.
type writeNode struct {
	parent int32
	depth  int32
}

type writeTree []writeNode

// lca is the last write two histories share.
func (t writeTree) lca(a, b int32) int32 {
	for t[a].depth > t[b].depth {
		a = t[a].parent
	}
	for t[b].depth > t[a].depth {
		b = t[b].parent
	}
	for a != b {
		a, b = t[a].parent, t[b].parent
	}
	return a
}

// database is a site's MariaDB server: writable (a primary), following
// the peer (a replica), and the history it holds. Its mode survives a
// power cut: a primary boots a primary.
type database struct {
	writable, follows bool
	head              int32
}

// writeTick: clients write through the VIP; a write is acknowledged by a
// writable database on the site holding it, then shipped to the replica.
func (w *world) writeTick() {
	w.at(w.writeEvery, w.writeTick)
	for _, s := range w.sites {
		if !s.powered || !s.vip || !s.db.writable {
			continue
		}
		w.writes = append(w.writes, writeNode{parent: s.db.head, depth: w.writes[s.db.head].depth + 1})
		n := int32(len(w.writes) - 1)
		s.db.head = n
		w.acked = append(w.acked, n)
		w.lastAck = n
		w.ship(s)
	}
}

// ship sends from's history as it is now to the replica, arriving after
// the replication delay if the sites still reach each other; a replica
// whose history is not a prefix of it (diverged) stops.
func (w *world) ship(from *site) {
	h := from.db.head
	to := from.other()
	w.at(w.replDelay, func() {
		if !from.powered || !to.powered || !w.reach(from.idx, to.idx) || to.db.writable || !to.db.follows {
			return
		}
		if w.writes[h].depth > w.writes[to.db.head].depth && w.writes.lca(h, to.db.head) == to.db.head {
			to.db.head = h
		}
	})
}

// kickReplication ships each site's history to a replica following it
// (after a heal, a power-on, a change of mode): a fenced primary's last
// writes still reach its replica.
func (w *world) kickReplication() {
	for _, s := range w.sites {
		if s.powered && s.other().db.follows {
			w.ship(s)
		}
	}
}

// behind is how many writes of history h the history r lacks.
func (w *world) behind(h, r int32) int {
	return int(w.writes[h].depth - w.writes[w.writes.lca(h, r)].depth)
}

// position is dbmonitor's answer to a position command: a replica's lag
// behind the server it follows when it can read it, 0 otherwise (the
// documented limit: a primary that cannot be read reads as no lag).
func (w *world) position(s *site) events.DatabaseCommandDone {
	ans := events.DatabaseCommandDone{Command: "position", Database: events.MySQL, OK: true,
		Position:    strconv.Itoa(int(w.writes[s.db.head].depth)),
		FollowsNone: s.db.writable || !s.db.follows}
	p := s.other()
	if !s.db.writable && s.db.follows && p.powered && w.reach(s.idx, p.idx) {
		ans.LagTransactions = int64(w.behind(p.db.head, s.db.head))
	}
	return ans
}

// promote makes s's server the primary. It returns how many acknowledged
// writes the new primary lacks; a switchover whose catch-up found the
// fenced peer's writes all there must lack none.
func (w *world) promote(s *site, caughtUp bool) int {
	lost := w.behind(w.lastAck, s.db.head)
	s.db.writable, s.db.follows = true, false
	w.tracef("%s database promoted at %d writes; %d acknowledged writes missing", s.id, w.writes[s.db.head].depth, lost)
	if caughtUp && lost > int(s.policy.MaxLagTransactions) {
		w.violate(fmt.Sprintf("switchover to %s lost %d acknowledged writes after catch-up found none missing", s.id, lost))
	}
	w.kickReplication()
	return lost
}

func (w *world) demote(s *site) {
	s.db.writable = false
	w.tracef("%s database read-only", s.id)
	w.kickReplication()
}

// repoint makes s's server a replica of the peer's primary; a history
// that diverged is rebuilt from the primary, and the writes only it held
// are counted (and reported in the answer).
func (w *world) repoint(s *site) int {
	s.db.follows = true
	p := s.other()
	lost := 0
	if p.powered && w.reach(s.idx, p.idx) {
		lost = w.behind(s.db.head, p.db.head)
		if lost > 0 {
			s.db.head = p.db.head
		}
	}
	w.kickReplication()
	return lost
}

// lostWrites counts acknowledged writes missing from the final history:
// that of the one writable database, else of the latest write.
func (w *world) lostWrites() int {
	h := w.lastAck
	n := 0
	for _, s := range w.sites {
		if s.powered && s.db.writable {
			h = s.db.head
			n++
		}
	}
	if n > 1 || len(w.acked) == 0 {
		return 0
	}
	in := make([]bool, len(w.writes))
	for x := h; x > 0; x = w.writes[x].parent {
		in[x] = true
	}
	lost := 0
	for _, a := range w.acked {
		if !in[a] {
			lost++
		}
	}
	return lost
}
