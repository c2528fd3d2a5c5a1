package decide

import (
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// FollowPolicy bounds the re-pointing of a former active site's databases
// at the peer that took over.
type FollowPolicy struct {
	// Retry is how long after a failed answer the command is sent again.
	Retry time.Duration
	// AnswerTimeout is how long an unanswered command waits before it is
	// sent again (dbmonitor down or restarting).
	AnswerTimeout time.Duration
	// MaxAttempts per database and peer epoch; then an operator resyncs.
	MaxAttempts int
}

// Follow returns the databases whose replication this site must re-point
// at the peer now: the site is a standby that was active before (its
// servers were primaries, or followed an older primary), the peer is
// active and answers, no saga runs, and the database has not followed
// this epoch of the peer yet. A site that was never active is left alone:
// it has replicated from the peer since it was installed, and dbmonitor
// repairs that link.
func Follow(s *pair.State, dbs []events.Database, p FollowPolicy, now time.Time) []events.Database {
	if s.SagaRunning() || !s.RoleKnown || s.Role != events.RoleStandby || !s.EverActive ||
		s.PeerRole != events.RoleActive || s.PeerUnreachable() {
		return nil
	}
	var out []events.Database
	for _, db := range dbs {
		f, ok := s.Follow[db]
		switch {
		case !ok || f.Epoch != s.PeerEpoch:
		case f.Answered && f.OK:
			continue
		case f.Attempts >= p.MaxAttempts:
			continue
		case f.Answered && now.Sub(f.AnsweredAt) < p.Retry:
			continue
		case !f.Answered && now.Sub(f.IssuedAt) < p.AnswerTimeout:
			continue
		}
		out = append(out, db)
	}
	return out
}
