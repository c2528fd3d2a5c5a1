// Package sshtest runs real in-process SSH servers standing for arbiters:
// they authenticate by password or key, keep terminal sessions open, and
// answer the session command with a `who`-style list of the connections
// they currently hold plus any lines a test adds.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is one arbiter.
type Server struct {
	Addr    string
	Host    string
	Port    int
	HostKey ssh.Signer

	ln  net.Listener
	cfg *ssh.ServerConfig

	mu       sync.Mutex
	conns    map[*ssh.ServerConn]struct{}
	extra    []string
	commands []string
}

// Options tune a Server.
type Options struct {
	User     string
	Password string
	// AuthorizedKey, when set, is accepted for User.
	AuthorizedKey ssh.PublicKey
	// Listen address; default 127.0.0.1:0.
	Listen string
}

// New starts a server that is stopped when the test ends.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.User == "" {
		o.User = "arbiter"
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	s := &Server{HostKey: NewSigner(tb), conns: map[*ssh.ServerConn]struct{}{}}
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
	s.cfg.AddHostKey(s.HostKey)
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.Host = ln.Addr().(*net.TCPAddr).IP.String()
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go s.serve()
	tb.Cleanup(s.Close)
	return s
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
// for a session from an address no test connection uses.
func (s *Server) SetExtra(lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = lines
}

// Sessions returns the remote IPs of the connections the server holds.
func (s *Server) Sessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for c := range s.conns {
		out = append(out, c.RemoteAddr().(*net.TCPAddr).IP.String())
	}
	return out
}

// Commands returns the commands run so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
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
	s.conns[conn] = struct{}{}
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
		go s.session(ch, creqs)
	}
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for r := range reqs {
		switch r.Type {
		case "pty-req":
			_ = r.Reply(true, nil)
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
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
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

// who prints the held connections as `who` does.
func (s *Server) who() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	i := 0
	for c := range s.conns {
		fmt.Fprintf(&b, "%-8s pts/%-7d 2025-03-01 12:%02d (%s)\n", c.User(), i, i%60, c.RemoteAddr().(*net.TCPAddr).IP)
		i++
	}
	for _, l := range s.extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// NewSigner returns a fresh ed25519 key.
func NewSigner(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// WritePrivateKey writes a fresh unencrypted OpenSSH private key to a
// file and returns its path and public key.
func WritePrivateKey(tb testing.TB) (string, ssh.PublicKey) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return path, signer.PublicKey()
}

// KnownHosts writes a known_hosts file listing each server with key (nil:
// its real host key) and returns its path.
func KnownHosts(tb testing.TB, key ssh.PublicKey, servers ...*Server) string {
	tb.Helper()
	var b strings.Builder
	for _, s := range servers {
		k := key
		if k == nil {
			k = s.HostKey.PublicKey()
		}
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k) + "\n")
	}
	path := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
