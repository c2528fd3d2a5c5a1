package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `drwatch demo` as a newcomer would and expects the story
// told to its end: site b takes over from the powered-off site a, the
// client writes through b, and the incident timeline is printed.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs two whole sites for about 15 s")
	}
	bin := drwatchBin(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--duration", "100s", "--vip-port", strconv.Itoa(freePort(t)), "--dir", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("drwatch demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("drwatch demo took %s", time.Since(start).Round(time.Second))
	out := stdout.String()
	for _, want := range []string{
		"== the pair is up: a active and holding the VIP",
		"== powering off site a",
		"== site b is active and holds the VIP; the client writes through b again",
		"site b  active",
		"== incident timeline",
		"RemoteUnreachable",
		"ArbitrationDecided     arbiters verdict beActive (standby-failover)",
		"RoleChanged            role standby→active epoch 2",
		"failover steps (completed):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}

func TestDemoBadFlags(t *testing.T) {
	bin := drwatchBin(t)
	for _, args := range [][]string{{"--duration", "0s"}, {"--vip-port", "70000"}, {"extra"}} {
		out, err := exec.Command(bin, append([]string{"demo"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("drwatch demo %v: %v, want exit 2\n%s", args, err, out)
		}
	}
}
