package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/loopnet"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/pkg/sshsim"
	"github.com/drwatch/drwatch/services/orchestrator"
)

// Sites are the two sites of the pair; a starts active.
var Sites = [2]string{"a", "b"}

// sourceIP is the address each site's arbiter sessions come from, as the
// arbiters see them (all of 127.0.0.0/8 is loopback on Linux).
var sourceIP = map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"}

// TopologyOptions shape the pair.
type TopologyOptions struct {
	// Dir holds both sites' stores, keys and logs.
	Dir string
	// Services run in each site; the one named "orchestrator" is run with
	// the loopback VIP.
	Services []site.Service
	// VIPPort is the fixed loopback port clients use; 0 picks one.
	VIPPort int
	// Arbiters is how many arbiters to start (3).
	Arbiters int
	// Interval, Timeout and Retries are the heartbeat's timers.
	Interval, Timeout time.Duration
	Retries           int
	// Linger is how long an arbiter keeps listing a session whose link was
	// cut (sshd's ClientAliveInterval × ClientAliveCountMax).
	Linger time.Duration
	// WaitDuration and BlockWindow override the seed's 8 h, so that more
	// than one failover can happen in a short run.
	WaitDuration, BlockWindow time.Duration
	// Log receives every service's log.
	Log *slog.Logger
	// Edit, when set, may change a site's configuration before it starts.
	Edit func(*config.Config)
}

func (o *TopologyOptions) defaults() {
	if o.Arbiters == 0 {
		o.Arbiters = 3
	}
	if o.Interval == 0 {
		o.Interval, o.Timeout, o.Retries = time.Second, 500*time.Millisecond, 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Topology is two sites on loopback, each a full site.Run on an embedded
// NATS, joined through cuttable relays, with arbiters and a VIP.
type Topology struct {
	opts TopologyOptions
	// VIPAddr is where clients connect.
	VIPAddr string
	// Arbiters accept the sites' key and list the sessions they hold, as a
	// standby counts them for "managed by the active site".
	Arbiters []*sshsim.Server
	sites    map[string]*Site
	// interSite are the links between the sites: the leafnode (b dials a)
	// and each site's heartbeat to the other.
	interSite []*loopnet.Relay
	// arbiterLinks[site][i] carries site's SSH and probes to arbiter i.
	arbiterLinks map[string][]*loopnet.Relay
}

// Site is one site's process, started and stopped by the topology.
type Site struct {
	Name   string
	Config *config.Config
	VIP    *VIP
	node   *node
	// NATSURL is the embedded server's client URL.
	NATSURL string

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	running bool
}

// Running reports whether the site's process runs.
func (s *Site) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// NewTopology builds the network, the arbiters, the keys and both sites'
// configurations; nothing runs until Start. Everything ends with ctx.
func NewTopology(ctx context.Context, o TopologyOptions) (*Topology, error) {
	o.defaults()
	t := &Topology{opts: o, sites: map[string]*Site{}, arbiterLinks: map[string][]*loopnet.Relay{}}
	if o.VIPPort == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		o.VIPPort = p
	}
	t.VIPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.VIPPort))

	keyDir := filepath.Join(o.Dir, "ssh")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(keyDir, "id_ed25519")
	pub, err := sshsim.WriteClientKey(keyPath)
	if err != nil {
		return nil, err
	}
	for range o.Arbiters {
		a, err := sshsim.Listen(sshsim.Options{User: "drwatch", AuthorizedKey: pub})
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, a.Close)
		t.Arbiters = append(t.Arbiters, a)
	}

	ports := map[string]map[string]int{}
	for _, name := range Sites {
		ports[name] = map[string]int{}
		for _, what := range []string{"nats", "leaf", "http", "node"} {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			ports[name][what] = p
		}
	}
	local := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	leaf, err := loopnet.Listen(ctx, local(ports["a"]["leaf"]), loopnet.Options{})
	if err != nil {
		return nil, err
	}
	t.interSite = append(t.interSite, leaf)
	// Each site's host answers the peer's heartbeat while it is powered on,
	// whether or not the drwatch process runs, as a host answers ping.
	nodes := map[string]*node{}
	for _, name := range Sites {
		n, err := listenNode(ctx, local(ports[name]["node"]))
		if err != nil {
			return nil, err
		}
		nodes[name] = n
	}
	// heartbeat[x] carries x's probes to the peer's node.
	heartbeat := map[string]*loopnet.Relay{}
	for _, name := range Sites {
		r, err := loopnet.Listen(ctx, local(ports[peerOf(name)]["node"]), loopnet.Options{})
		if err != nil {
			return nil, err
		}
		heartbeat[name] = r
		t.interSite = append(t.interSite, r)
	}

	for _, name := range Sites {
		var hosts []sshsim.HostEntry
		var arbiters []config.Arbiter
		for _, a := range t.Arbiters {
			r, err := loopnet.Listen(ctx, a.Addr, loopnet.Options{Source: sourceIP[name], Linger: o.Linger})
			if err != nil {
				return nil, err
			}
			t.arbiterLinks[name] = append(t.arbiterLinks[name], r)
			hosts = append(hosts, sshsim.HostEntry{Addr: r.Addr, Key: a.HostKey.PublicKey()})
			arbiters = append(arbiters, config.Arbiter{Host: "127.0.0.1", Port: r.Port(), Username: "drwatch", PrivateKey: keyPath,
				KnownHosts: filepath.Join(keyDir, "known_hosts_"+name)})
		}
		if err := sshsim.WriteKnownHosts(filepath.Join(keyDir, "known_hosts_"+name), hosts...); err != nil {
			return nil, err
		}

		cfg := config.Defaults()
		cfg.Site = config.Site{Name: name, Peer: peerOf(name), Node: name + "-node", Role: "standby", PeerAddresses: config.List{sourceIP[peerOf(name)]}, Addresses: config.List{sourceIP[name]}}
		if name == "a" {
			cfg.Site.Role = "active"
			cfg.NATS.Embedded.Leafnode.Listen = local(ports["a"]["leaf"])
		} else {
			cfg.NATS.Embedded.Leafnode.Remotes = config.List{"nats-leaf://" + leaf.Addr}
		}
		cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", ports[name]["nats"]
		cfg.NATS.Embedded.StoreDir = filepath.Join(o.Dir, name, "nats")
		cfg.NATS.Embedded.SyncAlways = false
		// One leafnode key for the pair, as init would copy it to both.
		cfg.NATS.Embedded.Leafnode.Key = filepath.Join(o.Dir, "leaf.nk")
		cfg.HTTP.Listen = local(ports[name]["http"])
		cfg.Core.PeerVIP = "127.0.0.1"
		hb := &cfg.Watchdog.Heartbeat
		hb.Probe, hb.Port = "tcp", heartbeat[name].Port()
		hb.Interval, hb.Timeout, hb.Retries = config.Duration(o.Interval), config.Duration(o.Timeout), o.Retries
		fd := &cfg.Watchdog.FailureDetection
		fd.Arbiters, fd.ArbiterProbe, fd.ProbeTimeout = arbiters, "tcp", config.Duration(o.Timeout)
		if o.WaitDuration > 0 {
			fd.WaitDuration = config.Duration(o.WaitDuration)
		}
		if o.BlockWindow > 0 {
			cfg.Failover.BlockWindow = config.Duration(o.BlockWindow)
		}
		if o.Edit != nil {
			o.Edit(&cfg)
		}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("site %s's generated configuration: %w", name, err)
		}
		t.sites[name] = &Site{Name: name, Config: &cfg, VIP: newVIP(ctx, name, t.VIPAddr), node: nodes[name]}
	}
	return t, nil
}

// Site returns the named site.
func (t *Topology) Site(name string) *Site { return t.sites[name] }

// Start runs the site's process (a full site.Run) until Kill or ctx ends,
// and waits until its services are started.
func (t *Topology) Start(ctx context.Context, name string) error {
	s := t.sites[name]
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done, s.running, s.err = cancel, make(chan struct{}), true, nil
	s.mu.Unlock()
	ready := make(chan string, 1)
	services := make([]site.Service, 0, len(t.opts.Services))
	for _, svc := range t.opts.Services {
		if svc.Name == "orchestrator" {
			svc.Run = s.VIP.orchestrator
		}
		services = append(services, svc)
	}
	done := s.done
	go func() {
		defer close(done)
		err := site.Run(rctx, site.Options{Config: s.Config, Services: services, Log: t.opts.Log.With("site", name),
			Ready: func(url string) { ready <- url }})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	select {
	case url := <-ready:
		s.mu.Lock()
		s.NATSURL = url
		s.mu.Unlock()
		return nil
	case <-done:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.running = false
		return fmt.Errorf("site %s stopped while starting: %w", name, errors.Join(s.err, errors.New("see its log")))
	}
}

// Kill stops the site's process as a crash would: the services stop, its
// VIP (held by the kernel, not the process) stays where it is.
func (t *Topology) Kill(name string) error {
	s := t.sites[name]
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	cancel()
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	return s.err
}

// PowerOff is the whole site going dark: its process stops, its VIP goes
// with the machine, and its links stop answering (arbiters keep its
// sessions listed until their keepalive gives up).
func (t *Topology) PowerOff(name string) error {
	t.CutSite(name)
	err := t.Kill(name)
	t.sites[name].VIP.PowerOff()
	t.sites[name].node.close()
	return err
}

// CutSites cuts every link between the two sites.
func (t *Topology) CutSites() {
	for _, r := range t.interSite {
		r.Cut()
	}
}

// HealSites restores the links between the sites.
func (t *Topology) HealSites() error {
	var errs []error
	for _, r := range t.interSite {
		errs = append(errs, r.Heal())
	}
	return errors.Join(errs...)
}

// SitesCut reports whether the sites are cut from each other.
func (t *Topology) SitesCut() bool { return t.interSite[0].IsCut() }

// ArbiterLink is the link from site to arbiter i.
func (t *Topology) ArbiterLink(site string, i int) *loopnet.Relay { return t.arbiterLinks[site][i] }

// CutSite isolates a site: from its peer and from every arbiter.
func (t *Topology) CutSite(name string) {
	t.CutSites()
	for _, r := range t.arbiterLinks[name] {
		r.Cut()
	}
}

// HealAll restores every link.
func (t *Topology) HealAll() error {
	errs := []error{t.HealSites()}
	for _, rs := range t.arbiterLinks {
		for _, r := range rs {
			errs = append(errs, r.Heal())
		}
	}
	return errors.Join(errs...)
}

// ManagedBy counts the arbiters listing a session from site, as the
// standby's `who` would.
func (t *Topology) ManagedBy(site string) int {
	n := 0
	for _, a := range t.Arbiters {
		for _, ip := range a.Sessions() {
			if ip == sourceIP[site] {
				n++
				break
			}
		}
	}
	return n
}

// Stop ends both sites.
func (t *Topology) Stop() error {
	var errs []error
	for _, name := range Sites {
		if err := t.Kill(name); err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", name, err))
		}
		t.sites[name].VIP.PowerOff()
	}
	return errors.Join(errs...)
}

func peerOf(name string) string {
	if name == "a" {
		return "b"
	}
	return "a"
}

// orchestrator runs the real orchestrator with this loopback VIP in place
// of an address on a network interface (which needs root): the VIP
// monitor and the saga's take/release steps move it exactly as they move a
// real one.
func (v *VIP) orchestrator(ctx context.Context, deps service.Deps) error {
	o, err := orchestrator.OptionsFromConfig(deps.Config)
	if err != nil {
		return err
	}
	o.KeepPeerSource = false
	o.VIP = v
	o.VIPInterval = 250 * time.Millisecond
	return orchestrator.RunWith(ctx, deps, o)
}

// node is a site's host as the peer's heartbeat sees it: it accepts TCP
// connections until powered off.
type node struct{ ln net.Listener }

func listenNode(ctx context.Context, addr string) (*node, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("site node %s: %w", addr, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	context.AfterFunc(ctx, func() { ln.Close() })
	return &node{ln: ln}, nil
}

func (n *node) close() { n.ln.Close() }

// freePort picks a free port for an address that must be written in a
// configuration before its server starts. It draws below Linux's ephemeral
// range (32768–60999), so that the relays and arbiters, which listen on
// port 0, cannot be handed the same port before the site binds it.
func freePort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port between 20000 and 32000 on 127.0.0.1")
}
