package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
)

// followPeer re-points this standby site's databases at the active peer
// once per peer epoch (decide.Follow): after a failover the former active
// site's servers are fenced primaries that follow nobody. dbmonitor
// carries the command out; its answer, like the command, is in the log.
func (r *runner) followPeer(ctx context.Context, st *pair.State, now time.Time) error {
	var dbs []events.Database
	for _, db := range decide.Follow(st, r.opts.Databases, r.opts.Follow, now) {
		if _, ok := r.opts.PeerDatabases[db]; ok {
			dbs = append(dbs, db)
		}
	}
	if len(dbs) == 0 {
		return nil
	}
	id := pair.FollowID(st.PeerEpoch)
	for _, db := range dbs {
		hp := r.opts.PeerDatabases[db]
		r.log.Info("re-pointing replication at the active peer", "database", db, "primary", hp.Host, "port", hp.Port, "peerEpoch", st.PeerEpoch)
		cmd := events.DatabaseCommand{Command: "repoint", Database: db, Target: r.opts.Site, PrimaryHost: hp.Host, PrimaryPort: hp.Port, FailoverID: id, FollowEpoch: st.PeerEpoch}
		if _, err := r.deps.Bus.Publish(ctx, cmd, nil); err != nil {
			return fmt.Errorf("re-point %s: %w", db, err)
		}
	}
	attempts := map[events.Database]int{}
	for _, db := range dbs {
		attempts[db] = st.Follow[db].Attempts
	}
	// The projection must hold the commands before the next round, or it
	// would send them again.
	_, err := r.wait(ctx, func(s *pair.State) bool {
		for _, db := range dbs {
			f := s.Follow[db]
			if f.Epoch != st.PeerEpoch || (st.Follow[db].Epoch == st.PeerEpoch && f.Attempts <= attempts[db]) {
				return false
			}
		}
		return true
	}, 10*time.Second)
	return err
}
