package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
)

// errReload ends a site run so that it starts again on an updated file.
var errReload = errors.New("configuration updated")

// runCmd runs the site until ctx ends. When `toolkit config update`
// records a file different from the one running, the whole site (services
// and embedded server) stops and starts again on it: every service
// rebuilds its state from the log, so a restart is the one way to apply a
// configuration.
func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	cfgPath := configFlag(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	only := fs.String("services", "", "comma-separated services to run (default: all), e.g. to run the orchestrator in a process of its own")
	if err := parse(fs, args); err != nil {
		return err
	}
	services, err := selectServices(*only)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log, err := service.NewLogger(stderr, *level)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	path, err := filepath.Abs(*cfgPath)
	if err != nil {
		return err
	}
	for {
		cfg, sum, err := loadHashed(path)
		if err != nil {
			return err
		}
		slog := log.With("site", cfg.Site.Name)
		runCtx, cancel := context.WithCancelCause(ctx)
		var wg sync.WaitGroup
		err = site.Run(runCtx, site.Options{Config: cfg, Services: services, Log: slog, Ready: func(url string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				watchConfig(runCtx, cfg, url, path, sum, slog, cancel)
			}()
		}})
		cancel(nil)
		wg.Wait()
		if errors.Is(err, errReload) && ctx.Err() == nil {
			slog.Info("restarting the site on the updated configuration", "path", path)
			continue
		}
		return err
	}
}

// watchConfig follows this site's ConfigUpdated events and ends the run
// with errReload when one names a valid file other than the running one.
// An update whose file no longer matches, or no longer validates, is
// logged and the site keeps running as it is.
func watchConfig(ctx context.Context, cfg *config.Config, url, path, running string, log *slog.Logger, reload context.CancelCauseFunc) {
	opts, err := service.Credentials(cfg, bus.IdentitySite)
	if err != nil {
		log.Error("config watch: connect", "err", err)
		return
	}
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))...)
	if err != nil {
		log.Error("config watch: connect", "err", err)
		return
	}
	defer nc.Close()
	b, err := bus.New(nc, bus.Options{Source: events.Source{Site: events.SiteID(cfg.Site.Name), Node: cfg.Site.Node, Service: "site"}, Logger: log})
	if err != nil {
		log.Error("config watch", "err", err)
		return
	}
	// Updates recorded before this run are history: the file loaded at
	// start already reflects them.
	last, err := (&client{nc: nc, bus: b}).lastSeq(ctx)
	if err != nil {
		log.Error("config watch: log position", "err", err)
		return
	}
	filter := []string{events.SiteTypeFilter(events.SiteID(cfg.Site.Name), "ConfigUpdated")}
	err = b.Follow(ctx, last+1, filter, func(_ uint64, env *events.Envelope) {
		ev, err := events.DecodeInto[events.ConfigUpdated](env)
		if err != nil || ev.SHA256 == running {
			return
		}
		if ev.Path != path {
			log.Warn("configuration update names another file; not reloading", "updated", ev.Path, "running", path)
			return
		}
		_, sum, err := loadHashed(path)
		switch {
		case err != nil:
			log.Error("configuration update recorded but the file no longer validates; keeping the running configuration", "err", err)
		case sum != ev.SHA256:
			log.Warn("the file changed again after the update was recorded; run `drwatch toolkit config update` again", "recorded", ev.SHA256, "file", sum)
		default:
			log.Info("configuration update recorded", "by", ev.By, "changed", ev.Changed, "sha256", sum)
			reload(errReload)
		}
	})
	if err != nil && ctx.Err() == nil {
		log.Error("config watch stopped", "err", err)
	}
}
