package main

import (
	"os"
	"strings"
	"testing"
)

// TestVIPRelease: `drwatch vip release` runs without the site process (a
// supervisor calls it after drwatch exited). Without vip.address there is
// nothing to release and the unit's stop must not fail; the real address
// is covered by the orchestrator's network-namespace test.
func TestVIPRelease(t *testing.T) {
	cfg, _ := writeSiteConfig(t, t.TempDir(), freePort(t), freePort(t), 2)
	r := runCLI(t, cfg, "vip", "release")
	if r.code != 0 || !strings.Contains(r.stdout, "vip.address is not configured") {
		t.Errorf("vip release without a VIP: %v", r)
	}
	if r := runCLI(t, cfg, "vip", "take"); r.code != 2 || !strings.Contains(r.stderr, `expected "release"`) {
		t.Errorf("vip take: %v", r)
	}
	if r := runCLI(t, cfg, "vip", "release", "-config", cfg+".missing"); r.code != 1 {
		t.Errorf("vip release with a missing config: %v", r)
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Fatal(err)
	}
}
