package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/pki"
)

func TestIssue(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("drwatch a/b CA", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CertPEM holds no certificate")
	}
	tests := []struct {
		name    string
		hosts   []string
		wantDNS []string
		wantIPs []string
	}{
		{"addresses and names", []string{"10.0.0.1", "site-a.example", "::1", "localhost"}, []string{"site-a.example", "localhost"}, []string{"10.0.0.1", "::1"}},
		{"a name only", []string{"a"}, []string{"a"}, nil},
		{"an address only", []string{"127.0.0.1"}, nil, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Issue("drwatch site a", tt.hosts, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
			if err != nil {
				t.Fatalf("certificate and key do not pair: %v", err)
			}
			cert := pair.Leaf
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if diff := cmp.Diff(tt.wantDNS, cert.DNSNames); diff != "" {
				t.Errorf("DNS names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantIPs, ips); diff != "" {
				t.Errorf("IP addresses (-want +got):\n%s", diff)
			}
			// One certificate serves both ends of a link.
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				for _, h := range tt.hosts {
					if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
						t.Errorf("verify for %s as %v: %v", h, usage, err)
					}
				}
			}
		})
	}
}

func TestIssueNeedsAHost(t *testing.T) {
	ca, err := pki.NewCA("ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("site", nil, time.Now(), time.Hour); err == nil {
		t.Fatal("a certificate naming no host was issued")
	}
}

func TestLoadCA(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("drwatch a/b CA", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	for path, data := range map[string][]byte{certPath: ca.CertPEM, keyPath: ca.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := pki.LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("loaded another CA certificate than was written")
	}
	// The loaded CA signs what the first one's root verifies.
	leaf, err := loaded.Issue("drwatch site b", []string{"127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", CurrentTime: now}); err != nil {
		t.Errorf("a certificate from the loaded CA does not verify: %v", err)
	}

	notPEM := filepath.Join(dir, "garbage")
	if err := os.WriteFile(notPEM, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, cert, key string }{
		{"missing certificate", filepath.Join(dir, "none.pem"), keyPath},
		{"certificate not PEM", notPEM, keyPath},
		{"key not PEM", certPath, notPEM},
		{"certificate for a key", keyPath, keyPath},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pki.LoadCA(tt.cert, tt.key); err == nil {
				t.Error("LoadCA succeeded")
			}
		})
	}
}
