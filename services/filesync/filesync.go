// Package filesync copies configuration and RRD files from the active site
// to the standby on seed 000's schedule: the active site publishes backups
// (a manifest and content-addressed blobs) into a JetStream object store or
// a directory served over SFTP; the standby fetches the newest, verifies
// every file by SHA-256, writes it atomically and keeps
// file.backup.maxCount of them, ready to restore.
package filesync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/filesync/internal/backup"
	"github.com/drwatch/drwatch/services/filesync/internal/dirstore"
	"github.com/drwatch/drwatch/services/filesync/internal/objstore"
	"github.com/drwatch/drwatch/services/filesync/internal/schedule"
	"github.com/drwatch/drwatch/services/filesync/internal/sftpstore"
)

// Transports.
const (
	ObjectStore = "objectstore"
	SFTP        = "sftp"
)

// Options are the service's settings, built from the site configuration.
type Options struct {
	Site, Peer string
	// Paths are files, directories and globs to back up.
	Paths []string
	// Dir holds the standby's backups and the active site's outgoing/.
	Dir       string
	Transport string
	MaxCount  int
	// Backup is when the active site publishes; Restore when the standby fetches.
	Backup, Restore schedule.Schedule
	// TransferTimeout bounds one file's transfer (core.scpTimeout).
	TransferTimeout time.Duration
	// IdleTimeout fails a transfer that receives nothing for this long.
	IdleTimeout time.Duration
	Retry       backup.RetryOptions
	SFTP        config.FileSFTP
}

// DefaultOptions are the seed's defaults plus the retry policy.
func DefaultOptions() Options {
	return Options{
		Transport:       ObjectStore,
		MaxCount:        3,
		TransferTimeout: 120 * time.Second,
		IdleTimeout:     30 * time.Second,
		Retry:           backup.RetryOptions{Attempts: 5, Base: 5 * time.Second, Max: 2 * time.Minute},
	}
}

// OptionsFrom reads the file and core sections of cfg.
func OptionsFrom(cfg *config.Config) (Options, error) {
	o := DefaultOptions()
	o.Site, o.Peer = cfg.Site.Name, cfg.Site.Peer
	o.Paths = cfg.File.Paths
	o.Dir = cfg.File.Dir
	o.Transport = cfg.File.Transport
	o.MaxCount = cfg.File.Backup.MaxCount
	o.TransferTimeout = cfg.Core.SCPTimeout.D()
	o.IdleTimeout = min(o.IdleTimeout, o.TransferTimeout)
	o.SFTP = cfg.File.SFTP
	var err error
	if o.Backup, err = schedule.Parse("file.backup", cfg.File.Backup.HoursOfDay, cfg.File.Backup.DaysOfWeek); err != nil {
		return o, err
	}
	if o.Restore, err = schedule.Parse("file.restore", cfg.File.Restore.HoursOfDay, cfg.File.Restore.DaysOfWeek); err != nil {
		return o, err
	}
	return o, o.validate()
}

func (o Options) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if o.Site == "" || o.Peer == "" {
		bad("site.name/site.peer", "both are required: the standby reads the peer's backups")
	}
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		bad("file.dir", "%q must be an absolute directory", o.Dir)
	}
	for i, p := range o.Paths {
		if !filepath.IsAbs(p) {
			bad(fmt.Sprintf("file.paths[%d]", i), "%q must be an absolute path or glob", p)
		}
	}
	if o.Transport != ObjectStore && o.Transport != SFTP {
		bad("file.transport", "%q must be objectstore or sftp", o.Transport)
	}
	if o.MaxCount < 1 {
		bad("file.backup.maxCount", "%d must be at least 1", o.MaxCount)
	}
	if o.TransferTimeout <= 0 {
		bad("core.scpTimeout", "%s must be positive", o.TransferTimeout)
	}
	if o.IdleTimeout <= 0 || o.IdleTimeout > o.TransferTimeout {
		bad("idle timeout", "%s must be positive and at most core.scpTimeout %s", o.IdleTimeout, o.TransferTimeout)
	}
	if o.Retry.Attempts < 1 || o.Retry.Base <= 0 || o.Retry.Max < o.Retry.Base {
		bad("retry", "%+v needs attempts >= 1 and 0 < base <= max", o.Retry)
	}
	return errors.Join(errs...)
}

// Run backs files up while this site is active and fetches the peer's
// backups while it is standby, until ctx ends.
func Run(ctx context.Context, deps service.Deps) error {
	opts, err := OptionsFrom(deps.Config)
	if err != nil {
		return fmt.Errorf("filesync: %w", err)
	}
	log := deps.Log.With("component", "filesync", "transport", opts.Transport)
	sink, src, closeFn, err := transports(ctx, opts, deps)
	if err != nil {
		return err
	}
	defer closeFn()
	view, err := service.WatchRole(ctx, deps, "filesync-role")
	if err != nil {
		return err
	}
	s := &Syncer{Opts: opts, Sink: sink, Source: src, Role: view, Now: deps.Now, Log: log,
		Publish: func(ctx context.Context, ev events.Event) error {
			_, err := deps.Bus.Publish(ctx, ev, nil)
			return err
		}}
	return s.Run(ctx)
}

// transports builds the sink this site publishes into and the source it
// reads the peer's backups from.
func transports(ctx context.Context, o Options, deps service.Deps) (backup.Sink, backup.Source, func(), error) {
	switch o.Transport {
	case SFTP:
		sink, err := dirstore.New(filepath.Join(o.Dir, "outgoing"))
		if err != nil {
			return nil, nil, nil, err
		}
		auth, err := sshAuth(o.SFTP)
		if err != nil {
			return nil, nil, nil, err
		}
		remote := o.SFTP.RemoteDir
		if remote == "" {
			remote = filepath.Join(o.Dir, "outgoing")
		}
		src, err := sftpstore.New(sftpstore.Config{
			Addr:        net.JoinHostPort(o.SFTP.Host, strconv.Itoa(o.SFTP.Port)),
			User:        o.SFTP.Username,
			Auth:        auth,
			KnownHosts:  o.SFTP.KnownHosts,
			RemoteDir:   remote,
			DialTimeout: o.TransferTimeout,
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("file.sftp: %w", err)
		}
		return sink, src, func() { src.Close() }, nil
	default:
		sink, err := objstore.Create(ctx, deps.Bus.JetStream())
		if err != nil {
			return nil, nil, nil, err
		}
		peer, err := jetstream.NewWithDomain(deps.Bus.Conn(), o.Peer)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("jetstream for peer domain %q: %w", o.Peer, err)
		}
		return sink, &peerBucket{js: peer}, func() {}, nil
	}
}

func sshAuth(c config.FileSFTP) ([]ssh.AuthMethod, error) {
	var auth []ssh.AuthMethod
	if c.PrivateKey != "" {
		pem, err := os.ReadFile(c.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("file.sftp.privateKey: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("file.sftp.privateKey %s: %w (an unencrypted OpenSSH or PEM key is needed)", c.PrivateKey, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if c.Password.IsSet() {
		auth = append(auth, ssh.Password(c.Password.Value()))
	}
	return auth, nil
}

// peerBucket opens the peer's bucket on first use, so a standby can start
// while the link is down.
type peerBucket struct {
	js    jetstream.JetStream
	mu    sync.Mutex
	store *objstore.Store
}

func (p *peerBucket) get(ctx context.Context) (*objstore.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.store == nil {
		s, err := objstore.Open(ctx, p.js)
		if err != nil {
			return nil, err
		}
		p.store = s
	}
	return p.store, nil
}

func (p *peerBucket) ManifestIDs(ctx context.Context) ([]string, error) {
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.ManifestIDs(ctx)
}

func (p *peerBucket) Manifest(ctx context.Context, id string) ([]byte, error) {
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Manifest(ctx, id)
}

func (p *peerBucket) OpenBlob(ctx context.Context, sum string, offset int64) (io.ReadCloser, error) {
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.OpenBlob(ctx, sum, offset)
}

// RoleSource tells the syncer this site's role.
type RoleSource interface {
	Current() (events.Role, events.Epoch)
	Changed() <-chan struct{}
}

// Syncer runs backups (active) and fetches (standby) on their schedules.
type Syncer struct {
	Opts    Options
	Sink    backup.Sink
	Source  backup.Source
	Role    RoleSource
	Now     func() time.Time
	Log     *slog.Logger
	Publish func(context.Context, events.Event) error
}

// Run loops until ctx ends. A run happens at most once per allowed hour
// slot; a role change re-decides at once.
func (s *Syncer) Run(ctx context.Context) error {
	var lastBackup, lastFetch time.Time
	if ids, err := s.Sink.ManifestIDs(ctx); err == nil && len(ids) > 0 {
		// A restart does not publish again within the same slot.
		lastBackup, _ = backup.IDTime(slices.Max(ids))
	}
	for {
		role, _ := s.Role.Current()
		changed := s.Role.Changed()
		now := s.Now()
		var next time.Time
		switch role {
		case events.RoleActive:
			if schedule.Due(s.Opts.Backup, now, lastBackup) {
				s.BackupOnce(ctx)
				lastBackup = now
			}
			next = schedule.Next(s.Opts.Backup, now)
		case events.RoleStandby:
			if schedule.Due(s.Opts.Restore, now, lastFetch) {
				s.FetchOnce(ctx)
				lastFetch = now
			}
			next = schedule.Next(s.Opts.Restore, now)
		}
		if !s.wait(ctx, changed, next) {
			return nil
		}
	}
}

// wait sleeps until next (forever when zero), a role change or ctx's end;
// it reports whether to go on.
func (s *Syncer) wait(ctx context.Context, changed <-chan struct{}, next time.Time) bool {
	var wake <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(max(next.Sub(s.Now()), 0))
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-changed:
	case <-wake:
	}
	return true
}

// BackupOnce publishes one backup of the configured paths.
func (s *Syncer) BackupOnce(ctx context.Context) {
	start := time.Now()
	res, err := backup.Publish(ctx, s.Sink, backup.PublishOptions{
		Site: s.Opts.Site, Paths: s.Opts.Paths, MaxCount: s.Opts.MaxCount,
		TransferTimeout: s.Opts.TransferTimeout, Now: s.Now, Log: s.Log,
	})
	if err != nil {
		s.Log.Error("backup failed", "file", backup.FailedFile(err), "err", err)
		s.emit(ctx, events.FileSyncFailed{Transport: s.Opts.Transport, File: backup.FailedFile(err), Reason: "backup on the active site: " + err.Error(), Attempts: 1})
		return
	}
	s.Log.Info("backup published", "backup", res.Manifest.ID, "files", len(res.Manifest.Entries),
		"bytes", res.Manifest.Bytes(), "uploaded", res.Uploaded, "uploadedBytes", res.UploadedBytes, "took", time.Since(start))
}

// FetchOnce fetches the peer's newest backup, retrying with back-off.
func (s *Syncer) FetchOnce(ctx context.Context) {
	start := time.Now()
	res, attempts, err := backup.FetchWithRetry(ctx, s.Source, backup.FetchOptions{
		Dir: s.Opts.Dir, MaxCount: s.Opts.MaxCount, TransferTimeout: s.Opts.TransferTimeout,
		IdleTimeout: s.Opts.IdleTimeout, Log: s.Log,
	}, s.Opts.Retry)
	if ctx.Err() != nil {
		return // stopping: the next start resumes
	}
	if err != nil {
		s.Log.Error("fetch from the active site failed", "file", backup.FailedFile(err), "attempts", attempts, "err", err)
		s.emit(ctx, events.FileSyncFailed{Transport: s.Opts.Transport, File: backup.FailedFile(err), Reason: err.Error(), Attempts: attempts})
		return
	}
	if res.UpToDate {
		s.Log.Debug("standby already holds the newest backup", "backup", res.ID)
		return
	}
	took := time.Since(start)
	s.Log.Info("backup fetched", "backup", res.ID, "files", res.Files, "bytes", res.Bytes,
		"fetched", res.Fetched, "reused", res.Reused, "resumed", res.Resumed, "took", took)
	s.emit(ctx, events.FileSyncCompleted{Transport: s.Opts.Transport, Files: res.Files, Bytes: res.Bytes, DurationSeconds: took.Seconds()})
}

func (s *Syncer) emit(ctx context.Context, ev events.Event) {
	if f, ok := ev.(events.FileSyncFailed); ok {
		f.Reason, f.File = clip(f.Reason), clip(f.File)
		ev = f
	}
	if err := s.Publish(ctx, ev); err != nil {
		s.Log.Error("publish event failed", "event", ev.EventType(), "err", err)
	}
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}

// Restored says what Restore wrote.
type Restored struct {
	ID    string
	Files int
	Bytes int64
}

// Restore writes the newest local backup that passes verification back to
// its files' paths under root ("/" on a real standby), for an operator
// command or the orchestrator when this site takes over.
func Restore(ctx context.Context, cfg *config.Config, root string, log *slog.Logger) (*Restored, error) {
	m, err := backup.RestoreNewest(ctx, cfg.File.Dir, root, log.With("component", "filesync"))
	if err != nil {
		return nil, err
	}
	return &Restored{ID: m.ID, Files: len(m.Entries), Bytes: m.Bytes()}, nil
}
