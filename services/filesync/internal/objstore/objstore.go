// Package objstore keeps published backups in a JetStream object store:
// the active site writes the bucket in its own domain, and the standby
// reads the peer's bucket across the leafnode link
// (jetstream.NewWithDomain). Objects are "manifest/<id>" and
// "blob/<sha256>".
package objstore

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the object store bucket every site publishes into.
const Bucket = "drwatch_files"

const (
	manifestPrefix = "manifest/"
	blobPrefix     = "blob/"
)

// Store is one site's backup bucket.
type Store struct{ obs jetstream.ObjectStore }

// Create opens this site's bucket, creating it when missing.
func Create(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "drwatch file backups published by this site",
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", Bucket, err)
	}
	return &Store{obs: obs}, nil
}

// Open opens an existing bucket, e.g. the peer's through a domain context.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	obs, err := js.ObjectStore(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("open the peer's object store %s: %w", Bucket, err)
	}
	return &Store{obs: obs}, nil
}

// HasBlob implements backup.Sink.
func (s *Store) HasBlob(ctx context.Context, sum string) (bool, error) {
	_, err := s.obs.GetInfo(ctx, blobPrefix+sum)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// PutBlob implements backup.Sink. The store computes the digest of what it
// received; a mismatch deletes the object.
func (s *Store) PutBlob(ctx context.Context, sum string, r io.Reader) error {
	want, err := hex.DecodeString(sum)
	if err != nil {
		return fmt.Errorf("blob name %q: %w", sum, err)
	}
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: blobPrefix + sum}, r)
	if err != nil {
		return err
	}
	if got := "SHA-256=" + base64.URLEncoding.EncodeToString(want); info.Digest != got {
		_ = s.obs.Delete(ctx, blobPrefix+sum)
		return fmt.Errorf("content changed while it was read: stored digest %s, expected %s", info.Digest, got)
	}
	return nil
}

// BlobSums implements backup.Sink.
func (s *Store) BlobSums(ctx context.Context) ([]string, error) { return s.list(ctx, blobPrefix) }

// DeleteBlob implements backup.Sink.
func (s *Store) DeleteBlob(ctx context.Context, sum string) error {
	return s.obs.Delete(ctx, blobPrefix+sum)
}

// PutManifest implements backup.Sink.
func (s *Store) PutManifest(ctx context.Context, id string, data []byte) error {
	_, err := s.obs.PutBytes(ctx, manifestPrefix+id, data)
	return err
}

// ManifestIDs implements backup.Sink and backup.Source.
func (s *Store) ManifestIDs(ctx context.Context) ([]string, error) {
	return s.list(ctx, manifestPrefix)
}

// Manifest implements backup.Sink and backup.Source.
func (s *Store) Manifest(ctx context.Context, id string) ([]byte, error) {
	return s.obs.GetBytes(ctx, manifestPrefix+id)
}

// DeleteManifest implements backup.Sink.
func (s *Store) DeleteManifest(ctx context.Context, id string) error {
	return s.obs.Delete(ctx, manifestPrefix+id)
}

// OpenBlob implements backup.Source. An object is read from its start, so
// a resumed transfer skips offset bytes of the stream (they are received
// again but not written again).
//
// The object reader holds its lock for the whole of a blocked read, so
// closing it cannot interrupt a stalled transfer; a pipe fed by a
// goroutine can be closed at once when ctx ends.
func (s *Store) OpenBlob(ctx context.Context, sum string, offset int64) (io.ReadCloser, error) {
	res, err := s.obs.Get(ctx, blobPrefix+sum)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, res, offset); err != nil {
		res.Close()
		return nil, fmt.Errorf("skip to offset %d: %w", offset, err)
	}
	pr, pw := io.Pipe()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	go func() {
		// Ends when the object is read, fails, or its ctx deadline passes.
		_, err := io.Copy(pw, res)
		res.Close()
		pw.CloseWithError(err)
	}()
	return &reader{PipeReader: pr, stop: stop}, nil
}

type reader struct {
	*io.PipeReader
	stop func() bool
}

func (r *reader) Close() error {
	r.stop()
	return r.PipeReader.Close()
}

func (s *Store) list(ctx context.Context, prefix string) ([]string, error) {
	infos, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range infos {
		if name, ok := strings.CutPrefix(i.Name, prefix); ok && !i.Deleted {
			out = append(out, name)
		}
	}
	return out, nil
}
