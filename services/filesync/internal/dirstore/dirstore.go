// Package dirstore keeps published backups in a local directory:
// manifests/<id>.json and blobs/<sha256>. The active site writes it when
// the transport is SFTP, and the standby reads it through the site's SSH
// server (package sftpstore) with the same layout.
package dirstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Layout of a store, in slash form so a remote reader can use it too.
const (
	ManifestDir = "manifests"
	BlobDir     = "blobs"
)

// ManifestPath is where manifest id lives, relative to the root.
func ManifestPath(id string) string { return path.Join(ManifestDir, id+".json") }

// BlobPath is where blob sum lives, relative to the root.
func BlobPath(sum string) string { return path.Join(BlobDir, sum) }

// Store is a directory of published backups.
type Store struct{ root string }

// New returns a store in root, creating its directories.
func New(root string) (*Store, error) {
	for _, d := range []string{ManifestDir, BlobDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return nil, fmt.Errorf("backup store %s: %w", root, err)
		}
	}
	return &Store{root: root}, nil
}

func (s *Store) path(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) }

// HasBlob implements backup.Sink.
func (s *Store) HasBlob(_ context.Context, sum string) (bool, error) {
	_, err := os.Stat(s.path(BlobPath(sum)))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// PutBlob implements backup.Sink: the content lands under its name only
// once its digest is checked and it is synced.
func (s *Store) PutBlob(_ context.Context, sum string, r io.Reader) error {
	h := sha256.New()
	return s.writeAtomic(BlobPath(sum), io.TeeReader(r, h), func() error {
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return fmt.Errorf("content changed while it was read: sha256 %s, expected %s", got, sum)
		}
		return nil
	})
}

// BlobSums implements backup.Sink.
func (s *Store) BlobSums(_ context.Context) ([]string, error) { return s.list(BlobDir, "") }

// DeleteBlob implements backup.Sink.
func (s *Store) DeleteBlob(_ context.Context, sum string) error {
	return os.Remove(s.path(BlobPath(sum)))
}

// PutManifest implements backup.Sink.
func (s *Store) PutManifest(_ context.Context, id string, data []byte) error {
	return s.writeAtomic(ManifestPath(id), strings.NewReader(string(data)), nil)
}

// ManifestIDs implements backup.Sink and backup.Source.
func (s *Store) ManifestIDs(_ context.Context) ([]string, error) { return s.list(ManifestDir, ".json") }

// Manifest implements backup.Sink and backup.Source.
func (s *Store) Manifest(_ context.Context, id string) ([]byte, error) {
	return os.ReadFile(s.path(ManifestPath(id)))
}

// DeleteManifest implements backup.Sink.
func (s *Store) DeleteManifest(_ context.Context, id string) error {
	return os.Remove(s.path(ManifestPath(id)))
}

// OpenBlob implements backup.Source.
func (s *Store) OpenBlob(_ context.Context, sum string, offset int64) (io.ReadCloser, error) {
	f, err := os.Open(s.path(BlobPath(sum)))
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s *Store) list(dir, suffix string) ([]string, error) {
	ents, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(name, ".") && strings.HasSuffix(name, suffix) {
			out = append(out, strings.TrimSuffix(name, suffix))
		}
	}
	return out, nil
}

// writeAtomic writes r to rel through a synced temporary file in the same
// directory; check, when set, runs after the copy and can veto the rename.
func (s *Store) writeAtomic(rel string, r io.Reader, check func() error) error {
	dst := s.path(rel)
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
