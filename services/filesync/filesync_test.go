package filesync_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/filesync"
)

func siteConfig(name, peer, role, dir string, paths ...string) *config.Config {
	cfg := config.Defaults()
	cfg.Site = config.Site{Name: name, Peer: peer, Node: name + "-node", Role: role}
	cfg.File.Dir = dir
	cfg.File.Paths = paths
	return &cfg
}

// TestActivePublishesStandbyFetchesOverTheLink runs the service on both
// sites of a pair: a (active) backs up, b (standby) fetches across the
// leafnode, publishes FileSyncCompleted, and can restore the backup.
func TestActivePublishesStandbyFetchesOverTheLink(t *testing.T) {
	p := bustest.RunPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "site.conf"), []byte("vip: 10.0.0.10/24\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	run := func(site *bustest.Site, peer events.SiteID, role string, dir string) {
		cfg := siteConfig(string(site.Name), string(peer), role, dir, filepath.Join(src, "*.conf"))
		deps := service.Deps{Config: cfg, Bus: site.Bus(t, "filesync", peer), Log: log, Now: time.Now}
		done := make(chan error, 1)
		go func() { done <- filesync.Run(ctx, deps) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run on %s: %v", site.Name, err)
			}
		})
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	run(p.A, "b", "active", dirA)
	// The standby's first fetch may run before a's first backup; its next
	// slot would be an hour away, so give the active side a head start.
	bBus := p.B.Bus(t, "test", "a")
	time.Sleep(500 * time.Millisecond)
	run(p.B, "a", "standby", dirB)

	var completed *events.FileSyncCompleted
	bustest.WaitFor(t, 30*time.Second, "FileSyncCompleted on site b", func() bool {
		_, _ = bBus.Replay(ctx, 0, []string{events.SiteTypeFilter("b", "FileSyncCompleted")}, func(_ uint64, env *events.Envelope) error {
			ev, err := events.DecodeInto[events.FileSyncCompleted](env)
			if err == nil {
				completed = &ev
			}
			return err
		})
		return completed != nil
	})
	if completed.Files != 1 || completed.Bytes != int64(len("vip: 10.0.0.10/24\n")) || completed.Transport != "objectstore" {
		t.Errorf("FileSyncCompleted = %+v, want 1 file of 18 bytes over objectstore", completed)
	}

	root := t.TempDir()
	cfgB := siteConfig("b", "a", "standby", dirB)
	got, err := filesync.Restore(ctx, cfgB, root, log)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, src, "site.conf"))
	if err != nil || string(data) != "vip: 10.0.0.10/24\n" || got.Files != 1 {
		t.Errorf("restore = %+v, file %q, %v", got, data, err)
	}
}

func TestOptionsErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"relative dir", func(c *config.Config) { c.File.Dir = "files" }, `file.dir: "files" must be an absolute directory`},
		{"relative path", func(c *config.Config) { c.File.Paths = config.List{"etc/x"} }, `file.paths[0]: "etc/x" must be an absolute path`},
		{"no peer", func(c *config.Config) { c.Site.Peer = "" }, "site.name/site.peer: both are required"},
		{"bad hours", func(c *config.Config) { c.File.Restore.HoursOfDay = "24" }, `file.restore.hoursOfDay: "24" is outside 0-23`},
		{"bad transport", func(c *config.Config) { c.File.Transport = "rsync" }, `file.transport: "rsync" must be objectstore or sftp`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := siteConfig("a", "b", "active", "/var/lib/drwatch/files", "/etc/drwatch")
			tc.mutate(cfg)
			_, err := filesync.OptionsFrom(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OptionsFrom = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := filesync.OptionsFrom(siteConfig("a", "b", "active", "/var/lib/drwatch/files", "/etc/drwatch")); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}
