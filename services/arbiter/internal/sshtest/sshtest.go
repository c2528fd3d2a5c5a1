// Package sshtest starts the in-process arbiters of package sshsim for
// tests: servers that stop when the test ends and remember the commands
// run on them, and the key files that reach them, failing the test on any
// error.
package sshtest

import (
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drwatch/drwatch/pkg/sshsim"
)

// Server is one arbiter.
type Server struct {
	*sshsim.Server

	mu       sync.Mutex
	commands []string
}

// Options tune a Server.
type Options struct {
	// User is the account accepted; default "arbiter".
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
	return listen(tb, sshsim.Options{User: o.User, Password: o.Password, AuthorizedKey: o.AuthorizedKey, Listen: o.Listen})
}

// listen starts a server on o, with user "arbiter" when o names none,
// that records its commands and is stopped when the test ends.
func listen(tb testing.TB, o sshsim.Options) *Server {
	tb.Helper()
	if o.User == "" {
		o.User = "arbiter"
	}
	s := &Server{}
	o.Exec = s.record
	srv, err := sshsim.Listen(o)
	if err != nil {
		tb.Fatal(err)
	}
	s.Server = srv
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) record(command string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, command)
}

// Commands returns the commands run so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// NewSigner returns a fresh ed25519 key.
func NewSigner(tb testing.TB) ssh.Signer {
	tb.Helper()
	s, err := sshsim.NewSigner()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// WritePrivateKey writes a fresh unencrypted OpenSSH private key to a
// file and returns its path and public key.
func WritePrivateKey(tb testing.TB) (string, ssh.PublicKey) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "id_ed25519")
	pub, err := sshsim.WriteClientKey(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, pub
}

// KnownHosts writes a known_hosts file listing each server with key (nil:
// its real host key) and returns its path.
func KnownHosts(tb testing.TB, key ssh.PublicKey, servers ...*Server) string {
	tb.Helper()
	var entries []sshsim.HostEntry
	for _, s := range servers {
		k := key
		if k == nil {
			k = s.HostKey.PublicKey()
		}
		entries = append(entries, sshsim.HostEntry{Addr: s.Addr, Key: k})
	}
	path := filepath.Join(tb.TempDir(), "known_hosts")
	if err := sshsim.WriteKnownHosts(path, entries...); err != nil {
		tb.Fatal(err)
	}
	return path
}

// HostEntry is the server's known_hosts entry.
func (s *Server) HostEntry() sshsim.HostEntry {
	return sshsim.HostEntry{Addr: s.Addr, Key: s.HostKey.PublicKey()}
}

// KnownHostsOf writes a known_hosts file of entries (servers of either
// kind) and returns its path.
func KnownHostsOf(tb testing.TB, entries ...sshsim.HostEntry) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "known_hosts")
	if err := sshsim.WriteKnownHosts(path, entries...); err != nil {
		tb.Fatal(err)
	}
	return path
}
