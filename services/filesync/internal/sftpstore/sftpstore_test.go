package sftpstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drwatch/drwatch/services/filesync/internal/dirstore"
	"github.com/drwatch/drwatch/services/filesync/internal/sftpstore"
	"github.com/drwatch/drwatch/services/filesync/internal/sshtest"
)

func TestHostKeyIsVerified(t *testing.T) {
	srv := sshtest.Run(t)
	root := t.TempDir()
	if _, err := dirstore.New(root); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		knownHosts string
		wantErr    error
	}{
		{"known key", srv.KnownHosts(t, srv.Addr, nil), nil},
		{"wrong key for the host", srv.KnownHosts(t, srv.Addr, sshtest.OtherKey(t)), sftpstore.ErrHostKey},
		{"host not listed", srv.KnownHosts(t, "127.0.0.2:22", nil), sftpstore.ErrHostKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sftpstore.New(sftpstore.Config{
				Addr: srv.Addr, User: "drwatch", Auth: []ssh.AuthMethod{ssh.PublicKeys(srv.Client)},
				KnownHosts: tc.knownHosts, RemoteDir: root, DialTimeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.ManifestIDs(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ManifestIDs = %v, want %v", err, tc.wantErr)
			}
			t.Logf("%v", err)
		})
	}
}

func TestMissingKnownHostsIsRefused(t *testing.T) {
	if _, err := sftpstore.New(sftpstore.Config{Addr: "127.0.0.1:22"}); err == nil {
		t.Fatal("a store without known_hosts was built")
	}
	if _, err := sftpstore.New(sftpstore.Config{Addr: "127.0.0.1:22", KnownHosts: "/nonexistent/known_hosts"}); err == nil {
		t.Fatal("a store with an unreadable known_hosts was built")
	}
}
