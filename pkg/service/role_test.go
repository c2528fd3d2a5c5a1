package service

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

func TestWatchRoleRebuildsFromTheLogAndFollows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "orchestrator", "b")
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Peer, cfg.Site.Role = "a", "b", "standby"
	deps := Deps{Config: &cfg, Bus: b, Log: slog.New(slog.DiscardHandler), Now: time.Now}

	v, err := WatchRole(ctx, deps, "test")
	if err != nil {
		t.Fatal(err)
	}
	if role, epoch := v.Current(); role != events.RoleStandby || epoch != 0 {
		t.Fatalf("before any event: %s/%d, want the configured standby/0", role, epoch)
	}
	changed := v.Changed()
	if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 3, Reason: "failover"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no change signalled")
	}
	if role, epoch := v.Current(); role != events.RoleActive || epoch != 3 {
		t.Fatalf("after RoleChanged: %s/%d, want active/3", role, epoch)
	}

	// A second watcher, as after a restart, rebuilds the same view.
	v2, err := WatchRole(ctx, deps, "restarted")
	if err != nil {
		t.Fatal(err)
	}
	if role, epoch := v2.Current(); role != events.RoleActive || epoch != 3 {
		t.Fatalf("rebuilt view: %s/%d, want active/3", role, epoch)
	}
}
