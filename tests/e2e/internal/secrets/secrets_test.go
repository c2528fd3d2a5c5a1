package secrets_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/tests/e2e/internal/secrets"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	sites := []secrets.Site{{Name: "a", Hosts: []string{"172.31.0.10"}}, {Name: "b", Hosts: []string{"172.31.0.20", "site-b.example"}}}
	if err := secrets.Generate(secrets.Options{Dir: dir, Sites: sites, Arbiters: []string{"172.31.0.31", "172.31.0.32:2222"}}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(read("ca.pem")) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, s := range sites {
		pair, err := tls.X509KeyPair(read(s.Name+".pem"), read(s.Name+"-key.pem"))
		if err != nil {
			t.Fatalf("site %s: certificate and key do not pair: %v", s.Name, err)
		}
		// The leafnode's listener presents it as server, its dialler as client.
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			for _, h := range append([]string{s.Name}, s.Hosts...) {
				if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now()}); err != nil {
					t.Errorf("site %s: verify for %s as %v: %v", s.Name, h, usage, err)
				}
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, s.Name+"-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("site %s: key file mode %v (%v), want 0600", s.Name, fi.Mode().Perm(), err)
		}
		if _, err := ssh.ParsePrivateKey(read(s.Name + "_ssh_key")); err != nil {
			t.Errorf("site %s: SSH key: %v", s.Name, err)
		}
		// Every identity's NATS key is there, private, and loads as the
		// services load it; no site shares one with the other.
		keys := filepath.Join(dir, secrets.NATSKeys(s.Name))
		for _, id := range bus.Identities {
			if m := mode(t, bus.KeyFile(keys, id)); m != 0o600 {
				t.Errorf("site %s: NATS key of %s: mode %v, want 0600", s.Name, id, m)
			}
			if _, err := bus.ClientAuth(keys, id); err != nil {
				t.Errorf("site %s: %v", s.Name, err)
			}
		}
	}
	if string(read(secrets.NATSKeys("a")+"/cli.nk")) == string(read(secrets.NATSKeys("b")+"/cli.nk")) {
		t.Error("sites a and b share a NATS key")
	}
	if m := mode(t, filepath.Join(dir, bus.LeafKeyFile)); m != 0o600 {
		t.Errorf("leafnode key: mode %v, want 0600", m)
	}

	// Each arbiter's host key is the one known_hosts expects at its address.
	cb, err := knownhosts.New(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for i, addr := range []string{"172.31.0.31:22", "172.31.0.32:2222"} {
		hk, err := ssh.ParsePrivateKey(read(fmt.Sprintf("arbiter%d_host_key", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		remote, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := cb(addr, remote, hk.PublicKey()); err != nil {
			t.Errorf("arbiter %d at %s: %v", i+1, addr, err)
		}
	}

	rest := read("authorized_keys")
	for range sites {
		if _, _, _, rest, err = ssh.ParseAuthorizedKey(rest); err != nil {
			t.Fatalf("authorized_keys: %v", err)
		}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
