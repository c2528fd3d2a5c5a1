// Package heartbeat is drwatch's failure-detection front line: it probes the
// peer site along one or more heartbeat lines (seed 000's watchdog heartbeat,
// seed 004's several lines) and runs this site's local monitors (seed 004),
// publishing what it finds as events.
package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/pkg/ping"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/heartbeat/internal/line"
	"github.com/drwatch/drwatch/services/heartbeat/internal/monitor"
	"github.com/drwatch/drwatch/services/heartbeat/internal/probe"
)

// DefaultLine names the line built from core.peerVip and
// core.peerLoadBalancerNodes.
const DefaultLine = config.DefaultHeartbeatLine

// roleConsumer is the durable consumer following this site's role.
const roleConsumer = "heartbeat-role"

// LineOptions is one heartbeat line and how it probes.
type LineOptions struct {
	line.Config
	// Port is the TCP port when Kind is tcp.
	Port int
}

// Options is what the heartbeat service runs.
type Options struct {
	Site  events.SiteID
	Peer  events.SiteID
	Lines []LineOptions
	// ICMPMode forces one kind of ICMP socket; empty tries both.
	ICMPMode ping.Mode
	Monitors []monitor.Config
	// Host is where monitors find /proc, systemctl and docker.
	Host monitor.Host
	// PublishRetry is the pause between attempts to publish an event the
	// bus refused (default 1s).
	PublishRetry time.Duration
}

// OptionsFromConfig builds the service's options from the site
// configuration.
func OptionsFromConfig(cfg *config.Config) Options {
	hb := cfg.Watchdog.Heartbeat
	o := Options{
		Site:         events.SiteID(cfg.Site.Name),
		Peer:         events.SiteID(cfg.Site.Peer),
		PublishRetry: time.Second,
	}
	base := line.Config{
		Peer:     o.Peer,
		Kind:     hb.Probe,
		Interval: hb.Interval.D(),
		Timeout:  hb.Timeout.D(),
		Retries:  hb.Retries,
	}
	if cfg.Core.PeerVIP != "" || len(cfg.Core.PeerLoadBalancerNodes) > 0 {
		l := base
		l.Name, l.VIP, l.Nodes = DefaultLine, cfg.Core.PeerVIP, cfg.Core.PeerLoadBalancerNodes
		o.Lines = append(o.Lines, LineOptions{Config: l, Port: hb.Port})
	}
	for _, hl := range hb.Lines {
		if hl.Disable {
			continue
		}
		l := base
		l.Name, l.VIP, l.Nodes = hl.Name, hl.VIP, hl.Nodes
		port := hb.Port
		if hl.Probe != "" {
			l.Kind = hl.Probe
		}
		if hl.Port != 0 {
			port = hl.Port
		}
		o.Lines = append(o.Lines, LineOptions{Config: l, Port: port})
	}
	for _, m := range cfg.Watchdog.Monitors {
		o.Monitors = append(o.Monitors, monitor.Config{
			Spec:       monitor.Spec{Name: m.Name, Kind: m.Kind, MaxFailures: m.MaxFailures, LogOnly: m.LogOnly, Scope: m.Scope},
			Target:     m.Target,
			Threshold:  m.Threshold,
			Interval:   m.Interval.D(),
			ResultFile: m.ResultFile,
		})
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if !events.ValidSiteName(string(o.Peer)) {
		errs = append(errs, fmt.Errorf("site.peer: %q is not a valid site name", o.Peer))
	}
	names := map[string]bool{}
	for _, l := range o.Lines {
		if names[l.Name] {
			errs = append(errs, fmt.Errorf("watchdog.heartbeat.lines: line name %q is used twice (%q is the core.peerVip line)", l.Name, DefaultLine))
		}
		names[l.Name] = true
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("watchdog.heartbeat: %w", err))
		}
		if l.Kind == "tcp" && (l.Port < 1 || l.Port > 65535) {
			errs = append(errs, fmt.Errorf("watchdog.heartbeat: line %q: port %d must be 1-65535 for a tcp probe", l.Name, l.Port))
		}
	}
	mnames := map[string]bool{}
	for i, m := range o.Monitors {
		f := fmt.Sprintf("watchdog.monitors[%d]", i)
		if m.Name == "" || mnames[m.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q must be set and unique", f, m.Name))
		}
		mnames[m.Name] = true
		if m.Interval <= 0 || m.MaxFailures < 1 {
			errs = append(errs, fmt.Errorf("%s: interval %s must be positive and maxFailures %d at least 1", f, m.Interval, m.MaxFailures))
		}
		if _, err := monitor.NewChecker(m, o.Host); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("heartbeat options: %w", errors.Join(errs...))
	}
	return nil
}

// Run is the heartbeat service's entry point: it checks the DR
// configuration, then probes the peer and runs the local monitors until ctx
// ends.
func Run(ctx context.Context, deps service.Deps) error {
	opts := OptionsFromConfig(deps.Config)
	if err := opts.validate(); err != nil {
		return err
	}
	return run(ctx, deps, opts)
}

func run(ctx context.Context, deps service.Deps, opts Options) error {
	log := deps.Log.With("component", "heartbeat")
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	roles, err := service.WatchRole(ctx, deps, roleConsumer)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	role, _ := roles.Current()

	// Seed 000: after a restart the watchdog verifies the DR
	// configuration before it probes anything, and says what it found.
	problems := checkConfig(deps.Config, role)
	probers, perr := newProbers(ctx, opts)
	if perr != nil {
		problems = append(problems, perr.Error())
	}
	out := newOutbox(deps.Bus, now, opts.PublishRetry, log)
	if err := out.publishNow(ctx, &events.ConfigChecked{OK: len(problems) == 0, Problems: problems}); err != nil {
		return err
	}
	for _, p := range problems {
		log.Warn("DR configuration problem", "problem", p)
	}
	if perr != nil {
		return fmt.Errorf("heartbeat: %w", perr)
	}

	names := make([]string, len(opts.Lines))
	for i, l := range opts.Lines {
		names[i] = l.Name
	}
	statuses, err := restore(ctx, deps, opts.Site, opts.Peer, names)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}

	var wg sync.WaitGroup
	wg.Go(func() { out.run(ctx) })
	emit := out.emitter(ctx)
	if role != events.RoleStandalone {
		for _, l := range opts.Lines {
			st := statuses[l.Name]
			if st.status != line.Unknown {
				log.Info("line state restored from the log", "line", l.Name, "status", st.status, "since", st.since)
			}
			m := line.NewMachine(l.Config, st.status, st.since)
			p := probers[l.Name]
			wg.Go(func() { line.Run(ctx, m, p, now, emit, log.With("line", l.Name)) })
		}
	}
	for _, mc := range opts.Monitors {
		ch, err := monitor.NewChecker(mc, opts.Host)
		if err != nil {
			return err // validate() built it already
		}
		wg.Go(func() { monitor.Run(ctx, mc, ch, roles, emit, log) })
	}
	log.Info("heartbeat running", "lines", len(opts.Lines), "monitors", len(opts.Monitors), "role", role)
	<-ctx.Done()
	wg.Wait()
	return nil
}

// newProbers returns each line's prober. ICMP lines share one prober, and
// so one socket, living as long as ctx; it is opened once so that a host
// that forbids ICMP fails at start, clearly.
func newProbers(ctx context.Context, opts Options) (map[string]line.Prober, error) {
	out := map[string]line.Prober{}
	var icmp *probe.ICMP
	for _, l := range opts.Lines {
		switch l.Kind {
		case "tcp":
			out[l.Name] = probe.TCP{Port: l.Port}
		case "icmp":
			if icmp == nil {
				p, err := probe.NewICMP(ctx, opts.ICMPMode)
				if err != nil {
					return nil, fmt.Errorf("line %q: %w", l.Name, err)
				}
				icmp = p
			}
			out[l.Name] = icmp
		}
	}
	return out, nil
}

// checkConfig lists what in the DR configuration stops the heartbeat or
// arbitration from doing its job. It is advisory: the configuration already
// passed validation.
func checkConfig(cfg *config.Config, role events.Role) []string {
	var p []string
	if role == events.RoleStandalone {
		p = append(p, "site is standalone: it is not in a DR pair, so the peer is not probed (run init to pair it)")
	}
	hb := cfg.Watchdog.Heartbeat
	enabled := 0
	for _, l := range hb.Lines {
		if !l.Disable {
			enabled++
		}
	}
	if cfg.Core.PeerVIP == "" && len(cfg.Core.PeerLoadBalancerNodes) == 0 && enabled == 0 {
		p = append(p, "no peer address to probe: set core.peerVip and core.peerLoadBalancerNodes (or watchdog.heartbeat.lines)")
	}
	if cfg.Core.PeerVIP != "" && cfg.VIP.Address != "" {
		if pfx, err := netip.ParsePrefix(cfg.VIP.Address); err == nil && pfx.Addr().String() == cfg.Core.PeerVIP {
			p = append(p, fmt.Sprintf("core.peerVip %s is this site's own vip.address: the heartbeat would probe itself", cfg.Core.PeerVIP))
		}
	}
	for i, n := range cfg.Core.PeerLoadBalancerNodes {
		if n == cfg.Core.PeerVIP {
			p = append(p, fmt.Sprintf("core.peerLoadBalancerNodes[%d] %s is the peer VIP itself: it cannot tell a moved VIP from a dead peer", i, n))
		}
	}
	if cfg.Core.PeerVIP == "" && len(cfg.Core.PeerLoadBalancerNodes) > 0 {
		p = append(p, "core.peerVip is empty: only the peer's nodes are probed, so a VIP moved inside the peer cannot be told apart")
	}
	fd := cfg.Watchdog.FailureDetection
	if !fd.IsCustom && len(fd.Arbiters) == 0 {
		p = append(p, "watchdog.failureDetection.arbiters is empty and isCustom is false: arbitration cannot decide, so there will be no automatic failover")
	}
	if fd.IsCustom && strings.TrimSpace(fd.Script) == "" {
		p = append(p, "watchdog.failureDetection.isCustom is true but script is empty")
	}
	return p
}

type lineStatus struct {
	status line.Status
	since  time.Time
}

// restore reads back each line's last announced status from this site's
// log, folded by the pair projection, so that a restart neither repeats
// RemoteUnreachable for a peer still down nor forgets to announce its
// return.
func restore(ctx context.Context, deps service.Deps, site, peer events.SiteID, lines []string) (map[string]lineStatus, error) {
	st := pair.New(site, peer, "", lines)
	filters := []string{
		events.SiteTypeFilter(site, events.RemoteUnreachable{}.EventType()),
		events.SiteTypeFilter(site, events.RemoteReachable{}.EventType()),
		events.SiteTypeFilter(site, events.PeerVIPMovedLocally{}.EventType()),
	}
	_, err := deps.Bus.Replay(ctx, 0, filters, func(_ uint64, env *events.Envelope) error {
		st.Apply(env)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore line status: %w", err)
	}
	out := map[string]lineStatus{}
	for name, l := range st.Lines {
		switch {
		case l.Moved:
			out[name] = lineStatus{status: line.Moved}
		case l.Up:
			out[name] = lineStatus{status: line.Up}
		default:
			out[name] = lineStatus{status: line.Down, since: l.Since}
		}
	}
	return out, nil
}
