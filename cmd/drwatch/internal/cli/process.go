package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
)

// start, stop and reset manage the site process on a host without a
// service manager: `start` launches `drwatch run` in its own session with a
// pidfile and a log file and returns once the site answers; `stop` sends
// SIGTERM and waits; `reset` stops it and deletes the site's DR data. Under
// systemd or docker-compose, use their own start/stop instead: they run
// `drwatch run` in the foreground.

type procFlags struct {
	cfgPath, pidfile, logfile *string
	wait                      *time.Duration
}

func newProcFlags(fs *flag.FlagSet) *procFlags {
	return &procFlags{
		cfgPath: configFlag(fs),
		pidfile: fs.String("pidfile", "", "pidfile (default drwatch-<site>.pid beside nats.embedded.storeDir)"),
		logfile: fs.String("logfile", "", "log file of the background process (default drwatch-<site>.log beside the pidfile)"),
		wait:    fs.Duration("wait", 30*time.Second, "how long to wait for the site to start or stop"),
	}
}

// paths resolves the pidfile and log file for cfg.
func (f *procFlags) paths(cfg *config.Config) (pidfile, logfile string) {
	pidfile, logfile = *f.pidfile, *f.logfile
	if pidfile == "" {
		pidfile = filepath.Join(filepath.Dir(filepath.Clean(cfg.NATS.Embedded.StoreDir)), "drwatch-"+cfg.Site.Name+".pid")
	}
	if logfile == "" {
		logfile = strings.TrimSuffix(pidfile, ".pid") + ".log"
	}
	return pidfile, logfile
}

// runningPID returns the pid in pidfile when that process is alive and is
// a drwatch, 0 otherwise (a stale pidfile is not an error).
func runningPID(pidfile string) (int, error) {
	data, err := os.ReadFile(pidfile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s holds %q, not a pid: remove it", pidfile, strings.TrimSpace(string(data)))
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, nil
	}
	// A recycled pid belongs to something else: never signal it.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		if !bytes.Contains(cmdline, []byte("drwatch")) || !bytes.Contains(cmdline, []byte("run")) {
			return 0, nil
		}
	}
	return pid, nil
}

func startCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("start", stderr)
	f := newProcFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	path, err := filepath.Abs(*f.cfgPath)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("not started: %w", err)
	}
	pidfile, logfile := f.paths(cfg)
	pid, err := runningPID(pidfile)
	if err != nil {
		return err
	}
	if pid != 0 {
		fmt.Fprintf(stdout, "site %s is already running (pid %d, %s)\n", cfg.Site.Name, pid, pidfile)
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pidfile), 0o750); err != nil {
		return err
	}
	logf, err := os.OpenFile(logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "run", "-config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the site outlives this command and the terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start drwatch run: %w", err)
	}
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(*f.wait)
	for {
		select {
		case err := <-exited:
			_ = os.Remove(pidfile)
			return fmt.Errorf("site %s exited while starting (%v); the end of %s:\n%s", cfg.Site.Name, err, logfile, tail(logfile, 2048))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if c, err := dial(ctx, cfg, time.Second); err == nil {
			c.Close()
			ok := true
			if cfg.HTTP.Listen != "" {
				ok = httpCheck(ctx, "http://"+cfg.HTTP.Listen+"/healthz", time.Second).OK
			}
			if ok {
				fmt.Fprintf(stdout, "site %s started (pid %d, log %s)\n", cfg.Site.Name, cmd.Process.Pid, logfile)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("site %s (pid %d) did not answer within %s; it keeps starting in the background: see %s, stop it with drwatch stop", cfg.Site.Name, cmd.Process.Pid, *f.wait, logfile)
		}
	}
}

func tail(path string, n int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(data)) > n {
		data = data[int64(len(data))-n:]
	}
	return string(data)
}

func stopCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stop", stderr)
	f := newProcFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*f.cfgPath)
	if err != nil {
		return err
	}
	return stopSite(ctx, cfg, f, stdout)
}

func stopSite(ctx context.Context, cfg *config.Config, f *procFlags, stdout io.Writer) error {
	pidfile, _ := f.paths(cfg)
	pid, err := runningPID(pidfile)
	if err != nil {
		return err
	}
	if pid == 0 {
		_ = os.Remove(pidfile)
		fmt.Fprintf(stdout, "site %s is not running (no live process in %s)\n", cfg.Site.Name, pidfile)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(*f.wait)
	for {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			_ = os.Remove(pidfile)
			fmt.Fprintf(stdout, "site %s stopped (pid %d)\n", cfg.Site.Name, pid)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("site %s (pid %d) still running %s after SIGTERM; it may be finishing a failover step: check drwatch events tail, or kill it", cfg.Site.Name, pid, *f.wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// isZombie: an exited child not yet reaped counts as stopped.
func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// resetCmd is seed 000's reset: stop DR and delete its data, so the site
// starts again as if init had just run. Asks for --yes because the log is
// the history of every decision.
func resetCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reset", stderr)
	f := newProcFlags(fs)
	yes := fs.Bool("yes", false, "really delete this site's event log and file backups")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*f.cfgPath)
	if err != nil {
		return err
	}
	var dirs []string
	if cfg.NATS.URL == "" {
		dirs = append(dirs, cfg.NATS.Embedded.StoreDir)
	}
	dirs = append(dirs, cfg.File.Dir)
	if !*yes {
		return fmt.Errorf("%w: reset stops site %s and deletes %s; repeat with --yes", errUsage, cfg.Site.Name, strings.Join(dirs, " and "))
	}
	if err := stopSite(ctx, cfg, f, stdout); err != nil {
		return fmt.Errorf("not reset: %w", err)
	}
	for _, d := range dirs {
		if d == "" || filepath.Clean(d) == "/" {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("delete %s: %w", d, err)
		}
		fmt.Fprintf(stdout, "deleted %s\n", d)
	}
	if cfg.NATS.URL != "" {
		fmt.Fprintf(stdout, "the log is on %s: delete its EVENTS and POISON streams there to finish the reset\n", cfg.NATS.URL)
	}
	return nil
}
