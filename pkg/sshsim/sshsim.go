// Package sshsim runs in-process SSH servers that stand for arbiters: each
// has a generated host key, accepts one user by password or public key,
// keeps terminal sessions open, and answers a session's command with a
// `who`-style list of the connections it holds (one line per connection,
// with the remote IP) plus any lines the caller adds. That list is what a
// standby site reads to count an arbiter as managed by the active site.
// Options make the list the one sshd and utmp make on a real arbiter: only
// sessions with a terminal, accounts refused a terminal, origins recorded
// as host names or translated addresses.
// It also writes the key files a client needs to reach such a server.
package sshsim

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options say whom a Server accepts and where it listens.
type Options struct {
	// User is the one account accepted; required.
	User string
	// Password, when set, is accepted for User.
	Password string
	// AuthorizedKey, when set, is accepted for User.
	AuthorizedKey ssh.PublicKey
	// Listen is the address to serve on; default 127.0.0.1:0.
	Listen string
	// Exec, when set, is told each command a session runs, before the
	// answer is written.
	Exec func(command string)

	// TerminalsOnly lists one line per session that was granted a
	// terminal, as utmp does, instead of one per connection.
	TerminalsOnly bool
	// NoTerminal refuses every pty request, as sshd does for an account
	// with PermitTTY no or an authorized_keys no-pty key.
	NoTerminal bool
	// Origin is what the list prints for a connection from ip: a host
	// name (sshd UseDNS) or another address (NAT); nil prints ip.
	Origin func(ip string) string
}

// Server is one arbiter.
type Server struct {
	// Addr is where the server listens, as host:port; Host and Port are
	// its parts.
	Addr    string
	Host    string
	Port    int
	HostKey ssh.Signer

	ln  net.Listener
	cfg *ssh.ServerConfig
	o   Options

	mu    sync.Mutex
	conns map[*ssh.ServerConn]int // connection → sessions granted a terminal
	extra []string
}

// Listen starts a server with a fresh host key; it serves until Close.
func Listen(o Options) (*Server, error) {
	if o.User == "" {
		return nil, errors.New("sshsim: no user to accept")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	host, err := NewSigner()
	if err != nil {
		return nil, err
	}
	s := &Server{HostKey: host, o: o, conns: map[*ssh.ServerConn]int{}}
	s.cfg = &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == o.User && o.Password != "" && string(pw) == o.Password {
				return nil, nil
			}
			return nil, fmt.Errorf("password rejected for %s", c.User())
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == o.User && o.AuthorizedKey != nil && string(k.Marshal()) == string(o.AuthorizedKey.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key rejected for %s", c.User())
		},
	}
	s.cfg.AddHostKey(host)
	s.ln, err = net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("sshsim: listen: %w", err)
	}
	tcp := s.ln.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = tcp.String(), tcp.IP.String(), tcp.Port
	go s.serve()
	return s, nil
}

// Close stops accepting and drops every connection.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// SetExtra sets lines printed after the live sessions, e.g. a `who` line
// for a session from an address no real connection uses.
func (s *Server) SetExtra(lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = lines
}

// Sessions returns the remote IPs of the connections the server holds,
// with a terminal or not.
func (s *Server) Sessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c.RemoteAddr().(*net.TCPAddr).IP.String())
	}
	return out
}

func (s *Server) serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(nc)
	}
}

func (s *Server) handle(nc net.Conn) {
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		nc.Close()
		return
	}
	s.mu.Lock()
	s.conns[conn] = 0
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	go func() {
		for r := range reqs {
			if r.WantReply {
				_ = r.Reply(r.Type == "keepalive@openssh.com", nil)
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go s.session(conn, ch, creqs)
	}
}

func (s *Server) session(conn *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	terminal := false
	defer func() {
		if terminal {
			s.terminals(conn, -1)
		}
	}()
	for r := range reqs {
		switch r.Type {
		case "pty-req":
			// A session gets one terminal; sshd refuses a second request.
			ok := !s.o.NoTerminal && !terminal
			if ok {
				terminal = true
				s.terminals(conn, +1)
			}
			_ = r.Reply(ok, nil)
		case "shell":
			_ = r.Reply(true, nil)
			// A login shell that stays until the client leaves.
			go func() { _, _ = io.Copy(io.Discard, ch) }()
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				_ = r.Reply(false, nil)
				return
			}
			_ = r.Reply(true, nil)
			if s.o.Exec != nil {
				s.o.Exec(p.Command)
			}
			_, _ = io.WriteString(ch, s.who())
			_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
			return
		default:
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}
}

// terminals adds d to conn's count of sessions with a terminal, unless
// the connection has already gone.
func (s *Server) terminals(conn *ssh.ServerConn, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.conns[conn]; ok {
		s.conns[conn] = n + d
	}
}

// who prints the held connections, or with TerminalsOnly their terminals,
// as `who` does, then the extra lines.
func (s *Server) who() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	i := 0
	for c, terminals := range s.conns {
		lines := 1
		if s.o.TerminalsOnly {
			lines = terminals
		}
		origin := c.RemoteAddr().(*net.TCPAddr).IP.String()
		if s.o.Origin != nil {
			origin = s.o.Origin(origin)
		}
		for range lines {
			fmt.Fprintf(&b, "%-8s pts/%-7d 2025-03-01 12:%02d (%s)\n", c.User(), i, i%60, origin)
			i++
		}
	}
	for _, l := range s.extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// NewSigner returns a fresh ed25519 key.
func NewSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshsim: key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("sshsim: key: %w", err)
	}
	return signer, nil
}

// WriteClientKey writes a fresh unencrypted OpenSSH private key to path
// (mode 0600) and returns its public key.
func WriteClientKey(path string) (ssh.PublicKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshsim: client key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("sshsim: client key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("sshsim: write client key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("sshsim: client key: %w", err)
	}
	return signer.PublicKey(), nil
}

// HostEntry is one known_hosts line: the address a client dials and the
// key that must answer there.
type HostEntry struct {
	Addr string
	Key  ssh.PublicKey
}

// WriteKnownHosts writes a known_hosts file (mode 0600) listing entries;
// with none, it is empty and vouches for no host.
func WriteKnownHosts(path string, entries ...HostEntry) error {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(e.Addr)}, e.Key) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("sshsim: write known_hosts: %w", err)
	}
	return nil
}
