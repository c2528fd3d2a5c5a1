package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Source is where the standby reads the active site's backups.
type Source interface {
	ManifestIDs(ctx context.Context) ([]string, error)
	Manifest(ctx context.Context, id string) ([]byte, error)
	// OpenBlob reads blob sum from offset. Reads must fail soon after ctx
	// ends, so a cut link cannot hang a transfer.
	OpenBlob(ctx context.Context, sum string, offset int64) (io.ReadCloser, error)
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Dir holds backups/<id>/ (complete, verified backups) and
	// incoming/<id>/ (one being received).
	Dir string
	// MaxCount complete backups are kept.
	MaxCount int
	// TransferTimeout bounds one file's transfer (seed 000's scpTimeout).
	TransferTimeout time.Duration
	// IdleTimeout fails a transfer that receives nothing for this long.
	IdleTimeout time.Duration
	// Progress, when set, is told how many bytes of e are on disk.
	Progress func(e Entry, written int64)
	Log      *slog.Logger
}

// FetchResult says what one fetch did.
type FetchResult struct {
	ID       string
	UpToDate bool
	Files    int
	Bytes    int64
	// Fetched bytes came over the transport; Reused files were copied from
	// an older local backup; Resumed bytes were kept from a cut transfer.
	Fetched int64
	Reused  int
	Resumed int64
}

// Fetch copies the active site's newest backup into opts.Dir unless it is
// there already. Every file is verified by SHA-256 and written atomically;
// the backup directory appears, whole, by one rename at the end. A fetch
// cut short leaves its progress in incoming/ for the next call to resume.
func Fetch(ctx context.Context, src Source, opts FetchOptions) (*FetchResult, error) {
	ids, err := src.ManifestIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the active site's backups: %w", err)
	}
	if len(ids) == 0 {
		return nil, ErrNoBackup
	}
	id := slices.Max(ids)
	res := &FetchResult{ID: id}
	final := filepath.Join(opts.Dir, "backups", id)
	if _, err := os.Stat(filepath.Join(final, manifestFile)); err == nil {
		res.UpToDate = true
		return res, nil
	}
	data, err := src.Manifest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", id, err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: manifest %s names itself %s", ErrBadManifest, id, m.ID)
	}
	res.Files, res.Bytes = len(m.Entries), m.Bytes()
	stage := filepath.Join(opts.Dir, "incoming", id)
	if err := os.MkdirAll(filepath.Join(stage, filesDir), 0o750); err != nil {
		return nil, diskErr(stage, err)
	}
	local := localBlobs(opts.Dir)
	var todo []Entry
	var need int64
	for _, e := range m.Entries {
		dst := filepath.Join(stage, filesDir, e.Name())
		if ok, _ := matches(dst, e); ok {
			continue // received by an earlier, interrupted attempt
		}
		todo = append(todo, e)
		need += e.Size
	}
	if err := checkFree(stage, need); err != nil {
		return nil, err
	}
	for _, e := range todo {
		dst := filepath.Join(stage, filesDir, e.Name())
		if p, ok := local[e.SHA256]; ok {
			open := func(_ context.Context, offset int64) (io.ReadCloser, error) { return openAt(p, offset) }
			if _, _, err := writeVerified(ctx, dst, e, open, opts, syncLater); err == nil {
				res.Reused++
				continue
			}
			// An unreadable or damaged older copy: fetch it instead.
		}
		open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return src.OpenBlob(ctx, e.SHA256, offset)
		}
		fetched, resumed, err := writeVerified(ctx, dst, e, open, opts, syncLater)
		res.Fetched += fetched
		res.Resumed += resumed
		if err != nil {
			return res, &FileError{Path: e.Path, Err: err}
		}
	}
	// Every file's data and name must be on disk before the backup
	// appears; the manifest is then written durably, last.
	if err := syncFS(stage); err != nil {
		return res, diskErr(stage, err)
	}
	if err := writeFileAtomic(filepath.Join(stage, manifestFile), data, 0o640); err != nil {
		return res, diskErr(stage, err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return res, diskErr(final, err)
	}
	if err := os.Rename(stage, final); err != nil {
		return res, fmt.Errorf("move backup %s into place: %w", id, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return res, diskErr(final, err)
	}
	// Older incoming/ dirs are backups the active site has since replaced.
	_ = os.RemoveAll(filepath.Join(opts.Dir, "incoming"))
	if err := pruneLocal(opts.Dir, opts.MaxCount); err != nil {
		opts.Log.Warn("pruning old local backups failed", "err", err)
	}
	return res, nil
}

const (
	manifestFile = "manifest.json"
	filesDir     = "files"
)

// Backups returns the ids of the complete local backups, oldest first.
func Backups(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "backups"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range ents {
		if _, err := IDTime(d.Name()); err != nil || !d.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "backups", d.Name(), manifestFile)); err == nil {
			ids = append(ids, d.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// LoadBackup reads the manifest of local backup id.
func LoadBackup(dir, id string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, "backups", id, manifestFile))
	if err != nil {
		return nil, err
	}
	return DecodeManifest(data)
}

// localBlobs maps the digests of files in complete local backups to a path
// holding them, so unchanged files are copied locally, not fetched again.
func localBlobs(dir string) map[string]string {
	out := map[string]string{}
	ids, _ := Backups(dir)
	for _, id := range ids {
		m, err := LoadBackup(dir, id)
		if err != nil {
			continue
		}
		for _, e := range m.Entries {
			out[e.SHA256] = filepath.Join(dir, "backups", id, filesDir, e.Name())
		}
	}
	return out
}

func pruneLocal(dir string, maxCount int) error {
	ids, err := Backups(dir)
	if err != nil || len(ids) <= maxCount {
		return err
	}
	for _, id := range ids[:len(ids)-maxCount] {
		if err := os.RemoveAll(filepath.Join(dir, "backups", id)); err != nil {
			return err
		}
	}
	return nil
}

func openAt(path string, offset int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
