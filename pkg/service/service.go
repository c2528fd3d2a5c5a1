// Package service gives every drwatch service the same frame: the site
// configuration, a bus on the site's NATS, a logger, metrics, tracing and
// the clock, and a Main that runs one service alone against a NATS URL.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// Deps is what a service's Run receives besides its own options.
type Deps struct {
	Config  *config.Config
	Bus     *bus.Bus
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Tracer  trace.TracerProvider
	// Now is the clock; services never call time.Now directly.
	Now func() time.Time
}

// RunFunc is a service's entry point.
type RunFunc func(ctx context.Context, deps Deps) error

// Connect dials the site's NATS and returns a bus for service with the
// site's streams in place. The connection is closed when ctx ends.
func Connect(ctx context.Context, cfg *config.Config, url, service string, log *slog.Logger, metrics *bus.Metrics, tp trace.TracerProvider) (*bus.Bus, error) {
	opts := []nats.Option{
		nats.Name("drwatch-" + cfg.Site.Name + "-" + service),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if cfg.NATS.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATS.CredsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	context.AfterFunc(ctx, nc.Close)
	b, err := bus.New(nc, bus.Options{
		Source:         events.Source{Site: events.SiteID(cfg.Site.Name), Node: cfg.Site.Node, Service: service},
		Peer:           events.SiteID(cfg.Site.Peer),
		Logger:         log,
		TracerProvider: tp,
		Metrics:        metrics,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.EnsureStreams(ectx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// Main runs one service alone: it reads -config and -nats from args,
// connects, serves /healthz and /metrics on -http, and runs run until ctx
// ends. It is what each service's main calls.
func Main(ctx context.Context, name string, args []string, stderr io.Writer, run RunFunc) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/drwatch/site.yaml", "site configuration file")
	url := fs.String("nats", "", "NATS URL (default: nats.url of the config, else the embedded server's address)")
	httpAddr := fs.String("http", "", "address for /healthz and /metrics (empty: none)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *url == "" {
		*url = cfg.NATS.URL
	}
	if *url == "" {
		*url = fmt.Sprintf("nats://%s:%d", cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port)
	}
	log = log.With("site", cfg.Site.Name, "service", name)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tp, shutdownTracing, err := Tracing(ctx, cfg.Telemetry, name)
	if err != nil {
		return err
	}
	defer shutdownTracing()
	b, err := Connect(ctx, cfg, *url, name, log, bus.NewMetrics(reg), tp)
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		stopHTTP, err := ServeHTTP(ctx, *httpAddr, reg, func() error {
			if b.Conn().Status() != nats.CONNECTED {
				return fmt.Errorf("NATS connection %s", b.Conn().Status())
			}
			return nil
		}, nil, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	log.Info("service started", "nats", *url)
	err = run(ctx, Deps{Config: cfg, Bus: b, Log: log, Metrics: reg, Tracer: tp, Now: time.Now})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("service stopped", "err", err)
	return err
}

// NewLogger returns a JSON slog logger at level.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// ServeHTTP serves /healthz (200 when healthy returns nil), /metrics and
// any extra handlers on addr until ctx ends or the returned stop is called.
func ServeHTTP(ctx context.Context, addr string, reg *prometheus.Registry, healthy func() error, extra map[string]http.Handler, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	context.AfterFunc(ctx, stop)
	return stop, nil
}
