package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/drwatch/drwatch/pkg/events"
)

// ServerOptions configure the embedded nats-server of one site.
type ServerOptions struct {
	// Site is the JetStream domain and the server name's prefix.
	Site string
	// Peer is the other site (its JetStream domain); the identities may
	// read its store.
	Peer string
	Host string
	// Port is the client port; -1 picks a free one.
	Port     int
	StoreDir string
	// SyncAlways fsyncs every JetStream write. nats-server applies it to
	// every file-backed stream of the server.
	SyncAlways bool
	// LeafListen accepts the peer's leafnode ("host:port"; empty: none).
	LeafListen string
	// LeafRemotes are the peer's leafnode URLs to dial.
	LeafRemotes []string
	// TLS for the leafnode link; all empty means plain TCP.
	LeafCert, LeafKey, LeafCA string
	// KeysDir holds the seed of every identity (Identities), created on
	// first start when missing. Required: the server admits no client
	// without one of them.
	KeysDir string
	// LeafKeyFile is the pair's leafnode seed (default KeysDir/leaf.nk,
	// created when missing): the dialing site authenticates with it, the
	// listening site admits its public key with PeerPermissions. Both
	// sites must hold the same file.
	LeafKeyFile string
	// ExtraUsers are admitted besides the identities (tests and tools
	// that need more than a service may).
	ExtraUsers []*server.NkeyUser
	Logger     *slog.Logger
}

// Server is a running embedded nats-server.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded nats-server with JetStream in the site's
// domain and waits until it accepts clients.
func StartServer(opts ServerOptions) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("start embedded nats: store dir is required")
	}
	if err := os.MkdirAll(opts.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	pubs, err := EnsureKeys(opts.KeysDir, Identities)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	site, peer := events.SiteID(opts.Site), events.SiteID(opts.Peer)
	so := &server.Options{
		ServerName:      "drwatch-" + opts.Site,
		Host:            opts.Host,
		Port:            opts.Port,
		JetStream:       true,
		JetStreamDomain: opts.Site,
		StoreDir:        opts.StoreDir,
		SyncAlways:      opts.SyncAlways,
		NoSigs:          true,
		NoLog:           true,
		MaxPayload:      8 << 20,
	}
	for _, id := range Identities {
		so.Nkeys = append(so.Nkeys, &server.NkeyUser{Nkey: pubs[id], Permissions: Permissions(site, peer, id)})
	}
	so.Nkeys = append(so.Nkeys, opts.ExtraUsers...)
	var leafSeed, leafPub string
	if opts.LeafListen != "" || len(opts.LeafRemotes) > 0 {
		if opts.Peer == "" {
			// The peer's permissions name its JetStream domain.
			return nil, errors.New("start embedded nats: a leafnode needs the peer site's name (ServerOptions.Peer)")
		}
		if opts.LeafKeyFile == "" {
			opts.LeafKeyFile = filepath.Join(opts.KeysDir, LeafKeyFile)
		}
		if leafPub, err = ensureSeed(opts.LeafKeyFile); err != nil {
			return nil, fmt.Errorf("start embedded nats: leafnode key: %w", err)
		}
		kp, _ := readSeed(opts.LeafKeyFile)
		seed, _ := kp.Seed()
		leafSeed = string(seed)
	}
	if opts.SyncAlways {
		// nats-server applies sync_interval "always" as SyncAlways plus the
		// default interval; set both as its config parser would.
		so.SyncInterval = 2 * time.Minute
	}
	var leafTLS *tls.Config
	if opts.LeafCert != "" || opts.LeafCA != "" {
		if leafTLS, err = loadTLS(opts.LeafCert, opts.LeafKey, opts.LeafCA); err != nil {
			return nil, fmt.Errorf("start embedded nats: leafnode tls: %w", err)
		}
	}
	if opts.LeafListen != "" {
		host, portStr, err := net.SplitHostPort(opts.LeafListen)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats: leafnode listen %q: %w", opts.LeafListen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats: leafnode listen %q: %w", opts.LeafListen, err)
		}
		so.LeafNode.Host = host
		so.LeafNode.Port = port
		// Peers dial only the URLs they were given: an advertised address
		// would let a remote bypass the path an operator configured.
		so.LeafNode.NoAdvertise = true
		// The peer authenticates as a user of ours: nats-server applies
		// a user's permissions to a leafnode that logs in with it.
		so.Nkeys = append(so.Nkeys, &server.NkeyUser{Nkey: leafPub, Permissions: PeerPermissions(site, peer)})
		if leafTLS != nil {
			leafTLS.ClientAuth = tls.RequireAndVerifyClientCert
			so.LeafNode.TLSConfig = leafTLS
			so.LeafNode.TLSTimeout = 5
		}
	}
	for _, r := range opts.LeafRemotes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats: leafnode remote %q: %w", r, err)
		}
		remote := &server.RemoteLeafOpts{URLs: []*url.URL{u}, Nkey: leafSeed, DenyImports: peerDenies(site)}
		if leafTLS != nil {
			remote.TLS = true
			remote.TLSConfig = leafTLS.Clone()
			remote.TLSConfig.ClientAuth = tls.NoClientCert
			remote.TLSTimeout = 5
		}
		so.LeafNode.Remotes = append(so.LeafNode.Remotes, remote)
	}
	// Redial a cut link quickly: how soon the peer's log catches up after a
	// heal starts with the link being back.
	so.LeafNode.ReconnectInterval = 250 * time.Millisecond

	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	if opts.Logger != nil {
		ns.SetLoggerV2(&serverLog{log: opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start embedded nats: not ready for connections after 10s")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// LeafConnected reports how many leafnode connections are up.
func (s *Server) LeafConnected() int { return s.ns.NumLeafNodes() }

// Shutdown stops the server and waits for it, or for ctx.
func (s *Server) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

// serverLog routes nats-server's log lines to slog.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  {}
