// Package arbiter is drwatch's device arbitration service (seed 000): when
// the heartbeat has lost the peer it decides, from what the arbiters say,
// whether this site must become active, become standby or stay as it is —
// or asks the operator's custom failure-detection script — and publishes
// the verdict with every number behind it. It also warns when too few
// arbiters answer, and, while this site is active, holds the SSH sessions
// by which the standby recognises the arbiters it manages.
package arbiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/arbiter/internal/probe"
	"github.com/drwatch/drwatch/services/arbiter/internal/script"
	"github.com/drwatch/drwatch/services/arbiter/internal/verdict"
	"github.com/drwatch/drwatch/services/arbiter/internal/watchdog"
)

// Consumer names in the site's log.
const (
	roleConsumer  = "arbiter-role"
	watchConsumer = "arbiter-watch"
)

// addressesField names Options.Addresses in errors.
const addressesField = "site.addresses"

// Options are the service's settings, taken from the site configuration.
type Options struct {
	Site, Peer events.SiteID
	// Interval is watchdog.heartbeat.interval: arbitration and the
	// arbiter-warning check run once per heartbeat interval.
	Interval         time.Duration
	FailureDetection config.FailureDetection
	PeerAddresses    []string
	// Addresses are this site's source addresses as arbiters list them,
	// i.e. what the peer has in its site.peerAddresses. The active site
	// counts an arbiter only when its session list names the managing
	// session by one of them; empty, by the address the session leaves
	// from (right unless NAT lies between the site and its arbiters).
	Addresses []string
	// Automatic is failover.automatic, until an AutomaticFailoverChanged
	// says otherwise.
	Automatic bool
	// Lines are the heartbeat lines that must all report the peer
	// unreachable before arbitration starts.
	Lines []string
	// Dialer pins SSH source addresses (tests); zero in production.
	Dialer probe.Dialer
	// ConfirmTimeout is how long an active role read from the log waits
	// for the orchestrator to confirm it (RoleConfirmed, RoleChanged)
	// before the managing sessions are held anyway; 0 holds them at once.
	// It outlasts the orchestrator's startup hold and the claim that may
	// end it (config.Timing).
	ConfirmTimeout time.Duration
}

// OptionsFromConfig reads the service's settings from cfg.
func OptionsFromConfig(cfg *config.Config) Options {
	return Options{
		Site:             events.SiteID(cfg.Site.Name),
		Peer:             events.SiteID(cfg.Site.Peer),
		Interval:         cfg.Watchdog.Heartbeat.Interval.D(),
		FailureDetection: cfg.Watchdog.FailureDetection,
		PeerAddresses:    cfg.Site.PeerAddresses,
		Addresses:        cfg.Site.Addresses,
		Automatic:        cfg.Failover.Automatic,
		Lines:            cfg.HeartbeatLineNames(),
		ConfirmTimeout:   cfg.Timing().ConfirmTimeout,
	}
}

func (o Options) validate() error {
	var errs []error
	fd := o.FailureDetection
	if o.Peer == "" {
		errs = append(errs, errors.New("site.peer: is required: arbitration decides about the peer site"))
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("watchdog.heartbeat.interval: %s must be positive", o.Interval))
	}
	if fd.ProbeTimeout.D() <= 0 {
		errs = append(errs, fmt.Errorf("watchdog.failureDetection.probeTimeout: %s must be positive", fd.ProbeTimeout.D()))
	}
	if fd.ArbiterProbe != "icmp" && fd.ArbiterProbe != "tcp" {
		errs = append(errs, fmt.Errorf("watchdog.failureDetection.arbiterProbe: %q must be icmp or tcp", fd.ArbiterProbe))
	}
	if fd.IsCustom {
		if fd.Script == "" {
			errs = append(errs, errors.New("watchdog.failureDetection.script: is required when isCustom is true"))
		}
		if fd.ScriptTimeout.D() <= 0 {
			errs = append(errs, errors.New("watchdog.failureDetection.scriptTimeout: must be positive"))
		}
	} else {
		if strings.TrimSpace(fd.SessionCommand) == "" {
			errs = append(errs, errors.New("watchdog.failureDetection.sessionCommand: is required (default \"who\")"))
		}
		if len(fd.Arbiters) > 0 && len(o.PeerAddresses) == 0 {
			errs = append(errs, errors.New("site.peerAddresses: is required with arbiters: the standby counts arbiters listing sessions from these addresses"))
		}
	}
	if _, err := probe.ParsePeerSet(o.PeerAddresses); err != nil {
		errs = append(errs, err)
	}
	if _, err := probe.ParseAddressSet(addressesField, "this site's", o.Addresses); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// build loads keys and known_hosts files and returns the loop's settings.
func (o Options) build(cfg *config.Config) (watchdog.Config, error) {
	fd := o.FailureDetection
	peers, err := probe.ParsePeerSet(o.PeerAddresses)
	if err != nil {
		return watchdog.Config{}, err
	}
	own, err := probe.ParseAddressSet(addressesField, "this site's", o.Addresses)
	if err != nil {
		return watchdog.Config{}, err
	}
	wc := watchdog.Config{
		Interval:       o.Interval,
		ProbeTimeout:   fd.ProbeTimeout.D(),
		WaitDuration:   fd.WaitDuration.D(),
		Thresholds:     verdict.Thresholds{Failover: fd.Threshold.Failover, AdjustManaged: fd.Threshold.AdjustManaged, Warning: fd.Threshold.Warning},
		ArbiterProbe:   fd.ArbiterProbe,
		SessionCommand: fd.SessionCommand,
		Peers:          peers,
		Own:            own,
		Dialer:         o.Dialer,
		ConfirmTimeout: o.ConfirmTimeout,
		Automatic:      o.Automatic,
		ConfigJSON: func(role events.Role) ([]byte, error) {
			sections, err := cfg.APISections(config.Runtime{Role: string(role)})
			if err != nil {
				return nil, err
			}
			return json.Marshal(sections)
		},
	}
	if fd.IsCustom {
		wc.Script = script.Runner{Path: fd.Script, Timeout: fd.ScriptTimeout.D()}
	}
	var errs []error
	for i, a := range fd.Arbiters {
		port := a.Port
		if port == 0 {
			port = 22
		}
		arb := watchdog.Arbiter{Host: a.Host, Port: port}
		if !fd.IsCustom {
			t, err := probe.NewSSHTarget(probe.SSHTargetOptions{
				Host: a.Host, Port: port, Username: a.Username, Password: a.Password.Value(),
				PrivateKey: a.PrivateKey, KnownHosts: a.KnownHosts,
				Field: fmt.Sprintf("watchdog.failureDetection.arbiters[%d]", i),
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			arb.SSH = t
		}
		wc.Arbiters = append(wc.Arbiters, arb)
	}
	return wc, errors.Join(errs...)
}

// Run is the arbiter service.
func Run(ctx context.Context, deps service.Deps) error {
	return RunWith(ctx, deps, OptionsFromConfig(deps.Config))
}

// RunWith runs the service with explicit options (tests pin the SSH source
// address through them).
func RunWith(ctx context.Context, deps service.Deps, opts Options) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("arbiter: %w", err)
	}
	wc, err := opts.build(deps.Config)
	if err != nil {
		return fmt.Errorf("arbiter: %w", err)
	}
	log := deps.Log.With("component", "arbiter")
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	var pinger watchdog.Pinger
	if wc.ArbiterProbe == "icmp" && len(wc.Arbiters) > 0 {
		p, err := probe.NewPinger(ctx)
		if err != nil {
			return fmt.Errorf("arbiter: watchdog.failureDetection.arbiterProbe icmp: %w", err)
		}
		pinger = p
	}
	roles, err := service.WatchRole(ctx, deps, roleConsumer)
	if err != nil {
		return fmt.Errorf("arbiter: %w", err)
	}
	state := pair.New(opts.Site, opts.Peer, "", opts.Lines)
	w := watchdog.New(wc, state, deps.Bus, roles, pinger, log, now)

	// The state is rebuilt from the whole log, then followed from where
	// the replay ended: the durable's old position is meaningless after a
	// replay, so it is dropped and made again.
	// The arbiter folds what the orchestrator folds (pair.Types), both
	// sites' events: the same projection judges the same facts.
	filters := make([]string, 0, len(pair.Types))
	for _, t := range pair.Types {
		filters = append(filters, events.TypeFilter(t))
	}
	apply := func(env *events.Envelope) error {
		if err := w.Apply(ctx, env); err != nil {
			log.Warn("event ignored", "id", env.ID, "type", env.Type, "err", err)
		}
		return nil
	}
	last, err := deps.Bus.Replay(ctx, 0, filters, func(_ uint64, env *events.Envelope) error { return apply(env) })
	if err != nil {
		return fmt.Errorf("arbiter: replay: %w", err)
	}
	if err := deps.Bus.JetStream().DeleteConsumer(ctx, bus.EventsStream, watchConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("arbiter: reset consumer %s: %w", watchConsumer, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumeErr := make(chan error, 1)
	wg.Go(func() {
		consumeErr <- deps.Bus.Consume(cctx, bus.ConsumerSpec{
			Durable:  watchConsumer,
			Filters:  filters,
			StartSeq: last + 1,
			Handler:  func(_ context.Context, env *events.Envelope) error { return apply(env) },
		})
	})
	log.Info("arbiter started", "arbiters", len(wc.Arbiters), "probe", wc.ArbiterProbe, "custom", wc.Script.Path != "")
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- w.Run(cctx) })
	select {
	case err := <-runErr:
		cancel()
		return err
	case err := <-consumeErr:
		cancel()
		<-runErr
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("arbiter: follow the log: %w", err)
	}
}
