// Package backup takes file backups on the active site, fetches them onto
// the standby and restores them there. Transports are behind two small
// interfaces: Sink (where the active site publishes) and Source (where the
// standby reads the active site's backups).
package backup

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// Errors callers test with errors.Is.
var (
	// ErrDiskFull means the standby has no room for a backup.
	ErrDiskFull = errors.New("standby disk full")
	// ErrChecksum means a file's content does not match its SHA-256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNoBackup means the active site has published no backup yet.
	ErrNoBackup = errors.New("the active site has published no backup yet")
	// ErrNoGoodBackup means no local backup passed verification.
	ErrNoGoodBackup = errors.New("no verified backup to restore")
	// ErrBadManifest means a manifest could not be decoded or is unsafe.
	ErrBadManifest = errors.New("bad backup manifest")
	// ErrStalled means a transfer received no data for the idle timeout.
	ErrStalled = errors.New("transfer stalled")
)

// idLayout makes backup ids sort in time order as strings.
const idLayout = "20060102T150405.000Z"

// NewID names a backup taken at t.
func NewID(t time.Time) string { return t.UTC().Format(idLayout) }

// IDTime returns the time a backup id names.
func IDTime(id string) (time.Time, error) { return time.Parse(idLayout, id) }

// Manifest lists the files of one backup.
type Manifest struct {
	ID      string    `json:"id"`
	Site    string    `json:"site"`
	Created time.Time `json:"created"`
	Entries []Entry   `json:"entries"`
}

// Entry is one file of a backup.
type Entry struct {
	// Path is the file's absolute path on the active site; a restore
	// writes it back there.
	Path    string      `json:"path"`
	Size    int64       `json:"size"`
	Mode    fs.FileMode `json:"mode"`
	ModTime time.Time   `json:"modTime"`
	// SHA256 is the hex digest of the content; blobs are stored under it.
	SHA256 string `json:"sha256"`
}

// Name is the entry's relative path inside a backup directory.
func (e Entry) Name() string { return strings.TrimPrefix(e.Path, "/") }

// Bytes is the total size of the manifest's files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}

// DecodeManifest decodes and validates a manifest. A manifest comes from
// the other site, so every path is checked to stay inside the backup.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, m.ID, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if _, err := IDTime(m.ID); err != nil {
		return fmt.Errorf("id %q is not a backup id", m.ID)
	}
	seen := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		switch {
		case !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path || !filepath.IsLocal(e.Name()):
			return fmt.Errorf("path %q must be absolute and clean", e.Path)
		case seen[e.Path]:
			return fmt.Errorf("path %q listed twice", e.Path)
		case e.Size < 0:
			return fmt.Errorf("%s: negative size %d", e.Path, e.Size)
		case !validSum(e.SHA256):
			return fmt.Errorf("%s: sha256 %q is not 64 hex digits", e.Path, e.SHA256)
		case e.Mode&^fs.ModePerm != 0:
			return fmt.Errorf("%s: mode %v is not a regular file's", e.Path, e.Mode)
		}
		seen[e.Path] = true
	}
	return nil
}

func validSum(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// FileError names the file a backup step failed on.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// FailedFile returns the file err names, or "".
func FailedFile(err error) string {
	if fe, ok := errors.AsType[*FileError](err); ok {
		return fe.Path
	}
	return ""
}
