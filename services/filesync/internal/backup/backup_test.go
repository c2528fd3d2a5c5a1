package backup_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/services/filesync/internal/backup"
	"github.com/drwatch/drwatch/services/filesync/internal/dirstore"
)

func TestDecodeManifestRefusesUnsafeEntries(t *testing.T) {
	good := backup.Entry{Path: "/etc/drwatch/site.yaml", Size: 1, Mode: 0o640, SHA256: strings.Repeat("a", 64)}
	tests := []struct {
		name string
		edit func(*backup.Manifest)
		want string
	}{
		{"valid", func(*backup.Manifest) {}, ""},
		{"relative path", func(m *backup.Manifest) { m.Entries[0].Path = "etc/x" }, "must be absolute"},
		{"escapes", func(m *backup.Manifest) { m.Entries[0].Path = "/etc/../../x" }, "must be absolute and clean"},
		{"root", func(m *backup.Manifest) { m.Entries[0].Path = "/" }, "must be absolute and clean"},
		{"duplicate", func(m *backup.Manifest) { m.Entries = append(m.Entries, good) }, "listed twice"},
		{"short digest", func(m *backup.Manifest) { m.Entries[0].SHA256 = "abc" }, "not 64 hex digits"},
		{"setuid", func(m *backup.Manifest) { m.Entries[0].Mode |= os.ModeSetuid }, "not a regular file's"},
		{"bad id", func(m *backup.Manifest) { m.ID = "../x" }, "not a backup id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := backup.Manifest{ID: backup.NewID(time.Now()), Entries: []backup.Entry{good}}
			tc.edit(&m)
			data, _ := json.Marshal(m)
			_, err := backup.DecodeManifest(data)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, backup.ErrBadManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeManifest = %v, want ErrBadManifest containing %q", err, tc.want)
			}
		})
	}
}

func TestCorruptBlobIsRefusedAndNamed(t *testing.T) {
	ctx := testCtx(t)
	storeDir := t.TempDir()
	store, err := dirstore.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	root, dir := t.TempDir(), t.TempDir()
	writeTree(t, root, 20, 2)
	pub, err := backup.Publish(ctx, store, publishOpts(root))
	if err != nil {
		t.Fatal(err)
	}
	bad := pub.Manifest.Entries[5]
	// Same length, different content: only the digest can tell.
	blob := filepath.Join(storeDir, dirstore.BlobPath(bad.SHA256))
	data, _ := os.ReadFile(blob)
	data[0] ^= 0xff
	if err := os.WriteFile(blob, data, 0o640); err != nil {
		t.Fatal(err)
	}
	_, attempts, err := backup.FetchWithRetry(ctx, store, fetchOpts(dir), backup.RetryOptions{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond})
	if !errors.Is(err, backup.ErrChecksum) || backup.FailedFile(err) != bad.Path || attempts != 2 {
		t.Fatalf("fetch of a corrupt blob = %v after %d attempts, want ErrChecksum naming %s after 2", err, attempts, bad.Path)
	}
	if ids, _ := backup.Backups(dir); len(ids) != 0 {
		t.Errorf("a backup with a corrupt file became visible: %v", ids)
	}
}

func TestRestoreNewestSkipsADamagedBackup(t *testing.T) {
	ctx := testCtx(t)
	storeDir := t.TempDir()
	store, err := dirstore.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	src, dir := t.TempDir(), t.TempDir()
	conf := filepath.Join(src, "site.conf")
	for i, content := range []string{"v1\n", "v2\n"} {
		writeFile(t, conf, []byte(content), 0o600, time.Date(2025, 1, 1+i, 0, 0, 0, 0, time.UTC))
		time.Sleep(2 * time.Millisecond)
		if _, err := backup.Publish(ctx, store, publishOpts(src)); err != nil {
			t.Fatal(err)
		}
		if _, err := backup.Fetch(ctx, store, fetchOpts(dir)); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := backup.Backups(dir)
	if len(ids) != 2 {
		t.Fatalf("backups = %v, want 2", ids)
	}

	root := t.TempDir()
	m, err := backup.RestoreNewest(ctx, dir, root, quietLog())
	if err != nil || m.ID != ids[1] {
		t.Fatalf("restore = %v, %v; want newest %s", m, err, ids[1])
	}
	assertFile(t, filepath.Join(root, conf), "v2\n", 0o600, time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC))

	// Damage the newest: the restore falls back to the older one.
	newest := filepath.Join(dir, "backups", ids[1], "files", strings.TrimPrefix(conf, "/"))
	if err := os.WriteFile(newest, []byte("xx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err = backup.RestoreNewest(ctx, dir, root, quietLog()); err != nil || m.ID != ids[0] {
		t.Fatalf("restore with a damaged newest = %v, %v; want %s", m, err, ids[0])
	}
	assertFile(t, filepath.Join(root, conf), "v1\n", 0o600, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))

	// All damaged: nothing is written and the error says so.
	older := filepath.Join(dir, "backups", ids[0], "files", strings.TrimPrefix(conf, "/"))
	if err := os.Remove(older); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.RestoreNewest(ctx, dir, root, quietLog()); !errors.Is(err, backup.ErrNoGoodBackup) {
		t.Fatalf("restore with every backup damaged = %v, want ErrNoGoodBackup", err)
	}
	assertFile(t, filepath.Join(root, conf), "v1\n", 0o600, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
}

func assertFile(t *testing.T, p, content string, mode os.FileMode, mtime time.Time) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if string(data) != content || st.Mode().Perm() != mode || !st.ModTime().Equal(mtime) {
		t.Errorf("%s = %q %v %v, want %q %v %v", p, data, st.Mode().Perm(), st.ModTime(), content, mode, mtime)
	}
}
