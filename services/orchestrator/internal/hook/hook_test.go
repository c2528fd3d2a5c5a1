package hook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	t.Run("output, args and environment", func(t *testing.T) {
		p := script(t, `echo "$1 $2 site=$DRWATCH_SITE"; echo oops >&2`)
		res, err := Run(ctx, p, []string{"pre", "s2m"}, []string{"DRWATCH_SITE=b"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Output != "pre s2m site=b\noops\n" || res.ExitCode != 0 {
			t.Fatalf("got %q code %d", res.Output, res.ExitCode)
		}
	})
	t.Run("non-zero exit", func(t *testing.T) {
		res, err := Run(ctx, script(t, "echo vetoed; exit 3"), nil, nil, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "exited with code 3") || res.Output != "vetoed\n" {
			t.Fatalf("err %v output %q", err, res.Output)
		}
	})
	t.Run("a hang is killed with its children", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "child-survived")
		p := script(t, "echo started; (sleep 2; touch "+marker+") & sleep 60")
		start := time.Now()
		res, err := Run(ctx, p, nil, nil, 300*time.Millisecond)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Run took %s after a 300ms timeout", d)
		}
		if res.Output != "started\n" {
			t.Errorf("output %q", res.Output)
		}
		time.Sleep(2500 * time.Millisecond)
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("a child of the hung hook outlived the kill")
		}
	})
	t.Run("missing script", func(t *testing.T) {
		_, err := Run(ctx, "/nonexistent/hook", nil, nil, time.Second)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/hook") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("output is bounded", func(t *testing.T) {
		res, err := Run(ctx, script(t, "yes | head -c 100000"), nil, nil, 5*time.Second)
		if err != nil || len(res.Output) != MaxOutput {
			t.Fatalf("err %v len %d", err, len(res.Output))
		}
	})
}
