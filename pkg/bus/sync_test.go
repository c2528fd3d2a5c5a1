package bus_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

const syncChildEnv = "DRWATCH_SYNC_CHILD"

// TestSyncChild is the child of TestSyncAlwaysFsyncsEveryLogWrite: it
// starts a site with syncAlways as its environment says and publishes 20
// events. It does nothing in a normal run.
func TestSyncChild(t *testing.T) {
	mode := os.Getenv(syncChildEnv)
	if mode == "" {
		return
	}
	site := bustest.RunSite(t, "a", bustest.SiteOptions{SyncAlways: mode == "always"})
	b := site.Bus(t, "orchestrator", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Let the server settle so that only the publishes write.
	time.Sleep(200 * time.Millisecond)
	fmt.Println("PUBLISH-START")
	for i := range 20 {
		if _, err := b.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: events.Epoch(i), Reason: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSyncAlwaysFsyncsEveryLogWrite runs a site under strace and counts
// the fsync calls its 20 publishes cause: with syncAlways at least one per
// acknowledged publish (the log is on disk before the ack), with the lazy
// default almost none.
func TestSyncAlwaysFsyncsEveryLogWrite(t *testing.T) {
	if os.Getenv(syncChildEnv) != "" {
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("strace is missing (scripts/test.sh installs it)")
		}
		t.Skip("strace is missing: apt-get install strace")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	count := func(mode string) int {
		out := filepath.Join(t.TempDir(), "strace.out")
		cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=fsync,fdatasync,write", "-e", "signal=none", "-o", out, self, "-test.run", "^TestSyncChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), syncChildEnv+"="+mode)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child under strace: %v\n%s", err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// Count syncs after the child announced its publishes.
		text := string(data)
		if i := strings.Index(text, "PUBLISH-START"); i >= 0 {
			text = text[i:]
		}
		n := 0
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "fsync(") || strings.Contains(line, "fdatasync(") {
				n++
			}
		}
		return n
	}
	always, lazy := count("always"), count("lazy")
	t.Logf("fsync calls during 20 publishes: syncAlways=%d, lazy=%d", always, lazy)
	if always < 20 {
		t.Errorf("syncAlways: %d fsync calls for 20 acknowledged publishes, want at least 20", always)
	}
	if lazy >= always {
		t.Errorf("lazy: %d fsync calls, want fewer than syncAlways's %d", lazy, always)
	}
}

// TestOnlyTheLogIsSynced: the POISON stream opts out of the server-wide
// fsync (its messages are copies of what EVENTS holds), EVENTS keeps it.
func TestOnlyTheLogIsSynced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := bustest.RunJetStream(t).Bus(t, "test", "")
	for name, want := range map[string]jetstream.PersistModeType{bus.EventsStream: jetstream.DefaultPersistMode, bus.PoisonStream: jetstream.AsyncPersistMode} {
		s, err := b.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.PersistMode; got != want {
			t.Errorf("%s persist mode = %s, want %s", name, got, want)
		}
	}
}
