package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is a started binary whose output is kept for failure messages.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func (p *process) waitHealthy(t *testing.T, port int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited early: %v\n%s", p.cmd.Path, err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /healthz never answered 200\n%s", p.cmd.Path, p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", p.cmd.Path, err, p.out)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no exit 15s after SIGTERM\n%s", p.cmd.Path, p.out)
	}
}

// TestEachServiceStartsAloneAgainstTheSiteNATS starts a site on the
// embedded server, then every service's own binary against that server's
// URL, and stops each with SIGTERM.
func TestEachServiceStartsAloneAgainstTheSiteNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds seven binaries; runs without -short")
	}
	cfgPath, natsPort, httpPort := minimalSite(t)
	site := start(t, buildBinary(t), "run", "-config", cfgPath)
	site.waitHealthy(t, httpPort)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)

	for _, name := range []string{"heartbeat", "arbiter", "dbmonitor", "filesync", "notifier", "orchestrator"} {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), name)
			build := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
			build.Dir = filepath.Join("..", "..", "services", name)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build %s: %v\n%s", name, err, out)
			}
			port := freePort(t)
			p := start(t, bin, "-config", cfgPath, "-nats", natsURL, "-http", fmt.Sprintf("127.0.0.1:%d", port))
			p.waitHealthy(t, port)
			if !strings.Contains(p.out.String(), `"msg":"service started"`) {
				t.Errorf("no start line in the log:\n%s", p.out)
			}
			p.stop(t)
		})
	}
	site.stop(t)
}
