package dbmonitor

import (
	"strings"
	"testing"
)

func TestVerifiedPeer(t *testing.T) {
	tests := []struct {
		dsn, ca string
		ok      bool
	}{
		{"postgres://u:p@peer:5432/db?sslmode=disable", "", true},
		{"postgres://u:p@peer:5432/db?sslmode=verify-full&sslrootcert=/ca.pem", "/ca.pem", true},
		{"host=peer user=u sslmode=verify-ca sslrootcert=/ca.pem", "/ca.pem", true},
		{"postgres://u:p@peer:5432/db?sslmode=require", "/ca.pem", false},
		{"postgres://u:p@peer:5432/db", "/ca.pem", false},
	}
	for _, tc := range tests {
		err := verifiedPeer(tc.dsn, tc.ca)
		if (err == nil) != tc.ok {
			t.Errorf("verifiedPeer(%q, %q) = %v, want ok=%v", tc.dsn, tc.ca, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "pgsql.peerDsn") || !strings.Contains(err.Error(), "sslmode=verify-full") || strings.Contains(err.Error(), "u:p@")) {
			t.Errorf("verifiedPeer error should name the field and the fix, not the DSN: %v", err)
		}
	}
}
