package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SourceKeeperOptions tune KeepPeerSource.
type SourceKeeperOptions struct {
	// Interval between checks (default 250 ms).
	Interval time.Duration
	// StaleAfter is how long the source may show no activity while the
	// peer's JetStream answers before it is re-established (default 3 s;
	// a healthy source is active at least every second).
	StaleAfter time.Duration
}

// KeepPeerSource watches the peer source of the site's log and
// re-establishes it when the peer's JetStream answers but the source is
// idle. nats-server retries a failed source with a back-off that leaves a
// healed link unused for tens of seconds, and while the link is down the
// source reports no error and zero lag: only the peer's answer and the
// source's last-active age tell. It runs until ctx ends.
func (b *Bus) KeepPeerSource(ctx context.Context, opts SourceKeeperOptions) error {
	if b.peer == "" {
		return nil
	}
	if opts.Interval == 0 {
		opts.Interval = 250 * time.Millisecond
	}
	if opts.StaleAfter == 0 {
		opts.StaleAfter = 3 * time.Second
	}
	peerJS, err := jetstream.NewWithDomain(b.nc, string(b.peer))
	if err != nil {
		return fmt.Errorf("source keeper: %w", err)
	}
	log := b.log.With("peer", b.peer)
	wasReachable := true
	var lastReset time.Time
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		reachable := b.peerAnswers(ctx, peerJS, opts.Interval)
		healed := reachable && !wasReachable
		wasReachable = reachable
		if !reachable {
			continue
		}
		stale, lag, err := b.sourceState(ctx, opts.StaleAfter)
		if err != nil {
			log.Debug("source keeper: stream info", "err", err)
			continue
		}
		b.metrics.sourceLag.Set(float64(lag))
		if !healed && !stale {
			continue
		}
		if b.now().Sub(lastReset) < opts.StaleAfter && !healed {
			continue
		}
		lastReset = b.now()
		if err := b.resetPeerSource(ctx); err != nil {
			log.Warn("source keeper: re-establish peer source", "err", err)
			continue
		}
		b.metrics.sourceResets.Inc()
		log.Info("re-established the peer source", "healed", healed, "stale", stale)
	}
}

func (b *Bus) peerAnswers(ctx context.Context, peerJS jetstream.JetStream, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 500*time.Millisecond))
	defer cancel()
	_, err := peerJS.AccountInfo(ctx)
	return err == nil
}

// sourceState reports whether the peer source is stale and its lag.
func (b *Bus) sourceState(ctx context.Context, staleAfter time.Duration) (bool, uint64, error) {
	s, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		return false, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false, 0, err
	}
	for _, src := range info.Sources {
		if src.Name != EventsStream {
			continue
		}
		stale := src.Error != nil || src.Active < 0 || src.Active > staleAfter
		return stale, src.Lag, nil
	}
	// The source is missing (a reset was interrupted): put it back.
	return true, 0, nil
}

// resetPeerSource removes and re-adds the peer source. The server finds
// where to resume by scanning the log for the last message it sourced, so
// nothing is copied twice; the duplicate window is a second guard.
func (b *Bus) resetPeerSource(ctx context.Context) error {
	cfg := b.EventsConfig()
	without := cfg
	without.Sources = nil
	if _, err := b.js.UpdateStream(ctx, without); err != nil {
		return fmt.Errorf("remove source: %w", err)
	}
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("re-add source: %w", err)
	}
	return nil
}
