package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// RoleView tracks this site's current role and epoch from the RoleChanged
// events in the log, folded by the pair projection every service decides
// on; before the first one it reports the configured role.
type RoleView struct {
	mu    sync.RWMutex
	role  events.Role
	epoch events.Epoch
	subs  []chan struct{}
	// pair folds the events; only the goroutine applying them touches it.
	pair *pair.State
}

// WatchRole replays this site's RoleChanged events, then follows new ones
// until ctx ends. name labels the watcher in logs. It keeps no consumer on
// the server: every start rebuilds the view from the log.
func WatchRole(ctx context.Context, deps Deps, name string) (*RoleView, error) {
	site := events.SiteID(deps.Config.Site.Name)
	role := events.Role(deps.Config.Site.Role)
	v := &RoleView{role: role, pair: pair.New(site, events.SiteID(deps.Config.Site.Peer), role, nil)}
	filter := []string{events.SiteTypeFilter(site, "RoleChanged")}
	last, err := deps.Bus.Replay(ctx, 0, filter, func(_ uint64, env *events.Envelope) error {
		return v.apply(env)
	})
	if err != nil {
		return nil, fmt.Errorf("watch role: %w", err)
	}
	go v.follow(ctx, deps, name, filter, last)
	return v, nil
}

// follow applies new RoleChanged events from seq after until ctx ends. A
// follow that fails to start (the server restarting) is retried from the
// last applied sequence: a view that silently stopped would leave its
// service acting on a stale role.
func (v *RoleView) follow(ctx context.Context, deps Deps, name string, filter []string, last uint64) {
	var mu sync.Mutex
	for ctx.Err() == nil {
		mu.Lock()
		from := last + 1
		mu.Unlock()
		err := deps.Bus.Follow(ctx, from, filter, func(seq uint64, env *events.Envelope) {
			if err := v.apply(env); err != nil {
				deps.Log.Warn("role watch skipped an event", "watcher", name, "err", err)
			}
			mu.Lock()
			last = seq
			mu.Unlock()
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		deps.Log.Error("role watch interrupted; retrying", "watcher", name, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// NewRoleView returns a view fixed at role and epoch, for tests and for
// callers that feed it themselves with Set.
func NewRoleView(role events.Role, epoch events.Epoch) *RoleView {
	return &RoleView{role: role, epoch: epoch}
}

func (v *RoleView) apply(env *events.Envelope) error {
	if _, err := events.DecodeInto[events.RoleChanged](env); err != nil {
		return err
	}
	v.pair.Apply(env)
	v.Set(v.pair.Role, v.pair.Epoch)
	return nil
}

// Set records a role change and wakes Changed waiters.
func (v *RoleView) Set(role events.Role, epoch events.Epoch) {
	v.mu.Lock()
	v.role, v.epoch = role, epoch
	subs := v.subs
	v.subs = nil
	v.mu.Unlock()
	for _, c := range subs {
		close(c)
	}
}

// Current returns the role and epoch.
func (v *RoleView) Current() (events.Role, events.Epoch) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.role, v.epoch
}

// Changed returns a channel closed at the next role change.
func (v *RoleView) Changed() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := make(chan struct{})
	v.subs = append(v.subs, c)
	return c
}
