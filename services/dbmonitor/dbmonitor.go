// Package dbmonitor watches MariaDB/MySQL and PostgreSQL replication of a
// site, repairs what it can, reports what it cannot, and executes the
// orchestrator's promote, demote, repoint, position and resync commands.
package dbmonitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// Options are the dbmonitor settings not in the site config.
type Options struct {
	// CommandMaxAge bounds how old (envelope time against the injected
	// clock) a DatabaseCommand may be when it is taken from the log. An
	// older one is answered OK=false "expired: …" and not executed: the
	// orchestrator that sent it waited DBTimeout (2 m) for the answer and
	// has aborted by then, so promoting on it would act on an order nobody
	// stands behind any more. Keep it at or under the orchestrator's
	// DBTimeout.
	CommandMaxAge time.Duration
	// PromoteApplyTimeout bounds how long a MariaDB promote waits for the
	// replica's SQL thread to apply what it received before RESET SLAVE
	// ALL would discard it; past it the promote is refused (unless the
	// command says force). It must leave the orchestrator, which waits
	// DBTimeout (2 m) for the answer, time to hear it: under CommandMaxAge.
	PromoteApplyTimeout time.Duration
}

// DefaultOptions matches the orchestrator's default DBTimeout.
func DefaultOptions() Options {
	return Options{CommandMaxAge: 2 * time.Minute, PromoteApplyTimeout: monitor.DefaultApplyTimeout}
}

func (o Options) validate() error {
	def := DefaultOptions()
	if o.CommandMaxAge <= 0 {
		return fmt.Errorf("dbmonitor option CommandMaxAge %s must be positive (default %s)", o.CommandMaxAge, def.CommandMaxAge)
	}
	if o.PromoteApplyTimeout <= 0 || o.PromoteApplyTimeout >= o.CommandMaxAge {
		return fmt.Errorf("dbmonitor option PromoteApplyTimeout %s must be positive and under CommandMaxAge %s, or the orchestrator stops waiting before the promote answers (default %s)",
			o.PromoteApplyTimeout, o.CommandMaxAge, def.PromoteApplyTimeout)
	}
	return nil
}

// Run watches the enabled databases until ctx ends, with DefaultOptions.
func Run(ctx context.Context, deps service.Deps) error {
	return RunWithOptions(ctx, deps, DefaultOptions())
}

// RunWithOptions is Run with explicit Options.
func RunWithOptions(ctx context.Context, deps service.Deps, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
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
		t, err := newMySQL(cfg, log.With("database", "mysql"))
		if err != nil {
			return err
		}
		t.ApplyTimeout = opts.PromoteApplyTimeout
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
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	_, h := events.Handle(func(ctx context.Context, env *events.Envelope, cmd events.DatabaseCommand) error {
		if cmd.Target != site {
			return nil // another site's dbmonitor answers it; acked here
		}
		// Only this site's orchestrator (a failover step) and operator
		// (drwatch db) command its databases; the bus has checked that the
		// envelope's site and service are the subject's, which the NATS
		// permissions give to those identities alone.
		if env.Site != site || !commandIssuers[env.Service] {
			log.Warn("database command from an unexpected publisher ignored", "command", cmd.Command, "database", cmd.Database,
				"id", env.ID, "publisherSite", env.Site, "publisherService", env.Service)
			return nil
		}
		answer := func(err error) error {
			_, perr := deps.Bus.Publish(ctx, &events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database,
				FailoverID: cmd.FailoverID, FollowEpoch: cmd.FollowEpoch, Error: err.Error()}, env)
			return perr
		}
		if age := now().Sub(env.Time); age > opts.CommandMaxAge {
			log.Warn("database command expired; not executed", "command", cmd.Command, "database", cmd.Database,
				"id", env.ID, "issued", env.Time, "age", age.Round(time.Second))
			return answer(fmt.Errorf("expired: %s %s issued at %s is %s old, more than the %s a command stays valid (dbmonitor was down or busy); not executed, send it again",
				cmd.Command, cmd.Database, env.Time.UTC().Format(time.RFC3339), age.Round(time.Second), opts.CommandMaxAge))
		}
		t, ok := targets[cmd.Database]
		if !ok {
			return answer(fmt.Errorf("%s is not enabled on site %s", cmd.Database, site))
		}
		role, _ := roles.Current()
		if err := monitor.GuardResync(cmd, site, role); err != nil {
			log.Warn("database command refused", "command", cmd.Command, "database", cmd.Database, "err", err)
			return answer(err)
		}
		return monitor.HandleCommand(ctx, t, deps.Bus, log, env, cmd)
	})
	spec := bus.ConsumerSpec{
		Durable:    CommandsConsumer,
		Filters:    []string{events.TypeFilter("DatabaseCommand")},
		Handler:    h,
		DeliverNew: true,
		// A resync may run for many minutes; redelivery during it
		// would run a second copy. A delivery the previous run left
		// unacked is taken back at start (resumeCommands), not after
		// AckWait.
		AckWait: 15 * time.Minute,
	}
	g.Go(func() error {
		if err := resumeCommands(gctx, deps.Bus.JetStream(), &spec, log); err != nil {
			return err
		}
		// Durable: the server keeps the position across restarts, so a
		// command published while dbmonitor is down or restarting is
		// delivered when it is back (then judged by CommandMaxAge).
		// DeliverNew only applies when the consumer is first created: a
		// new install does not replay the log's old commands. The bus
		// acks a message only after the handler returned nil, i.e. after
		// the answer is stored; a failed answer is redelivered.
		return deps.Bus.Consume(gctx, spec)
	})
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// commandIssuers are the services whose DatabaseCommand dbmonitor executes.
var commandIssuers = map[string]bool{"orchestrator": true, "cli": true}

// CommandsConsumer is the durable consumer of DatabaseCommand events.
const CommandsConsumer = "dbmonitor-commands"

// resumeCommands prepares the commands consumer for this run. The server
// keeps a durable consumer's position, but not always its in-flight
// delivery: a message handed to the previous run and never acked — it
// died mid-command, or the server gave the message to a pull request the
// stopped run had just issued (with leafnodes on, a request without
// interest is still served for 2 s) — would come back only after AckWait,
// long after the orchestrator gave up. So when the consumer has a delivery
// pending at start, it is recreated from its ack floor and that command is
// handled now (again, if it had started: at least once; CommandMaxAge
// still applies). Its start sequence is then kept on later starts, as a
// consumer's deliver policy cannot be updated.
func resumeCommands(ctx context.Context, js jetstream.JetStream, spec *bus.ConsumerSpec, log *slog.Logger) error {
	c, err := js.Consumer(ctx, bus.EventsStream, spec.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil // first start: DeliverNew
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", spec.Durable, err)
	}
	if info.Config.DeliverPolicy == jetstream.DeliverByStartSequencePolicy {
		spec.StartSeq = info.Config.OptStartSeq
	}
	if info.NumAckPending == 0 {
		return nil
	}
	from := info.AckFloor.Stream + 1
	log.Warn("a database command delivered before this start was never acknowledged; taking it again now",
		"consumer", spec.Durable, "fromSeq", from, "unacked", info.NumAckPending)
	if err := js.DeleteConsumer(ctx, bus.EventsStream, spec.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s: recreate from %d: %w", spec.Durable, from, err)
	}
	spec.StartSeq = from
	return nil
}

func newMySQL(cfg *config.Config, log *slog.Logger) (*monitor.MySQL, error) {
	local, err := mysqlrepl.Open(cfg.MySQL.DSN.Value())
	if err != nil {
		return nil, fmt.Errorf("mysql.dsn: %w", err)
	}
	t := &monitor.MySQL{Local: local, ReplUser: cfg.MySQL.ReplicationUser, ReplPassword: cfg.MySQL.ReplicationPassword.Value(),
		PeerHosts: peerHosts(cfg.MySQL.PeerVIP, cfg.MySQL.PeerNodes), KeepDir: cfg.MySQL.KeepDir, Log: log,
		TLS: mysqlrepl.TLSFiles{CA: cfg.MySQL.TLS.CA, Cert: cfg.MySQL.TLS.Cert, Key: cfg.MySQL.TLS.Key}}
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
		TLS:       pgrepl.TLSFiles{CA: cfg.PgSQL.TLS.CA, Cert: cfg.PgSQL.TLS.Cert, Key: cfg.PgSQL.TLS.Key},
		Log:       log, Now: now}
	if cfg.PgSQL.DataDir != "" {
		// The server is on this host: resync and the return of a former
		// primary to standby run here instead of being left to an operator.
		t.Host = &pghost.Host{DataDir: cfg.PgSQL.DataDir, BinDir: cfg.PgSQL.BinDir, OSUser: cfg.PgSQL.OSUser, Log: log}
	}
	if cfg.PgSQL.PeerDSN.IsSet() {
		if err := verifiedPeer(cfg.PgSQL.PeerDSN.Value(), cfg.PgSQL.TLS.CA); err != nil {
			local.Close()
			return nil, err
		}
		if t.Peer, err = pgrepl.Open(ctx, cfg.PgSQL.PeerDSN.Value()); err != nil {
			local.Close()
			return nil, fmt.Errorf("pgsql.peerDsn: %w", err)
		}
	}
	return t, nil
}

// verifiedPeer refuses a pgsql.peerDsn that would not check the peer's
// certificate while pgsql.tls.ca says the pair uses TLS: the peer is on
// the other site, and the DSN carries a superuser's password.
func verifiedPeer(dsn, ca string) error {
	if ca == "" {
		return nil
	}
	for _, mode := range []string{"sslmode=verify-full", "sslmode=verify-ca"} {
		if strings.Contains(dsn, mode) {
			return nil
		}
	}
	return fmt.Errorf("pgsql.peerDsn: sslmode must be verify-full (or verify-ca) while pgsql.tls.ca is set, so the peer's certificate is checked: add sslmode=verify-full&sslrootcert=%s (URL form) or sslmode=verify-full sslrootcert=%s", ca, ca)
}

func peerHosts(vip string, nodes config.List) []string {
	var out []string
	if vip != "" {
		out = append(out, strings.Split(vip, "/")[0])
	}
	return append(out, nodes...)
}
