package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// opener opens a file's content at offset, for a fetch or a local copy.
type opener func(ctx context.Context, offset int64) (io.ReadCloser, error)

// Durability of one written file.
const (
	// syncEach fsyncs the file and its directory before returning: a
	// restore writes straight into place.
	syncEach = true
	// syncLater leaves both to one syncfs over the staging directory
	// before it is renamed into place; thousands of small files would
	// otherwise cost two fsyncs each. A crash before that leaves files the
	// next attempt re-hashes and refetches if they are damaged.
	syncLater = false
)

// writeVerified writes e's content to dst: into a temporary ".<name>.part"
// in the same directory, verified against e.SHA256, fsynced, given e's
// mode and times, then renamed over dst. A part file left by a cut
// transfer is hashed and continued from its end, not fetched again.
func writeVerified(ctx context.Context, dst string, e Entry, open opener, opts FetchOptions, durable bool) (fetched, resumed int64, err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, 0, diskErr(dir, err)
	}
	part := filepath.Join(dir, "."+filepath.Base(dst)+".part")
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, 0, diskErr(part, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	h := sha256.New()
	n, err := resumePart(f, h, e.Size)
	if err != nil {
		return 0, 0, err
	}
	if n < e.Size {
		copied, err := transfer(ctx, f, h, e, n, open, opts)
		fetched = copied
		if err != nil {
			if errors.Is(err, ErrChecksum) {
				_ = os.Remove(part)
			}
			return fetched, n, err
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		// A bad part cannot be repaired by resuming it; start over.
		_ = os.Remove(part)
		return fetched, n, fmt.Errorf("%w: got sha256 %s, manifest says %s", ErrChecksum, got, e.SHA256)
	}
	if err := f.Chmod(e.Mode.Perm()); err != nil {
		return fetched, n, err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fetched, n, diskErr(part, err)
		}
	}
	if err := f.Close(); err != nil {
		f = nil
		return fetched, n, diskErr(part, err)
	}
	f = nil
	if err := os.Chtimes(part, e.ModTime, e.ModTime); err != nil {
		return fetched, n, err
	}
	if err := os.Rename(part, dst); err != nil {
		return fetched, n, err
	}
	if !durable {
		return fetched, n, nil
	}
	return fetched, n, diskErr(dir, syncDir(dir))
}

// resumePart hashes what a part file already holds and positions f after
// it; a part longer than the file it stands for is discarded.
func resumePart(f *os.File, h hash.Hash, size int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := st.Size()
	if n > size {
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		n = 0
	}
	if n > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
			return 0, fmt.Errorf("read partial file: %w", err)
		}
	}
	if _, err := f.Seek(n, io.SeekStart); err != nil {
		return 0, err
	}
	return n, nil
}

// transfer appends e's content from offset to f, bounded by the transfer
// and idle timeouts.
func transfer(ctx context.Context, f *os.File, h hash.Hash, e Entry, offset int64, open opener, opts FetchOptions) (int64, error) {
	tctx, cancel := context.WithTimeout(ctx, opts.TransferTimeout)
	defer cancel()
	ictx, icancel := context.WithCancelCause(tctx)
	defer icancel(nil)
	idle := time.AfterFunc(opts.IdleTimeout, func() {
		icancel(fmt.Errorf("%w: no data for %s", ErrStalled, opts.IdleTimeout))
	})
	defer idle.Stop()

	r, err := open(ictx, offset)
	if err != nil {
		return 0, timeoutErr(ctx, ictx, opts, fmt.Errorf("open: %w", err))
	}
	defer r.Close()
	pw := &progress{w: io.MultiWriter(f, h), idle: idle, timeout: opts.IdleTimeout, e: e, at: offset, fn: opts.Progress, path: f.Name()}
	// One byte past the expected size tells a longer blob from a match.
	copied, err := io.Copy(pw, io.LimitReader(r, e.Size-offset+1))
	if err != nil {
		if pw.werr != nil {
			return copied, diskErr(f.Name(), pw.werr)
		}
		return copied, timeoutErr(ctx, ictx, opts, err)
	}
	switch total := offset + copied; {
	case total > e.Size:
		return copied, fmt.Errorf("%w: content longer than the manifest's %d bytes", ErrChecksum, e.Size)
	case total < e.Size:
		return copied, fmt.Errorf("transfer ended after %d of %d bytes: %w", total, e.Size, io.ErrUnexpectedEOF)
	}
	return copied, nil
}

// timeoutErr says which bound ended a transfer, if one did.
func timeoutErr(parent, ictx context.Context, opts FetchOptions, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	cause := context.Cause(ictx)
	switch {
	case errors.Is(cause, ErrStalled):
		return fmt.Errorf("%w (%v)", cause, err)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("transfer exceeded core.scpTimeout %s: %w", opts.TransferTimeout, err)
	}
	return err
}

type progress struct {
	w       io.Writer
	werr    error
	idle    *time.Timer
	timeout time.Duration
	e       Entry
	at      int64
	fn      func(Entry, int64)
	path    string
}

func (p *progress) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		p.werr = err
		return n, err
	}
	p.at += int64(n)
	p.idle.Reset(p.timeout)
	if p.fn != nil {
		p.fn(p.e, p.at)
	}
	return n, nil
}

// matches reports whether path already holds e (same size, mode, digest).
func matches(path string, e Entry) (bool, error) {
	st, err := os.Stat(path)
	if err != nil || st.Size() != e.Size || st.Mode().Perm() != e.Mode.Perm() {
		return false, err
	}
	sum, err := fileSum(path)
	return sum == e.SHA256, err
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes data to path through a synced temporary file in
// the same directory and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncFS flushes the whole file system holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// diskErr turns "no space" into ErrDiskFull with the path and the fix.
func diskErr(path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: writing %s: %w; free space there or lower file.backup.maxCount", ErrDiskFull, path, err)
	}
	return err
}

// checkFree fails early when dir's file system cannot hold need bytes, so
// a backup that cannot fit does not fill the disk first.
func checkFree(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // unknown: let the writes tell
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need > free {
		return fmt.Errorf("%w: %s has %d bytes free, the backup needs %d more; free space there or lower file.backup.maxCount", ErrDiskFull, dir, free, need)
	}
	return nil
}
