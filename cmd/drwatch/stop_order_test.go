package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/service"
)

// TestArbiterStopsLast: when a site stops, the arbiter service's context
// ends only after every other service has returned — its managing sessions
// keep the peer from taking over, so they must outlast the orchestrator's
// release of the VIP.
func TestArbiterStopsLast(t *testing.T) {
	path, _, _ := minimalSite(t)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	slow := func(name string) service.RunFunc {
		return func(ctx context.Context, _ service.Deps) error {
			<-ctx.Done()
			time.Sleep(200 * time.Millisecond) // releasing the VIP, say
			record(name + " returned")
			return nil
		}
	}
	services := []site.Service{
		{Name: "arbiter", Run: func(ctx context.Context, _ service.Deps) error {
			<-ctx.Done()
			record("arbiter stopping")
			return nil
		}},
		{Name: "orchestrator", Run: slow("orchestrator")},
		{Name: "heartbeat", Run: slow("heartbeat")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- site.Run(ctx, site.Options{Config: cfg, Services: services, Log: slog.New(slog.DiscardHandler),
			Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("site stopped while starting: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("site.Run: %v", err)
	}
	if len(order) != 3 || order[2] != "arbiter stopping" {
		t.Fatalf("stop order %q, want the arbiter last", order)
	}
}
