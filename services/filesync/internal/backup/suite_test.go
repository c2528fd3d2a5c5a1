package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/services/filesync/internal/backup"
	"github.com/drwatch/drwatch/services/filesync/internal/dirstore"
	"github.com/drwatch/drwatch/services/filesync/internal/objstore"
	"github.com/drwatch/drwatch/services/filesync/internal/sftpstore"
	"github.com/drwatch/drwatch/services/filesync/internal/sshtest"
)

// rig is one transport: the active site's sink, the standby's source, and
// the network between them.
type rig struct {
	sink      backup.Sink
	src       backup.Source
	cut, heal func()
}

// transports lists every transport; each test of the suite runs on all.
var transports = []struct {
	name string
	new  func(t testing.TB) *rig
}{
	{"objectstore", newObjectStoreRig},
	{"sftp", newSFTPRig},
}

func newObjectStoreRig(t testing.TB) *rig {
	p := bustest.RunPair(t)
	ctx := testCtx(t)
	jsA, err := jetstream.New(p.A.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := objstore.Create(ctx, jsA)
	if err != nil {
		t.Fatal(err)
	}
	// The standby reads site a's bucket through a's domain, over the link.
	jsB, err := jetstream.NewWithDomain(p.B.Connect(t), string(p.A.Name))
	if err != nil {
		t.Fatal(err)
	}
	var src *objstore.Store
	bustest.WaitFor(t, 10*time.Second, "peer bucket visible across the leafnode", func() bool {
		src, err = objstore.Open(ctx, jsB)
		return err == nil
	})
	return &rig{sink: sink, src: src, cut: p.Link.Cut, heal: func() {
		p.Link.Heal()
		bustest.WaitFor(t, 15*time.Second, "leafnode back", func() bool {
			return p.A.Server.LeafConnected() > 0 && p.B.Server.LeafConnected() > 0
		})
	}}
}

func newSFTPRig(t testing.TB) *rig {
	srv := sshtest.Run(t)
	root := t.TempDir()
	sink, err := dirstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	link := bustest.NewLink(t, srv.Addr)
	src, err := sftpstore.New(sftpstore.Config{
		Addr:       link.Addr,
		User:       "drwatch",
		Auth:       []ssh.AuthMethod{ssh.PublicKeys(srv.Client)},
		KnownHosts: srv.KnownHosts(t, link.Addr, nil),
		RemoteDir:  root,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &rig{sink: sink, src: src, cut: link.Cut, heal: link.Heal}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func publishOpts(paths ...string) backup.PublishOptions {
	return backup.PublishOptions{
		Site: "a", Paths: paths, MaxCount: 3, TransferTimeout: time.Minute,
		Now: time.Now, Log: quietLog(),
	}
}

func fetchOpts(dir string) backup.FetchOptions {
	return backup.FetchOptions{Dir: dir, MaxCount: 3, TransferTimeout: time.Minute, IdleTimeout: 2 * time.Second, Log: quietLog()}
}

// writeTree makes n files of 1-8 KiB in nested directories under root,
// with assorted modes and old modification times.
func writeTree(t testing.TB, root string, n int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	modes := []fs.FileMode{0o640, 0o600, 0o644, 0o755}
	for i := range n {
		p := filepath.Join(root, fmt.Sprintf("d%02d", i%37), fmt.Sprintf("s%d", i%5), fmt.Sprintf("f%05d.rrd", i))
		data := make([]byte, 1024+r.IntN(7*1024+1))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		writeFile(t, p, data, modes[i%len(modes)], time.Date(2024, 1, 1+i%28, i%24, i%60, i%60, i, time.UTC))
	}
}

func writeFile(t testing.TB, p string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// writeBig writes size pseudo-random bytes to p.
func writeBig(t testing.TB, p string, size int64, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{byte(seed)}), size); err != nil {
		t.Fatal(err)
	}
}

// checkBackup asserts the standby's backup id holds every file under the
// active site's root with the same content, mode and time, and nothing
// half-written.
func checkBackup(t testing.TB, dir, id, root string) {
	t.Helper()
	base := filepath.Join(dir, "backups", id, "files")
	var n int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		n++
		want, _ := d.Info()
		got, err := os.Stat(filepath.Join(base, strings.TrimPrefix(p, "/")))
		if err != nil {
			return fmt.Errorf("standby lacks %s: %w", p, err)
		}
		if got.Mode() != want.Mode() || !got.ModTime().Equal(want.ModTime()) || got.Size() != want.Size() {
			return fmt.Errorf("%s: standby has %v %v %d, active %v %v %d", p, got.Mode(), got.ModTime(), got.Size(), want.Mode(), want.ModTime(), want.Size())
		}
		if sum(t, filepath.Join(base, strings.TrimPrefix(p, "/"))) != sum(t, p) {
			return fmt.Errorf("%s: content differs", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no files compared")
	}
	noPartials(t, filepath.Join(dir, "backups"))
}

func noPartials(t testing.TB, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".tmp")) {
			t.Errorf("partial file left in complete backups: %s", p)
		}
		return nil
	})
}

func sum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestThousandsOfSmallFilesAndRotation(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.new(t)
			ctx := testCtx(t)
			root, dir := t.TempDir(), t.TempDir()
			writeTree(t, root, 3000, 1)
			writeFile(t, filepath.Join(root, "etc", "site.conf"), []byte("role: standby\n"), 0o600, time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC))

			pub, err := backup.Publish(ctx, r.sink, publishOpts(root))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(pub.Manifest.Entries); got != 3001 {
				t.Fatalf("backup holds %d files, want 3001", got)
			}
			res, err := backup.Fetch(ctx, r.src, fetchOpts(dir))
			if err != nil {
				t.Fatal(err)
			}
			if res.Files != 3001 || res.Fetched != res.Bytes {
				t.Fatalf("fetch = %+v, want 3001 files all fetched", res)
			}
			checkBackup(t, dir, res.ID, root)

			// Unchanged files are neither uploaded nor fetched again.
			writeFile(t, filepath.Join(root, "etc", "site.conf"), []byte("role: active\n"), 0o600, time.Now())
			for i := range 3 {
				time.Sleep(2 * time.Millisecond) // distinct backup ids
				pub, err = backup.Publish(ctx, r.sink, publishOpts(root))
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && pub.Uploaded != 1 {
					t.Errorf("second backup uploaded %d files, want the 1 changed", pub.Uploaded)
				}
				res, err = backup.Fetch(ctx, r.src, fetchOpts(dir))
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && (res.Reused != 3000 || res.Fetched != int64(len("role: active\n"))) {
					t.Errorf("second fetch = %+v, want 3000 reused and one small file fetched", res)
				}
			}
			checkBackup(t, dir, res.ID, root)
			if again, err := backup.Fetch(ctx, r.src, fetchOpts(dir)); err != nil || !again.UpToDate {
				t.Errorf("fetch of an unchanged backup = %+v, %v; want up to date", again, err)
			}
			ids, _ := r.sink.ManifestIDs(ctx)
			local, _ := backup.Backups(dir)
			if len(ids) != 3 || len(local) != 3 {
				t.Errorf("after 4 backups the active keeps %d and the standby %d, want maxCount 3 each", len(ids), len(local))
			}
			if slices.Max(ids) != local[len(local)-1] {
				t.Errorf("standby's newest %s is not the active's newest %s", local[len(local)-1], slices.Max(ids))
			}
		})
	}
}

func TestTransferCutMidFileResumes(t *testing.T) {
	const size = 64 << 20
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.new(t)
			ctx := testCtx(t)
			root, dir := t.TempDir(), t.TempDir()
			big := filepath.Join(root, "rrd", "big.rrd")
			writeBig(t, big, size, 7)
			writeFile(t, filepath.Join(root, "a.conf"), []byte("x=1\n"), 0o644, time.Now())
			if _, err := backup.Publish(ctx, r.sink, publishOpts(root)); err != nil {
				t.Fatal(err)
			}

			opts := fetchOpts(dir)
			var once sync.Once
			opts.Progress = func(e backup.Entry, written int64) {
				if e.Size == size && written > size/4 {
					once.Do(r.cut)
				}
			}
			_, err := backup.Fetch(ctx, r.src, opts)
			if err == nil {
				t.Fatal("fetch across a cut link succeeded")
			}
			if got := backup.FailedFile(err); got != big {
				t.Errorf("failure names %q, want %q (err %v)", got, big, err)
			}
			t.Logf("cut: %v", err)
			if ids, _ := backup.Backups(dir); len(ids) != 0 {
				t.Fatalf("a cut fetch left a backup: %v", ids)
			}
			assertNoVisibleFile(t, dir, big)

			r.heal()
			opts.Progress = nil
			res, attempts, err := backup.FetchWithRetry(ctx, r.src, opts, backup.RetryOptions{Attempts: 10, Base: 100 * time.Millisecond, Max: time.Second})
			if err != nil {
				t.Fatalf("resume after heal failed after %d attempts: %v", attempts, err)
			}
			if res.Resumed < size/4 {
				t.Errorf("resumed %d bytes, want the >%d received before the cut", res.Resumed, size/4)
			}
			t.Logf("resumed after %d attempt(s): %+v", attempts, res)
			checkBackup(t, dir, res.ID, root)
			if _, err := os.Stat(filepath.Join(dir, "incoming")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("incoming/ left after a complete fetch: %v", err)
			}
		})
	}
}

// assertNoVisibleFile checks that only a hidden part file stands for p.
func assertNoVisibleFile(t *testing.T, dir, p string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == filepath.Base(p) {
			t.Errorf("half-received file visible under its own name: %s", q)
		}
		return nil
	})
}

func TestFullDiskOnStandby(t *testing.T) {
	dir := tinyDisk(t, "1m")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := tr.new(t)
			ctx := testCtx(t)
			root := t.TempDir()
			t.Cleanup(func() { clean(t, dir) })

			// A backup larger than the disk is refused before writing.
			writeBig(t, filepath.Join(root, "huge.rrd"), 2<<20, 3)
			if _, err := backup.Publish(ctx, r.sink, publishOpts(root)); err != nil {
				t.Fatal(err)
			}
			_, err := backup.Fetch(ctx, r.src, fetchOpts(dir))
			if !errors.Is(err, backup.ErrDiskFull) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("fetch onto a 1 MiB disk = %v, want ErrDiskFull naming %s", err, dir)
			}
			t.Logf("precheck: %v", err)
			clean(t, dir)

			// The disk filling up mid-transfer (another writer) is reported too.
			os.Remove(filepath.Join(root, "huge.rrd"))
			writeBig(t, filepath.Join(root, "b.rrd"), 512<<10, 4)
			if _, err := backup.Publish(ctx, r.sink, publishOpts(root)); err != nil {
				t.Fatal(err)
			}
			opts := fetchOpts(dir)
			var once sync.Once
			opts.Progress = func(backup.Entry, int64) { once.Do(func() { fillDisk(t, dir) }) }
			_, _, err = backup.FetchWithRetry(ctx, r.src, opts, backup.RetryOptions{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond})
			if !errors.Is(err, backup.ErrDiskFull) || backup.FailedFile(err) != filepath.Join(root, "b.rrd") {
				t.Fatalf("fetch onto a disk filled mid-transfer = %v, want ErrDiskFull naming b.rrd", err)
			}
			t.Logf("mid-transfer: %v", err)
			if ids, _ := backup.Backups(dir); len(ids) != 0 {
				t.Errorf("backup appeared on a full disk: %v", ids)
			}
		})
	}
}

// tinyDisk mounts a tmpfs of size on a temporary directory.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the full-disk test needs root to mount a tmpfs, and CI=true")
		}
		t.Skip("the full-disk test needs root to mount a tmpfs; run as root to include it")
	}
	dir := t.TempDir()
	if out, err := execMount(dir, size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() { _, _ = execUmount(dir) })
	return dir
}

func fillDisk(t testing.TB, dir string) {
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{}), 4<<20)) // stops at ENOSPC
}

func clean(t testing.TB, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Error(err)
		}
	}
}
