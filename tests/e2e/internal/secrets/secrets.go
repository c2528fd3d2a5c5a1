// Package secrets makes the key material of the example deployment: a CA
// and one certificate per site for the TLS leafnode link, each site's NATS
// keys and the pair's leafnode key, an SSH key per site for logging in to
// arbiters, a host key per arbiter, and the known_hosts and authorized_keys
// files that tie them together. It stands in for `drwatch init` in the
// example and the end-to-end suite.
package secrets

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/pki"
)

// Site is one site's identity: its name and the addresses its certificate
// must cover (the peer dials one of them).
type Site struct {
	Name  string
	Hosts []string
}

// Options say what to make.
type Options struct {
	Dir   string
	Sites []Site
	// Arbiters are the arbiters' addresses as the sites dial them ("host"
	// or "host:port"); arbiter i's host key is arbiter<i+1>_host_key.
	Arbiters []string
	// Validity of the certificates; 0 means ten years.
	Validity time.Duration
}

// Files lists, relative to Dir, what Generate writes.
//
//	ca.pem                         the leafnode CA
//	<site>.pem, <site>-key.pem     the site's leafnode certificate (server and client)
//	nats-<site>/<identity>.nk      the site's NATS keys (nats.embedded.keysDir), one per bus identity
//	leaf.nk                        the pair's leafnode key (nats.embedded.leafnode.key)
//	<site>_ssh_key                 the site's SSH key (OpenSSH form)
//	authorized_keys                every site's public SSH key
//	arbiter<N>_host_key            arbiter N's ed25519 host key
//	known_hosts                    every arbiter's host key by address
//
// Generate writes them all, keeping none of the previous ones: keys that
// must match each other are made together. The NATS keys live here rather
// than in a site's store because every container of a site mounts this
// directory: drwatch's and the PostgreSQL container's dbmonitor connect
// with their own keys of the same site.
func Generate(o Options) error {
	if o.Dir == "" || len(o.Sites) == 0 {
		return errors.New("secrets: a directory and at least one site are required")
	}
	if o.Validity == 0 {
		o.Validity = 10 * 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	now := time.Now()
	ca, err := pki.NewCA("drwatch example leafnode CA", now, o.Validity)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := writeFile(filepath.Join(o.Dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	leaf := filepath.Join(o.Dir, bus.LeafKeyFile)
	if err := os.Remove(leaf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := bus.WriteSeed(leaf); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	var authorized strings.Builder
	for _, s := range o.Sites {
		keys := filepath.Join(o.Dir, NATSKeys(s.Name))
		if err := os.RemoveAll(keys); err != nil {
			return fmt.Errorf("secrets: %w", err)
		}
		if _, err := bus.EnsureKeys(keys, bus.Identities); err != nil {
			return fmt.Errorf("secrets: %s: %w", s.Name, err)
		}
		// One certificate, made as drwatch init makes it, serves both ends of
		// the leafnode; the site's name is among the names it covers.
		leaf, err := ca.Issue("drwatch site "+s.Name, append([]string{s.Name}, s.Hosts...), now, o.Validity)
		if err != nil {
			return fmt.Errorf("secrets: %s: %w", s.Name, err)
		}
		if err := writeFile(filepath.Join(o.Dir, s.Name+".pem"), leaf.CertPEM, 0o644); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(o.Dir, s.Name+"-key.pem"), leaf.KeyPEM, 0o600); err != nil {
			return err
		}
		pub, err := writeSSHKey(filepath.Join(o.Dir, s.Name+"_ssh_key"), "drwatch site "+s.Name)
		if err != nil {
			return err
		}
		authorized.WriteString(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " drwatch-site-" + s.Name + "\n")
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "authorized_keys"), []byte(authorized.String()), 0o644); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	var known strings.Builder
	for i, a := range o.Arbiters {
		pub, err := writeSSHKey(filepath.Join(o.Dir, fmt.Sprintf("arbiter%d_host_key", i+1)), fmt.Sprintf("arbiter %d", i+1))
		if err != nil {
			return err
		}
		addr := a
		if !strings.Contains(a, ":") {
			addr = net.JoinHostPort(a, "22")
		}
		known.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, pub) + "\n")
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "known_hosts"), []byte(known.String()), 0o644); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	return nil
}

// NATSKeys is the directory, relative to Dir, of site's NATS keys.
func NATSKeys(site string) string { return "nats-" + site }

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	return os.Chmod(path, mode)
}

// writeSSHKey writes a new ed25519 private key in OpenSSH form and returns
// its public half.
func writeSSHKey(path, comment string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("secrets: ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("secrets: ssh key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("secrets: ssh key: %w", err)
	}
	return sp, nil
}
