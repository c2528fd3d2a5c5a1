package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Sink is where the active site publishes backups: content-addressed blobs
// and one manifest per backup.
type Sink interface {
	HasBlob(ctx context.Context, sum string) (bool, error)
	// PutBlob stores r under sum and fails if r's SHA-256 is not sum.
	PutBlob(ctx context.Context, sum string, r io.Reader) error
	BlobSums(ctx context.Context) ([]string, error)
	DeleteBlob(ctx context.Context, sum string) error
	PutManifest(ctx context.Context, id string, data []byte) error
	ManifestIDs(ctx context.Context) ([]string, error)
	Manifest(ctx context.Context, id string) ([]byte, error)
	DeleteManifest(ctx context.Context, id string) error
}

// PublishOptions tune Publish.
type PublishOptions struct {
	Site string
	// Paths are files, directories (walked) and globs.
	Paths []string
	// MaxCount backups are kept; older ones and their unused blobs go.
	MaxCount int
	// TransferTimeout bounds one blob upload.
	TransferTimeout time.Duration
	Now             func() time.Time
	Log             *slog.Logger
}

// PublishResult says what one backup held and what it had to upload.
type PublishResult struct {
	Manifest      *Manifest
	Uploaded      int
	UploadedBytes int64
}

// Publish takes a backup of opts.Paths into sink. Unchanged files are not
// uploaded again: blobs are named by their SHA-256.
func Publish(ctx context.Context, sink Sink, opts PublishOptions) (*PublishResult, error) {
	files, err := Scan(opts.Paths)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ID: NewID(opts.Now()), Site: opts.Site, Created: opts.Now().UTC()}
	res := &PublishResult{Manifest: m}
	for _, path := range files {
		e, uploaded, err := publishFile(ctx, sink, path, opts.TransferTimeout)
		if err != nil {
			return nil, &FileError{Path: path, Err: err}
		}
		m.Entries = append(m.Entries, e)
		if uploaded {
			res.Uploaded++
			res.UploadedBytes += e.Size
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	// The manifest goes last: a backup is visible only once all its blobs are.
	if err := sink.PutManifest(ctx, m.ID, data); err != nil {
		return nil, fmt.Errorf("publish manifest %s: %w", m.ID, err)
	}
	if err := prune(ctx, sink, opts.MaxCount); err != nil {
		opts.Log.Warn("pruning old backups failed; will retry at the next backup", "err", err)
	}
	return res, nil
}

func publishFile(ctx context.Context, sink Sink, path string, timeout time.Duration) (Entry, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Entry{}, false, err
	}
	if !st.Mode().IsRegular() {
		return Entry{}, false, fmt.Errorf("not a regular file (%v)", st.Mode().Type())
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Entry{}, false, fmt.Errorf("read: %w", err)
	}
	e := Entry{Path: path, Size: n, Mode: st.Mode().Perm(), ModTime: st.ModTime().UTC(), SHA256: hex.EncodeToString(h.Sum(nil))}
	have, err := sink.HasBlob(ctx, e.SHA256)
	if err != nil {
		return Entry{}, false, fmt.Errorf("look up blob: %w", err)
	}
	if have {
		return e, false, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Entry{}, false, err
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The sink checks the digest again, so a file rewritten between the
	// two reads fails here instead of publishing a blob under a wrong name.
	if err := sink.PutBlob(tctx, e.SHA256, f); err != nil {
		return Entry{}, false, fmt.Errorf("upload: %w", err)
	}
	return e, true, nil
}

// prune keeps the newest maxCount manifests and the blobs they use.
func prune(ctx context.Context, sink Sink, maxCount int) error {
	ids, err := sink.ManifestIDs(ctx)
	if err != nil {
		return err
	}
	slices.Sort(ids)
	keep := ids
	if len(ids) > maxCount {
		keep = ids[len(ids)-maxCount:]
		for _, id := range ids[:len(ids)-maxCount] {
			if err := sink.DeleteManifest(ctx, id); err != nil {
				return fmt.Errorf("delete manifest %s: %w", id, err)
			}
		}
	}
	used := map[string]bool{}
	for _, id := range keep {
		data, err := sink.Manifest(ctx, id)
		if err != nil {
			return fmt.Errorf("read manifest %s: %w", id, err)
		}
		m, err := DecodeManifest(data)
		if err != nil {
			return err
		}
		for _, e := range m.Entries {
			used[e.SHA256] = true
		}
	}
	sums, err := sink.BlobSums(ctx)
	if err != nil {
		return err
	}
	for _, s := range sums {
		if !used[s] {
			if err := sink.DeleteBlob(ctx, s); err != nil {
				return fmt.Errorf("delete blob %s: %w", s, err)
			}
		}
	}
	return nil
}

// Scan expands paths — files, directories walked recursively, and globs —
// into the sorted absolute paths of the regular files they name. A path
// that names nothing is an error: a missing configuration file is worth
// hearing about before the standby needs it.
func Scan(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, pattern := range paths {
		if !filepath.IsAbs(pattern) {
			return nil, fmt.Errorf("file.paths: %q must be an absolute path", pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("file.paths: %q: %w", pattern, err)
		}
		if len(matches) == 0 {
			return nil, &FileError{Path: pattern, Err: errors.New("file.paths entry matches no file")}
		}
		for _, root := range matches {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type().IsRegular() {
					add(filepath.Clean(p))
					return nil
				}
				if d.Type()&fs.ModeSymlink != 0 {
					// A link to a file is backed up as its content;
					// links to directories are not followed (no loops).
					if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
						add(filepath.Clean(p))
					}
				}
				return nil
			})
			if err != nil {
				return nil, &FileError{Path: root, Err: err}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
