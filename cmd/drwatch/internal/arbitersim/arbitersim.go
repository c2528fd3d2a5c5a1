// Package arbitersim runs in-process SSH servers that stand for the
// arbiters of seed 000 in the demo and the partition fuzzer: each has a
// generated host key, accepts one user's public key, keeps login sessions
// open, and answers any command with a `who`-style list of the sessions it
// holds (one line per connection, with the remote IP), which is what a
// standby site counts as "managed by the active site".
package arbitersim

import (
	"context"
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

// Server is one arbiter.
type Server struct {
	Addr    string
	HostKey ssh.Signer

	ln  net.Listener
	cfg *ssh.ServerConfig

	mu    sync.Mutex
	conns map[*ssh.ServerConn]struct{}
}

// Start serves on a free loopback port until ctx ends, accepting user with
// the key authorized.
func Start(ctx context.Context, user string, authorized ssh.PublicKey) (*Server, error) {
	host, err := NewSigner()
	if err != nil {
		return nil, err
	}
	s := &Server{HostKey: host, conns: map[*ssh.ServerConn]struct{}{}}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == user && string(k.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key rejected for %s", c.User())
		},
	}
	s.cfg.AddHostKey(host)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("arbiter listen: %w", err)
	}
	s.Addr = s.ln.Addr().String()
	go s.serve()
	go func() {
		<-ctx.Done()
		s.ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			c.Close()
		}
	}()
	return s, nil
}

// Sessions returns the remote IPs of the sessions held, as `who` lists them.
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
			_ = r.Reply(true, nil)
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
		fmt.Fprintf(&b, "%-8s pts/%-7d 2026-01-01 12:%02d (%s)\n", c.User(), i, i%60, c.RemoteAddr().(*net.TCPAddr).IP)
		i++
	}
	return b.String()
}

// NewSigner returns a fresh ed25519 key.
func NewSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// WriteClientKey writes a fresh unencrypted OpenSSH private key to path
// (mode 0600) and returns its public key.
func WriteClientKey(path string) (ssh.PublicKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write client key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return signer.PublicKey(), nil
}

// HostEntry is one known_hosts line: the address a site dials and the key
// that must answer there.
type HostEntry struct {
	Addr string
	Key  ssh.PublicKey
}

// WriteKnownHosts writes a known_hosts file listing entries.
func WriteKnownHosts(path string, entries ...HostEntry) error {
	if len(entries) == 0 {
		return errors.New("known_hosts: no hosts")
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(e.Addr)}, e.Key) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	return nil
}
