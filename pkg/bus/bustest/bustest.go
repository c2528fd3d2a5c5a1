// Package bustest starts real embedded JetStream servers for tests: one per
// site, joined by a leafnode link that a test can cut and heal.
package bustest

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
)

// Site is a running embedded server for one site.
type Site struct {
	Name   events.SiteID
	Server *bus.Server
	URL    string
	// LeafAddr is the leafnode listener ("127.0.0.1:port"), if any.
	LeafAddr string
	// KeysDir holds the seeds of the site's identities (ConnectAs).
	KeysDir string
	// admin is the test's own user, with no permission limits.
	admin nkeys.KeyPair
}

// SiteOptions tune RunSite.
type SiteOptions struct {
	// Listen for a peer's leafnode.
	LeafListen bool
	// LeafAddr is where to listen when LeafListen is set (a restarted site
	// keeps its address); default a free port.
	LeafAddr string
	// LeafRemote dials this leafnode address.
	LeafRemote string
	// SyncAlways as in production (default false in tests for speed).
	SyncAlways bool
	// StoreDir reuses a directory (to restart a site); default t.TempDir().
	StoreDir string
	// Peer is the other site, whose store the identities may read.
	Peer events.SiteID
	// KeysDir reuses the identities' seeds; default StoreDir/keys.
	KeysDir string
	// LeafKeyFile is the pair's leafnode seed; default one key shared by
	// every site of the test binary, so sites restarted in a new store
	// still join their peer.
	LeafKeyFile string
}

// RunJetStream starts a single embedded site "a" with JetStream on a random
// port and t.TempDir() storage, shut down when the test ends.
func RunJetStream(t testing.TB) *Site {
	t.Helper()
	return RunSite(t, "a", SiteOptions{})
}

// RunSite starts an embedded server for site name.
func RunSite(t testing.TB, name events.SiteID, opts SiteOptions) *Site {
	t.Helper()
	so := bus.ServerOptions{
		Site:       string(name),
		Host:       "127.0.0.1",
		Port:       -1,
		StoreDir:   opts.StoreDir,
		SyncAlways: opts.SyncAlways,
	}
	if so.StoreDir == "" {
		so.StoreDir = t.TempDir()
	}
	so.Peer = string(opts.Peer)
	so.KeysDir = opts.KeysDir
	if so.KeysDir == "" {
		so.KeysDir = filepath.Join(so.StoreDir, "keys")
	}
	so.LeafKeyFile = opts.LeafKeyFile
	if so.LeafKeyFile == "" && (opts.LeafListen || opts.LeafRemote != "") {
		so.LeafKeyFile = sharedLeafKey(t)
	}
	admin, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	adminPub, _ := admin.PublicKey()
	so.ExtraUsers = []*server.NkeyUser{{Nkey: adminPub}}
	s := &Site{Name: name, KeysDir: so.KeysDir, admin: admin}
	if opts.LeafListen {
		s.LeafAddr = opts.LeafAddr
		if s.LeafAddr == "" {
			s.LeafAddr = FreeAddr(t)
		}
		so.LeafListen = s.LeafAddr
	}
	if opts.LeafRemote != "" {
		so.LeafRemotes = []string{"nats-leaf://" + opts.LeafRemote}
	}
	var srv *bus.Server
	srv, err = bus.StartServer(so)
	if err != nil {
		t.Fatalf("start site %s: %v", name, err)
	}
	s.Server = srv
	s.URL = srv.ClientURL()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return s
}

var leafKey struct {
	once sync.Once
	path string
	err  error
}

// sharedLeafKey is the test binary's pair leafnode seed, in a directory of
// its own under the system's temporary directory.
func sharedLeafKey(t testing.TB) string {
	t.Helper()
	leafKey.once.Do(func() {
		dir, err := os.MkdirTemp("", "bustest-leaf-")
		if err != nil {
			leafKey.err = err
			return
		}
		leafKey.path = filepath.Join(dir, bus.LeafKeyFile)
		leafKey.err = bus.WriteSeed(leafKey.path)
	})
	if leafKey.err != nil {
		t.Fatal(leafKey.err)
	}
	return leafKey.path
}

// Connect opens a NATS connection to the site as the test's own user,
// which no permission limits, closed when the test ends.
func (s *Site) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	pub, _ := s.admin.PublicKey()
	nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Nkey(pub, s.admin.Sign))
	if err != nil {
		t.Fatalf("connect to site %s: %v", s.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectAs opens a NATS connection to the site as one of its identities
// (bus.Identities), closed when the test ends.
func (s *Site) ConnectAs(t testing.TB, identity string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	auth, err := bus.ClientAuth(s.KeysDir, identity)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.URL, append([]nats.Option{auth, nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatalf("connect to site %s as %s: %v", s.Name, identity, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Bus connects a bus for service on this site, with peer sourcing when peer
// is set, and ensures the streams.
func (s *Site) Bus(t testing.TB, service string, peer events.SiteID) *bus.Bus {
	t.Helper()
	return s.BusWith(t, bus.Options{Source: events.Source{Service: service}, Peer: peer})
}

// BusWith is Bus with explicit options (a shortened MaxAge, say); the
// source's site and node default to this site's.
func (s *Site) BusWith(t testing.TB, opts bus.Options) *bus.Bus {
	t.Helper()
	if opts.Source.Site == "" {
		opts.Source.Site = s.Name
	}
	if opts.Source.Node == "" {
		opts.Source.Node = string(s.Name) + "-node"
	}
	b, err := bus.New(s.Connect(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// FreeAddr returns a loopback address with a port free at the time of the
// call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Link is a TCP relay standing for the network between two sites. Cut
// drops every connection and refuses new ones until Heal.
type Link struct {
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// NewLink relays connections made to Link.Addr to target.
func NewLink(t testing.TB, target string) *Link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go l.serve()
	t.Cleanup(func() {
		ln.Close()
		l.Cut()
	})
	return l
}

func (l *Link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", l.target, time.Second)
		if err != nil {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[c], l.conns[up] = struct{}{}, struct{}{}
		l.mu.Unlock()
		go l.pipe(c, up)
		go l.pipe(up, c)
	}
}

func (l *Link) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

// Cut drops the link.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Heal restores the link; the leafnode redials on its own.
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
}

// Pair is two sites joined by a cuttable leafnode link: b dials a.
type Pair struct {
	A, B *Site
	Link *Link
}

// RunPair starts sites a and b joined through a Link.
func RunPair(t testing.TB) *Pair {
	t.Helper()
	a := RunSite(t, "a", SiteOptions{LeafListen: true, Peer: "b"})
	link := NewLink(t, a.LeafAddr)
	b := RunSite(t, "b", SiteOptions{LeafRemote: link.Addr, Peer: "a"})
	WaitFor(t, 10*time.Second, "leafnode link up", func() bool {
		return a.Server.LeafConnected() > 0 && b.Server.LeafConnected() > 0
	})
	return &Pair{A: a, B: b, Link: link}
}

// WaitFor polls cond until it holds or the timeout ends the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
