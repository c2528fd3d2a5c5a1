// Package hook runs the operator's scripts around a role change (seed 003's
// pre/post s2m/m2s, the pre-promote veto) with a timeout, killing the
// script's whole process group when it hangs and capturing its output.
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrTimeout marks a hook killed at its timeout.
var ErrTimeout = errors.New("hook timed out")

// MaxOutput bounds the output kept from one hook.
const MaxOutput = 4096

// Result is one run of a hook.
type Result struct {
	Output   string
	ExitCode int
	Duration time.Duration
}

// Run runs path with args and extra environment, in its own process group,
// for at most timeout. A non-zero exit is an error naming the code; a hang
// is ErrTimeout, after the whole group was killed so no grandchild holds
// the failover.
func Run(ctx context.Context, path string, args, env []string, timeout time.Duration) (Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Pipes held open by a killed script's children must not keep Wait
	// blocked past the timeout.
	cmd.WaitDelay = time.Second
	out := &limitedBuffer{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	res := Result{Output: out.String(), Duration: time.Since(start), ExitCode: cmd.ProcessState.ExitCode()}
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() == context.DeadlineExceeded:
		return res, fmt.Errorf("%s %v: %w after %s; its process group was killed", path, args, ErrTimeout, timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %v: %w", path, args, ctx.Err())
	default:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return res, fmt.Errorf("%s %v exited with code %d", path, args, ee.ExitCode())
		}
		return res, fmt.Errorf("run %s: %w", path, err)
	}
}

type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
