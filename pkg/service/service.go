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

// Credentials are the connect options that authenticate identity (a
// service's name, bus.IdentitySite or bus.IdentityCLI) to the site's NATS:
// nats.credsFile for an external server, else the identity's seed in the
// embedded server's keys directory. Every client of a site connects
// through it.
func Credentials(cfg *config.Config, identity string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name("drwatch-" + cfg.Site.Name + "-" + identity)}
	switch {
	case cfg.NATS.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.NATS.CredsFile))
	case cfg.NATS.URL == "":
		auth, err := bus.ClientAuth(cfg.NATS.Embedded.Keys(), identity)
		if err != nil {
			return nil, fmt.Errorf("nats.embedded.keysDir: %w (the site process creates the keys on its first start)", err)
		}
		opts = append(opts, auth)
	}
	return opts, nil
}

// streamsWait bounds how long a service waits for the site process to
// create the streams.
const streamsWait = 30 * time.Second

// Connect dials the site's NATS and returns a bus for service with the
// site's streams in place. On the embedded server only the site identity
// may create them, so a service waits for them instead; on an external
// server (nats.url) every service ensures them. The connection is closed
// when ctx ends.
func Connect(ctx context.Context, cfg *config.Config, url, service string, log *slog.Logger, metrics *bus.Metrics, tp trace.TracerProvider) (*bus.Bus, error) {
	opts, err := Credentials(cfg, service)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
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
	if service == bus.IdentitySite || cfg.NATS.URL != "" {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := b.EnsureStreams(ectx); err != nil {
			nc.Close()
			return nil, err
		}
		return b, nil
	}
	if err := waitStreams(ctx, b); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// waitStreams waits until the site's log exists.
func waitStreams(ctx context.Context, b *bus.Bus) error {
	ctx, cancel := context.WithTimeout(ctx, streamsWait)
	defer cancel()
	for {
		_, err := b.JetStream().Stream(ctx, bus.EventsStream)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s: %w (the site process, drwatch run, creates it)", bus.EventsStream, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
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
