// Package dbmonitor watches MariaDB/MySQL and PostgreSQL replication of a
// site, repairs what it can, reports what it cannot, and executes the
// orchestrator's promote, demote, repoint, position and resync commands.
package dbmonitor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/monitor"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pghost"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// Run watches the enabled databases until ctx ends.
func Run(ctx context.Context, deps service.Deps) error {
	cfg := deps.Config
	if !cfg.MySQL.Enabled && !cfg.PgSQL.Enabled {
		// A site without databases (files and services only) is a valid
		// pair; the service idles so the site process stays whole.
		deps.Log.Warn("dbmonitor: neither mysql.enabled nor pgsql.enabled is true: no database is watched")
		<-ctx.Done()
		return nil
	}
	log := deps.Log.With("component", "dbmonitor")
	roles, err := service.WatchRole(ctx, deps, "dbmonitor-role")
	if err != nil {
		return err
	}
	targets := map[events.Database]monitor.Target{}
	g, gctx := errgroup.WithContext(ctx)
	if cfg.MySQL.Enabled {
		t, err := newMySQL(cfg)
		if err != nil {
			return err
		}
		defer t.Local.Close()
		targets[events.MySQL] = t
		m := &monitor.Monitor{Target: t, Interval: cfg.MySQL.CheckInterval.D(), Bus: deps.Bus, Roles: roles,
			Log: log.With("database", "mysql"), Now: deps.Now, Limits: watch.Limits{
				RepairAttempts: cfg.MySQL.RepairAttempts, BackOff: cfg.MySQL.CheckInterval.D(),
				LagSeconds: cfg.MySQL.LagThreshold.D().Seconds(), AutoResync: cfg.MySQL.AutoResync,
			}}
		g.Go(func() error { return m.Run(gctx) })
	}
	if cfg.PgSQL.Enabled {
		t, err := newPgSQL(ctx, cfg, log.With("database", "pgsql"), deps.Now)
		if err != nil {
			return err
		}
		defer t.Close()
		targets[events.PgSQL] = t
		m := &monitor.Monitor{Target: t, Interval: cfg.PgSQL.CheckInterval.D(), Bus: deps.Bus, Roles: roles,
			Log: log.With("database", "pgsql"), Now: deps.Now, Limits: watch.Limits{
				RepairAttempts: cfg.PgSQL.RepairAttempts, BackOff: cfg.PgSQL.CheckInterval.D(),
				LagSeconds: cfg.PgSQL.LagThreshold.D().Seconds(), LagBytes: cfg.PgSQL.LagThresholdBytes,
				AutoResync: cfg.PgSQL.AutoResync,
			}}
		g.Go(func() error { return m.Run(gctx) })
	}
	site := events.SiteID(cfg.Site.Name)
	_, h := events.Handle(func(ctx context.Context, env *events.Envelope, cmd events.DatabaseCommand) error {
		if cmd.Target != site {
			return nil
		}
		t, ok := targets[cmd.Database]
		if !ok {
			_, err := deps.Bus.Publish(ctx, &events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database,
				FailoverID: cmd.FailoverID, Error: fmt.Sprintf("%s is not enabled on site %s", cmd.Database, site)}, env)
			return err
		}
		return monitor.HandleCommand(ctx, t, deps.Bus, log, env, cmd)
	})
	g.Go(func() error {
		return deps.Bus.Consume(gctx, bus.ConsumerSpec{
			Durable:    "dbmonitor-commands",
			Filters:    []string{events.TypeFilter("DatabaseCommand")},
			Handler:    h,
			DeliverNew: true,
			AckWait:    15 * time.Minute,
		})
	})
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func newMySQL(cfg *config.Config) (*monitor.MySQL, error) {
	local, err := mysqlrepl.Open(cfg.MySQL.DSN.Value())
	if err != nil {
		return nil, fmt.Errorf("mysql.dsn: %w", err)
	}
	t := &monitor.MySQL{Local: local, ReplUser: cfg.MySQL.ReplicationUser, ReplPassword: cfg.MySQL.ReplicationPassword.Value(),
		PeerHosts: peerHosts(cfg.MySQL.PeerVIP, cfg.MySQL.PeerNodes),
		TLS:       mysqlrepl.TLSFiles{CA: cfg.MySQL.TLS.CA, Cert: cfg.MySQL.TLS.Cert, Key: cfg.MySQL.TLS.Key}}
	if cfg.MySQL.PeerDSN.IsSet() {
		if t.Peer, err = mysqlrepl.Open(cfg.MySQL.PeerDSN.Value()); err != nil {
			local.Close()
			return nil, fmt.Errorf("mysql.peerDsn: %w", err)
		}
	}
	return t, nil
}

func newPgSQL(ctx context.Context, cfg *config.Config, log *slog.Logger, now func() time.Time) (*monitor.PgSQL, error) {
	local, err := pgrepl.Open(ctx, cfg.PgSQL.DSN.Value())
	if err != nil {
		return nil, fmt.Errorf("pgsql.dsn: %w", err)
	}
	t := &monitor.PgSQL{Local: local, ReplUser: cfg.PgSQL.ReplicationUser, ReplPassword: cfg.PgSQL.ReplicationPassword.Value(),
		PeerHosts: peerHosts(cfg.PgSQL.PeerFmpmVIP, cfg.PgSQL.PeerNodes),
		TLS:       monitor.PgTLS{CA: cfg.PgSQL.TLS.CA, Cert: cfg.PgSQL.TLS.Cert, Key: cfg.PgSQL.TLS.Key},
		Log:       log, Now: now}
	if cfg.PgSQL.DataDir != "" {
		// The server is on this host: resync and the return of a former
		// primary to standby run here instead of being left to an operator.
		t.Host = &pghost.Host{DataDir: cfg.PgSQL.DataDir, BinDir: cfg.PgSQL.BinDir, OSUser: cfg.PgSQL.OSUser, Log: log}
	}
	if cfg.PgSQL.PeerDSN.IsSet() {
		if t.Peer, err = pgrepl.Open(ctx, cfg.PgSQL.PeerDSN.Value()); err != nil {
			local.Close()
			return nil, fmt.Errorf("pgsql.peerDsn: %w", err)
		}
	}
	return t, nil
}

func peerHosts(vip string, nodes config.List) []string {
	var out []string
	if vip != "" {
		out = append(out, strings.Split(vip, "/")[0])
	}
	return append(out, nodes...)
}
