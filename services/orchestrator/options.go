package orchestrator

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
	"github.com/drwatch/drwatch/services/orchestrator/internal/svcmon"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vipmon"
)

// Options configure the orchestrator.
type Options struct {
	Site, Peer  events.SiteID
	InitialRole events.Role
	// Lines are the heartbeat lines that must all have lost the peer for
	// it to count as unreachable.
	Lines  []string
	Policy decide.Policy
	Hooks  saga.Hooks
	// VIP is nil when vip.address is not configured.
	VIP       vipmon.VIP
	Services  []svcmon.Service
	Databases []events.Database
	// FenceAnswerTimeout bounds the wait for an idle peer's answer to a
	// fence (saga.Executor.FenceAnswerTimeout).
	FenceAnswerTimeout time.Duration
	// DBTimeout bounds a promote/demote by dbmonitor; FenceTimeout the wait
	// for a reachable peer to stand down.
	DBTimeout, FenceTimeout time.Duration
	// Tick is how often time-based rules (a disable that ends, the wait
	// window, the block window) are re-decided without a new event.
	Tick time.Duration
	// ServiceInterval is the service monitor's round.
	ServiceInterval time.Duration
	// VIPInterval is the VIP monitor's round: how soon an address removed
	// by hand on the active site comes back, or one found on a standby
	// goes.
	VIPInterval time.Duration
	// PeerDatabases is where each database's server on the peer listens,
	// for re-pointing this site's server at it after a failover; a
	// database missing here is not re-pointed.
	PeerDatabases map[events.Database]HostPort
	Follow        decide.FollowPolicy
	// StartupHold bounds how long a site that restarts active waits to
	// learn the peer's latest role before it takes the VIP and starts
	// services on its own authority (see confirmPeer).
	StartupHold time.Duration
	// KeepPeerSource runs bus.KeepPeerSource: on when the orchestrator runs
	// alone; the drwatch all-in-one process runs one keeper for all.
	KeepPeerSource bool
	// ClaimTimeout bounds the wait for the arbiter service's answer to a
	// claim of the arbiters (events.ArbitersClaimRequested); 0 when this
	// site cannot claim (no arbiters, or a custom failure-detection
	// script): its takeovers and restarts then rest on the verdict alone.
	ClaimTimeout time.Duration
	// TakeoverHold is how long after this site's last reply from the peer
	// a takeover may complete its claim of the arbiters (config.Timing):
	// an isolated active has released the VIP and fenced its databases
	// by then. Counting it from anything later, such as the latest
	// RemoteUnreachable.Since of the lines, holds longer and stays safe.
	TakeoverHold time.Duration
	// SelfFenceTimeout is failover.selfFenceTimeout: a stand-down releases
	// the VIP and makes the databases read-only within it, before hooks
	// and service stops; the takeover hold counts on it.
	SelfFenceTimeout time.Duration

	// PairSettings are this site's values of the settings both sites
	// must share (config.PairWide), recorded at start and compared with
	// the peer's; nil: not recorded.
	PairSettings []events.Setting

	// afterPublish sees every event a saga stores (tests crash on it).
	afterPublish func(*events.Envelope)
}

// HostPort is a database server's address.
type HostPort struct {
	Host string
	Port int
}

// DefaultOptions are the timings not in the site config.
func DefaultOptions() Options {
	return Options{
		DBTimeout:    2 * time.Minute,
		FenceTimeout: 2 * time.Minute,
		// The peer decides every second; its answer crosses the link
		// that sources its log, which pair.ClockSkew allows 10 s.
		FenceAnswerTimeout: 15 * time.Second,
		Tick:               time.Second,
		ServiceInterval:    10 * time.Second,
		VIPInterval:        2 * time.Second,
		StartupHold:        time.Minute,
		Follow:             decide.FollowPolicy{Retry: 30 * time.Second, AnswerTimeout: 2 * time.Minute, MaxAttempts: 5},
		KeepPeerSource:     true,
	}
}

// OptionsFromConfig builds Options from the site configuration.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	o := DefaultOptions()
	o.Site, o.Peer = events.SiteID(cfg.Site.Name), events.SiteID(cfg.Site.Peer)
	o.InitialRole = events.Role(cfg.Site.Role)
	o.Lines = cfg.HeartbeatLineNames()
	for _, s := range cfg.PairWide() {
		o.PairSettings = append(o.PairSettings, events.Setting{Key: s.Key, Value: s.Value})
	}
	f := cfg.Failover
	o.Policy = decide.Policy{
		Automatic:          f.Automatic,
		FailbackAutomatic:  f.Failback == "automatic",
		Home:               cfg.Site.Role == string(events.RoleActive),
		BlockWindow:        f.BlockWindow.D(),
		MaxLagBytes:        f.MaxLagBytes,
		MaxLagTransactions: f.MaxLagTransactions,
		// A lag figure ten dbmonitor rounds old no longer blocks: lag
		// events come on transitions only, and the saga asks for a
		// fresh position (check-position) before promoting.
		LagMaxAge:    10 * max(cfg.MySQL.CheckInterval.D(), cfg.PgSQL.CheckInterval.D()),
		ObserveOnly:  f.ObserveOnly,
		WaitDuration: cfg.Watchdog.FailureDetection.WaitDuration.D(),
		ClockSkew:    pair.ClockSkew,
		RetryAfter:   cfg.Watchdog.Heartbeat.Interval.D(),
		// A request holds while its issuer waits: the CLI's default
		// wait and a fence's timeout.
		RequestExpiry: o.FenceTimeout,
	}
	h := cfg.Hooks
	o.Hooks = saga.Hooks{Veto: f.VetoHook, PreS2M: h.PreS2M, PostS2M: h.PostS2M, PreM2S: h.PreM2S, PostM2S: h.PostM2S, Timeout: h.Timeout.D()}
	if cfg.VIP.Address != "" {
		v, err := vip.New(cfg.VIP.Address, cfg.VIP.Interface)
		if err != nil {
			return o, err
		}
		o.VIP = v
	}
	for _, s := range cfg.Watchdog.Services {
		o.Services = append(o.Services, svcmon.Service{Name: s.Name, Kind: s.Kind, Target: s.Target, RunOn: s.RunOn})
	}
	o.PeerDatabases = map[events.Database]HostPort{}
	if cfg.MySQL.Enabled {
		o.Databases = append(o.Databases, events.MySQL)
		if hp, ok := peerDatabase(cfg.MySQL.PeerVIP, cfg.MySQL.PeerNodes, mysqlPort(cfg.MySQL.DSN.Value())); ok {
			o.PeerDatabases[events.MySQL] = hp
		}
	}
	if cfg.PgSQL.Enabled {
		o.Databases = append(o.Databases, events.PgSQL)
		if hp, ok := peerDatabase("", cfg.PgSQL.PeerNodes, pgsqlPort(cfg.PgSQL.DSN.Value())); ok {
			o.PeerDatabases[events.PgSQL] = hp
		}
	}
	// Timings that depend on others come from one derivation, checked
	// there against each other (drwatch validate prints it).
	t := cfg.Timing()
	o.Tick, o.DBTimeout, o.StartupHold = t.DecisionTick, t.DBTimeout, t.StartupHold
	o.Policy.RestartYield = t.RestartYield
	o.ClaimTimeout = t.ClaimTimeout
	o.TakeoverHold, o.SelfFenceTimeout = t.TakeoverHold, t.SelfFenceTimeout
	return o, nil
}

func (o *Options) validate() error {
	var errs []error
	if o.Site == "" {
		errs = append(errs, errors.New("site.name is required"))
	}
	if o.Peer == "" {
		errs = append(errs, errors.New("site.peer is required: the orchestrator fails over between two sites"))
	}
	switch o.InitialRole {
	case events.RoleActive, events.RoleStandby, events.RoleStandalone:
	default:
		errs = append(errs, fmt.Errorf("site.role %q must be active, standby or standalone", o.InitialRole))
	}
	for _, h := range []struct{ field, path string }{
		{"failover.vetoHook", o.Hooks.Veto}, {"hooks.preS2M", o.Hooks.PreS2M}, {"hooks.postS2M", o.Hooks.PostS2M},
		{"hooks.preM2S", o.Hooks.PreM2S}, {"hooks.postM2S", o.Hooks.PostM2S},
	} {
		if h.path == "" {
			continue
		}
		fi, err := os.Stat(h.path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w; a missing hook would abort the failover", h.field, h.path, err))
		case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s %q is not an executable file (chmod +x it)", h.field, h.path))
		}
	}
	if o.Policy.LagMaxAge < 0 {
		errs = append(errs, fmt.Errorf("orchestrator option Policy.LagMaxAge %s must not be negative (0: lag figures never age)", o.Policy.LagMaxAge))
	}
	if o.Hooks.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("hooks.timeout %s must be positive", o.Hooks.Timeout))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DBTimeout", o.DBTimeout}, {"FenceTimeout", o.FenceTimeout}, {"Tick", o.Tick}, {"ServiceInterval", o.ServiceInterval}, {"VIPInterval", o.VIPInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("orchestrator option %s %s must be positive", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// peerDatabase is the peer server's address: its VIP when set, else its
// first node.
func peerDatabase(vip string, nodes []string, port int) (HostPort, bool) {
	host := vip
	if host == "" && len(nodes) > 0 {
		host = nodes[0]
	}
	return HostPort{Host: host, Port: port}, host != ""
}

// mysqlPort is the port of a go-sql-driver DSN's tcp(host:port) address;
// the peer's server is expected on the same port as this site's. 3306
// when the DSN names none.
func mysqlPort(dsn string) int {
	if m := mysqlAddr.FindStringSubmatch(dsn); m != nil {
		if _, p, err := net.SplitHostPort(m[1]); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				return n
			}
		}
	}
	return 3306
}

var (
	mysqlAddr = regexp.MustCompile(`@tcp\(([^)]*)\)`)
	pgPortKV  = regexp.MustCompile(`(?:^|\s)port=(\d+)`)
)

// pgsqlPort is the port of a libpq DSN (URL or key=value), 5432 when it
// names none.
func pgsqlPort(dsn string) int {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if n, err := strconv.Atoi(u.Port()); err == nil {
			return n
		}
		return 5432
	}
	if m := pgPortKV.FindStringSubmatch(dsn); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	return 5432
}
