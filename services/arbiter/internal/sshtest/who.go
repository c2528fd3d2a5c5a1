package sshtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drwatch/drwatch/pkg/sshsim"
)

// Who is an arbiter whose session list is `who` as sshd and utmp make it:
// only sessions with a terminal are listed, each by what sshd records as
// its origin. It stands for the arbiters a sshsim.Server does not: an
// account without a terminal (sshd PermitTTY no, authorized_keys no-pty),
// sshd's UseDNS recording host names, and NAT between a site and its
// arbiters.
type Who struct {
	Addr    string
	Host    string
	Port    int
	HostKey ssh.Signer

	o   WhoOptions
	ln  net.Listener
	cfg *ssh.ServerConfig

	mu        sync.Mutex
	conns     map[*ssh.ServerConn]struct{}
	terminals map[*ssh.ServerConn]int
	commands  []string
}

// WhoOptions tune a Who server.
type WhoOptions struct {
	// User is the account accepted; default "arbiter".
	User     string
	Password string
	// NoTerminal refuses every pty request, so `who` lists nobody.
	NoTerminal bool
	// Origin is what `who` prints for a session from ip: a host name
	// (UseDNS), another address (NAT); nil prints ip.
	Origin func(ip string) string
}

// NewWho starts a Who server that is stopped when the test ends.
func NewWho(tb testing.TB, o WhoOptions) *Who {
	tb.Helper()
	if o.User == "" {
		o.User = "arbiter"
	}
	host := NewSigner(tb)
	s := &Who{HostKey: host, o: o, conns: map[*ssh.ServerConn]struct{}{}, terminals: map[*ssh.ServerConn]int{}}
	s.cfg = &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == o.User && o.Password != "" && string(pw) == o.Password {
				return nil, nil
			}
			return nil, fmt.Errorf("password rejected for %s", c.User())
		},
	}
	s.cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.ln = ln
	tcp := ln.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = tcp.String(), tcp.IP.String(), tcp.Port
	go s.serve()
	tb.Cleanup(s.Close)
	return s
}

// HostEntry is the server's known_hosts entry.
func (s *Who) HostEntry() sshsim.HostEntry {
	return sshsim.HostEntry{Addr: s.Addr, Key: s.HostKey.PublicKey()}
}

// Close stops accepting and drops every connection.
func (s *Who) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Sessions returns the remote IPs of the connections the server holds,
// with a terminal or not.
func (s *Who) Sessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c.RemoteAddr().(*net.TCPAddr).IP.String())
	}
	return out
}

// Commands returns the commands run so far.
func (s *Who) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Who) serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(nc)
	}
}

func (s *Who) handle(nc net.Conn) {
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
		delete(s.terminals, conn)
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

func (s *Who) session(conn *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	terminal := false
	defer func() {
		if terminal {
			s.mu.Lock()
			s.terminals[conn]--
			s.mu.Unlock()
		}
	}()
	for r := range reqs {
		switch r.Type {
		case "pty-req":
			ok := !s.o.NoTerminal && !terminal
			if ok {
				terminal = true
				s.mu.Lock()
				s.terminals[conn]++
				s.mu.Unlock()
			}
			_ = r.Reply(ok, nil)
		case "shell":
			_ = r.Reply(true, nil)
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

// who lists one line per terminal, as utmp does.
func (s *Who) who() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	tty := 0
	for c, n := range s.terminals {
		origin := c.RemoteAddr().(*net.TCPAddr).IP.String()
		if s.o.Origin != nil {
			origin = s.o.Origin(origin)
		}
		for range n {
			fmt.Fprintf(&b, "%-8s pts/%-7d 2025-03-01 12:00 (%s)\n", c.User(), tty, origin)
			tty++
		}
	}
	return b.String()
}
