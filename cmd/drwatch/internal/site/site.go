// Package site runs every drwatch service of one site in one process, on an
// embedded nats-server with JetStream (the default) or an external NATS.
package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/api"
	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/service"
)

// Service is one service to run in the site process.
type Service struct {
	Name string
	Run  service.RunFunc
}

// LastService is the service a site stops last (see Run).
const LastService = "arbiter"

// Options configure a site process.
type Options struct {
	Config   *config.Config
	Services []Service
	Log      *slog.Logger
	// Ready, when set, is called with the NATS URL once every service has
	// been started.
	Ready func(natsURL string)
	Now   func() time.Time
}

// Run starts the embedded server when no nats.url is configured, connects
// one bus per service, keeps the peer source healthy, serves /healthz and
// /metrics on http.listen, and runs the services until ctx ends. A service
// that fails stops the site: a half-running watchdog is worse than none.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Log
	if opts.Now == nil {
		opts.Now = time.Now
	}
	url := cfg.NATS.URL
	if url == "" {
		e := cfg.NATS.Embedded
		srv, err := bus.StartServer(bus.ServerOptions{
			Site: cfg.Site.Name, Host: e.Host, Port: e.Port, StoreDir: e.StoreDir, SyncAlways: e.SyncAlways,
			LeafListen: e.Leafnode.Listen, LeafRemotes: e.Leafnode.Remotes,
			LeafCert: e.Leafnode.TLS.Cert, LeafKey: e.Leafnode.TLS.Key, LeafCA: e.Leafnode.TLS.CA,
			Peer: cfg.Site.Peer, KeysDir: e.Keys(), LeafKeyFile: e.Leafnode.Key,
			Logger: log,
		})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			log.Info("embedded NATS stopped")
		}()
		url = srv.ClientURL()
		log.Info("embedded NATS with JetStream started", "url", url, "domain", cfg.Site.Name, "storeDir", e.StoreDir, "syncAlways", e.SyncAlways, "keysDir", e.Keys())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := bus.NewMetrics(reg)
	tp, shutdownTracing, err := service.Tracing(ctx, cfg.Telemetry, "site")
	if err != nil {
		return err
	}
	defer shutdownTracing()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	keeper, err := service.Connect(ctx, cfg, url, "site", log, metrics, tp)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := keeper.KeepPeerSource(ctx, bus.SourceKeeperOptions{}); err != nil {
			cancel(fmt.Errorf("peer source keeper: %w", err))
		}
	}()

	// The arbiter service stops last: its managing sessions tell the
	// peer's arbitration that this site is alive, so they must outlast
	// whatever makes it active (the orchestrator releases the VIP as it
	// stops).
	lastCtx, stopLast := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLast()
	var lastWG sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]error{}
	for _, s := range opts.Services {
		sctx, group := ctx, &wg
		if s.Name == LastService {
			sctx, group = lastCtx, &lastWG
		}
		b, err := service.Connect(sctx, cfg, url, s.Name, log, metrics, tp)
		if err != nil {
			cancel(err)
			break
		}
		deps := service.Deps{Config: cfg, Bus: b, Log: log.With("service", s.Name), Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"service": s.Name}, reg), Tracer: tp, Now: opts.Now}
		group.Add(1)
		go func() {
			defer group.Done()
			err := s.Run(sctx, deps)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				failed[s.Name] = err
				mu.Unlock()
				cancel(fmt.Errorf("service %s: %w", s.Name, err))
			}
		}()
	}

	if cfg.HTTP.Listen != "" {
		_, err := service.ServeHTTP(ctx, cfg.HTTP.Listen, reg, func() error {
			if keeper.Conn().Status() != nats.CONNECTED {
				return fmt.Errorf("NATS connection %s", keeper.Conn().Status())
			}
			mu.Lock()
			defer mu.Unlock()
			for name, err := range failed {
				return fmt.Errorf("service %s failed: %w", name, err)
			}
			return nil
		}, api.Routes(cfg, keeper, opts.Now), log)
		if err != nil {
			cancel(err)
		}
	}
	if ctx.Err() == nil {
		log.Info("site running", "site", cfg.Site.Name, "peer", cfg.Site.Peer, "services", len(opts.Services))
		if opts.Ready != nil {
			opts.Ready(url)
		}
	}
	<-ctx.Done()
	wg.Wait()
	stopLast()
	lastWG.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}
