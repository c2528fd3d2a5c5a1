package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"time"
)

// Verify re-hashes every file of local backup id against its manifest.
func Verify(dir, id string) (*Manifest, error) {
	m, err := LoadBackup(dir, id)
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		p := filepath.Join(dir, "backups", id, filesDir, e.Name())
		ok, err := matches(p, e)
		if err != nil {
			return nil, &FileError{Path: p, Err: err}
		}
		if !ok {
			return nil, &FileError{Path: p, Err: fmt.Errorf("%w: content, size or mode differ from the manifest", ErrChecksum)}
		}
	}
	return m, nil
}

// RestoreNewest writes the newest local backup that passes verification
// back to its files' original paths under root ("/" in production), each
// atomically and with its mode and times. A damaged backup is skipped for
// the next older one, so a restore never writes a file that fails its
// checksum.
func RestoreNewest(ctx context.Context, dir, root string, log *slog.Logger) (*Manifest, error) {
	ids, err := Backups(dir)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	for _, id := range slices.Backward(ids) {
		m, err := Verify(dir, id)
		if err != nil {
			log.Warn("backup fails verification; trying an older one", "backup", id, "err", err)
			continue
		}
		opts := FetchOptions{TransferTimeout: 24 * time.Hour, IdleTimeout: time.Hour}
		for _, e := range m.Entries {
			src := filepath.Join(dir, "backups", id, filesDir, e.Name())
			open := func(_ context.Context, offset int64) (io.ReadCloser, error) { return openAt(src, offset) }
			if _, _, err := writeVerified(ctx, filepath.Join(root, e.Path), e, open, opts, syncEach); err != nil {
				return nil, &FileError{Path: e.Path, Err: fmt.Errorf("restore from backup %s: %w", id, err)}
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w in %s (%d backups checked)", ErrNoGoodBackup, dir, len(ids))
}

// RetryOptions bound the repair of a failed fetch.
type RetryOptions struct {
	Attempts int
	// Base doubles after each failure, up to Max.
	Base, Max time.Duration
}

// FetchWithRetry runs Fetch until it succeeds, fails for a reason a retry
// cannot repair (disk full, bad manifest, nothing published), or uses up
// ro.Attempts. Each attempt resumes what the previous one received.
func FetchWithRetry(ctx context.Context, src Source, opts FetchOptions, ro RetryOptions) (*FetchResult, int, error) {
	wait := ro.Base
	for attempt := 1; ; attempt++ {
		res, err := Fetch(ctx, src, opts)
		if err == nil || attempt >= ro.Attempts || !retryable(err) || ctx.Err() != nil {
			return res, attempt, err
		}
		opts.Log.Warn("fetch failed; retrying", "attempt", attempt, "in", wait, "file", FailedFile(err), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, attempt, err
		case <-t.C:
		}
		wait = min(2*wait, ro.Max)
	}
}

func retryable(err error) bool {
	return !errors.Is(err, ErrDiskFull) && !errors.Is(err, ErrBadManifest) && !errors.Is(err, ErrNoBackup)
}
