// Package sftpstore reads the active site's published backups (the
// dirstore layout) over SFTP, the seed's SCP way. Host keys are verified
// against a known_hosts file; there is no option to skip that.
package sftpstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drwatch/drwatch/services/filesync/internal/dirstore"
)

// ErrHostKey means the peer's host key is not the one known_hosts holds.
var ErrHostKey = errors.New("peer SSH host key not trusted")

// Config says how to reach the active site's SSH server.
type Config struct {
	// Addr is host:port.
	Addr string
	User string
	Auth []ssh.AuthMethod
	// KnownHosts is the known_hosts file that must list the peer's key.
	KnownHosts string
	// RemoteDir is the peer's published backup directory.
	RemoteDir string
	// DialTimeout bounds connecting and the SSH handshake.
	DialTimeout time.Duration
}

// Store is a backup.Source over one SSH connection, dialled on first use
// and again after any failure.
type Store struct {
	cfg     Config
	hostKey ssh.HostKeyCallback

	mu     sync.Mutex
	conn   *ssh.Client
	client *sftp.Client
}

// New checks cfg and reads the known_hosts file; it does not dial.
func New(cfg Config) (*Store, error) {
	if cfg.KnownHosts == "" {
		return nil, errors.New("sftp: a known_hosts file is required to verify the peer")
	}
	cb, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sftp: read known_hosts %s: %w", cfg.KnownHosts, err)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	return &Store{cfg: cfg, hostKey: cb}, nil
}

// Close ends the connection, if any.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	s.client.Close()
	err := s.conn.Close()
	s.conn, s.client = nil, nil
	return err
}

func (s *Store) dial(ctx context.Context) (*ssh.Client, *sftp.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, s.client, nil
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: dial %s: %w", s.cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(nc, s.cfg.Addr, &ssh.ClientConfig{
		User:            s.cfg.User,
		Auth:            s.cfg.Auth,
		HostKeyCallback: s.hostKey,
		Timeout:         s.cfg.DialTimeout,
	})
	if err != nil {
		nc.Close()
		if _, ok := errors.AsType[*knownhosts.KeyError](err); ok || strings.Contains(err.Error(), "knownhosts") {
			return nil, nil, fmt.Errorf("%w: %s: %v; check file.sftp.knownHosts (%s)", ErrHostKey, s.cfg.Addr, err, s.cfg.KnownHosts)
		}
		return nil, nil, fmt.Errorf("sftp: ssh to %s as %s: %w", s.cfg.Addr, s.cfg.User, err)
	}
	_ = nc.SetDeadline(time.Time{})
	conn := ssh.NewClient(c, chans, reqs)
	client, err := sftp.NewClient(conn, sftp.UseConcurrentReads(true))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sftp: start subsystem on %s: %w", s.cfg.Addr, err)
	}
	s.conn, s.client = conn, client
	return conn, client, nil
}

// drop closes conn if it is still the current one, so the next call
// redials and any read blocked on it fails now.
func (s *Store) drop(conn *ssh.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != conn {
		return
	}
	s.client.Close()
	s.conn.Close()
	s.conn, s.client = nil, nil
}

// do runs fn on the connection; ctx ending or fn failing drops it.
func (s *Store) do(ctx context.Context, fn func(*sftp.Client) error) error {
	conn, client, err := s.dial(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.drop(conn) })
	defer stop()
	if err := fn(client); err != nil {
		if !errors.Is(err, io.EOF) && !isNotExist(err) {
			s.drop(conn)
		}
		return err
	}
	return nil
}

func (s *Store) remote(rel string) string { return path.Join(s.cfg.RemoteDir, rel) }

// ManifestIDs implements backup.Source.
func (s *Store) ManifestIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.do(ctx, func(c *sftp.Client) error {
		ents, err := c.ReadDir(s.remote(dirstore.ManifestDir))
		if err != nil {
			return fmt.Errorf("sftp: list %s: %w", s.remote(dirstore.ManifestDir), err)
		}
		for _, e := range ents {
			if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Mode().IsRegular() && !strings.HasPrefix(id, ".") {
				ids = append(ids, id)
			}
		}
		return nil
	})
	return ids, err
}

// Manifest implements backup.Source.
func (s *Store) Manifest(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := s.do(ctx, func(c *sftp.Client) error {
		f, err := c.Open(s.remote(dirstore.ManifestPath(id)))
		if err != nil {
			return err
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, 256<<20))
		return err
	})
	return data, err
}

// OpenBlob implements backup.Source with a real seek, so a resumed
// transfer fetches only what it lacks.
func (s *Store) OpenBlob(ctx context.Context, sum string, offset int64) (io.ReadCloser, error) {
	conn, client, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	p := s.remote(dirstore.BlobPath(sum))
	f, err := client.Open(p)
	if err != nil {
		if !isNotExist(err) {
			s.drop(conn)
		}
		return nil, fmt.Errorf("sftp: open %s: %w", p, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	// A read blocked on a dead link ends only when the connection does.
	stop := context.AfterFunc(ctx, func() { s.drop(conn) })
	// Large reads let the client keep many requests in flight.
	return &blob{Reader: bufio.NewReaderSize(f, 1<<20), f: f, stop: stop, fail: func() { s.drop(conn) }}, nil
}

type blob struct {
	*bufio.Reader
	f    *sftp.File
	stop func() bool
	fail func()
}

func (b *blob) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.fail()
	}
	return n, err
}

func (b *blob) Close() error {
	b.stop()
	return b.f.Close()
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
