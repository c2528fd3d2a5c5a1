package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles drwatch once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "drwatch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// minimalSite writes the smallest config of a site a on free ports (no
// peer answering, no arbiters) and returns its path and ports.
func minimalSite(t *testing.T) (cfgPath string, natsPort, httpPort int) {
	t.Helper()
	dir := t.TempDir()
	httpPort, natsPort = freePort(t), freePort(t)
	cfg := fmt.Sprintf(`site: {name: a, peer: b, role: active}
nats:
  embedded: {host: 127.0.0.1, port: %d, storeDir: %s}
core: {peerVip: 127.0.0.1}
watchdog:
  heartbeat: {probe: tcp, port: 1, interval: 2s, timeout: 500ms, retries: 1}
http: {listen: "127.0.0.1:%d"}
`, natsPort, filepath.Join(dir, "nats"), httpPort)
	cfgPath = filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, natsPort, httpPort
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSiteStartsOnEmbeddedNATSAndStopsOnSIGTERM runs the real binary from
// a sample config with no other server, waits for /healthz, then sends
// SIGTERM and expects a clean exit.
func TestSiteStartsOnEmbeddedNATSAndStopsOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	cfgPath, _, httpPort := minimalSite(t)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "-config", cfgPath)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("drwatch exited early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics = %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15s after SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "embedded NATS stopped") {
		t.Errorf("log lacks the clean shutdown line:\n%s", stderr.String())
	}
}

func TestBadConfigIsRejectedWithTheField(t *testing.T) {
	bin := buildBinary(t)
	cfgPath := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(cfgPath, []byte("site: {name: a, peer: b}\nwatchdog: {heartbeat: {interval: 5s, timeout: 10s}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "run", "-config", cfgPath).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want code 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "watchdog.heartbeat.timeout: must be less than interval") {
		t.Errorf("output does not name the field:\n%s", out)
	}
}
