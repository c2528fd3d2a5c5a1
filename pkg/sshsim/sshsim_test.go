package sshsim_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drwatch/drwatch/pkg/sshsim"
)

func listen(t *testing.T, o sshsim.Options) *sshsim.Server {
	t.Helper()
	s, err := sshsim.Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// dial logs in to s through a known_hosts file, as the arbiter service does.
func dial(t *testing.T, s *sshsim.Server, user string, auth ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := sshsim.WriteKnownHosts(kh, sshsim.HostEntry{Addr: s.Addr, Key: s.HostKey.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: cb, Timeout: 5 * time.Second})
}

// session logs in to s as arbiter with password s3cret and opens a
// session; the connection closes when the test ends.
func session(t *testing.T, s *sshsim.Server) *ssh.Session {
	t.Helper()
	c, err := dial(t, s, "arbiter", ssh.Password("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// look runs who on s from a new connection, as the standby site does, and
// returns its lines.
func look(t *testing.T, s *sshsim.Server) []string {
	t.Helper()
	out, err := session(t, s).Output("who")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func TestListenNeedsUser(t *testing.T) {
	if _, err := sshsim.Listen(sshsim.Options{Password: "x"}); err == nil {
		t.Fatal("Listen without a user succeeded")
	}
}

func TestAuthentication(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "id_ed25519")
	pub, err := sshsim.WriteClientKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pub.Marshal(), key.PublicKey().Marshal()); diff != "" {
		t.Fatalf("WriteClientKey returned another key than it wrote (-returned +written):\n%s", diff)
	}
	other, err := sshsim.NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	both := listen(t, sshsim.Options{User: "arbiter", Password: "s3cret", AuthorizedKey: pub})
	keyOnly := listen(t, sshsim.Options{User: "arbiter", AuthorizedKey: pub})
	passwordOnly := listen(t, sshsim.Options{User: "arbiter", Password: "s3cret"})

	tests := []struct {
		name   string
		server *sshsim.Server
		user   string
		auth   ssh.AuthMethod
		ok     bool
	}{
		{"password", both, "arbiter", ssh.Password("s3cret"), true},
		{"wrong password", both, "arbiter", ssh.Password("wrong"), false},
		{"password for another user", both, "root", ssh.Password("s3cret"), false},
		{"key", both, "arbiter", ssh.PublicKeys(key), true},
		{"unknown key", both, "arbiter", ssh.PublicKeys(other), false},
		{"key for another user", both, "root", ssh.PublicKeys(key), false},
		{"key only: key", keyOnly, "arbiter", ssh.PublicKeys(key), true},
		{"key only: empty password", keyOnly, "arbiter", ssh.Password(""), false},
		{"password only: any key", passwordOnly, "arbiter", ssh.PublicKeys(key), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(t, tt.server, tt.user, tt.auth)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("login succeeded = %v (%v), want %v", err == nil, err, tt.ok)
			}
		})
	}
}

func TestWhoListsHeldSessions(t *testing.T) {
	var mu sync.Mutex
	var commands []string
	s := listen(t, sshsim.Options{User: "arbiter", Password: "s3cret", Exec: func(c string) {
		mu.Lock()
		defer mu.Unlock()
		commands = append(commands, c)
	}})
	s.SetExtra("space    pts/3        2025-03-01 11:00 (127.0.0.2)")

	// A terminal session that stays, as the active site holds.
	sess := session(t, s)
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"127.0.0.1"}, s.Sessions()); diff != "" {
		t.Errorf("sessions held (-want +got):\n%s", diff)
	}

	// A look, as the standby site takes: its own connection is listed too.
	lines := look(t, s)
	if len(lines) != 3 {
		t.Fatalf("who printed %d lines, want 2 sessions and 1 extra:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines[:2] {
		if !strings.HasPrefix(l, "arbiter  pts/") || !strings.HasSuffix(l, "(127.0.0.1)") {
			t.Errorf("session line %q, want arbiter from 127.0.0.1", l)
		}
	}
	if got, want := lines[2], "space    pts/3        2025-03-01 11:00 (127.0.0.2)"; got != want {
		t.Errorf("last line %q, want the extra %q", got, want)
	}
	mu.Lock()
	if diff := cmp.Diff([]string{"who"}, commands); diff != "" {
		t.Errorf("commands seen (-want +got):\n%s", diff)
	}
	mu.Unlock()

	// Close drops the held session.
	s.Close()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the held session outlived Close")
	}
	for deadline := time.Now().Add(5 * time.Second); len(s.Sessions()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sessions %v still held after Close", s.Sessions())
		}
	}
}

func TestWhoListsTerminalsAsUtmp(t *testing.T) {
	byName := func(string) string { return "site-a.example" }
	tests := []struct {
		name      string
		o         sshsim.Options
		ptyOK     bool
		wantLines []string // who as the looker, which holds no terminal, sees it
	}{
		{"every connection", sshsim.Options{}, true, []string{"(127.0.0.1)", "(127.0.0.1)"}},
		{"every connection by name", sshsim.Options{Origin: byName}, true, []string{"(site-a.example)", "(site-a.example)"}},
		{"terminals only", sshsim.Options{TerminalsOnly: true}, true, []string{"(127.0.0.1)"}},
		{"terminals only by name", sshsim.Options{TerminalsOnly: true, Origin: byName}, true, []string{"(site-a.example)"}},
		{"no terminal", sshsim.Options{TerminalsOnly: true, NoTerminal: true}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.User, tt.o.Password = "arbiter", "s3cret"
			s := listen(t, tt.o)
			sess := session(t, s)
			err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
			if (err == nil) != tt.ptyOK {
				t.Fatalf("pty granted = %v (%v), want %v", err == nil, err, tt.ptyOK)
			}
			if err := sess.Shell(); err != nil {
				t.Fatal(err)
			}
			if tt.ptyOK {
				// A session has one terminal; a second request is refused.
				if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
					t.Error("a second pty on one session was granted")
				}
			}

			var got []string
			for _, l := range look(t, s) {
				if !strings.HasPrefix(l, "arbiter  pts/") {
					t.Errorf("line %q, want a session of arbiter", l)
				}
				got = append(got, l[strings.LastIndex(l, " ")+1:])
			}
			if diff := cmp.Diff(tt.wantLines, got); diff != "" {
				t.Errorf("origins listed (-want +got):\n%s", diff)
			}
			if n := len(s.Sessions()); n != 2 {
				t.Errorf("Sessions lists %d connections, want both, listed or not", n)
			}
		})
	}
}
