// Package pghost drives the PostgreSQL server of this host through its
// data directory and tools: stop, start, pg_rewind, pg_basebackup, and the
// files that make a server a standby. dbmonitor uses it to rebuild a
// standby that lost the WAL it needs, or that forked, and to turn a former
// primary back into a standby, when pgsql.dataDir says the server is local.
package pghost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoOptions means the data directory has no postmaster.opts to restart
// the server with: it was never started by this cluster's postmaster.
var ErrNoOptions = errors.New("no postmaster.opts in the data directory")

// Host is the local PostgreSQL server.
type Host struct {
	// DataDir is the server's data directory (PGDATA).
	DataDir string
	// BinDir holds pg_ctl, pg_rewind, pg_basebackup; empty means PATH.
	BinDir string
	// OSUser owns DataDir and runs the tools, which refuse root.
	OSUser string
	Log    *slog.Logger
}

// Options returns the server's start options as pg_ctl -o wants them,
// read from postmaster.opts (what `pg_ctl restart` reuses): the port,
// socket directory and config file location the server was started with
// survive a rebuild, which replaces the data directory.
func (h *Host) Options() (string, error) {
	b, err := os.ReadFile(filepath.Join(h.DataDir, "postmaster.opts"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %s", ErrNoOptions, h.DataDir)
	}
	if err != nil {
		return "", err
	}
	return ParseOpts(string(b))
}

// ParseOpts turns the content of postmaster.opts
// (`/usr/lib/postgresql/15/bin/postgres "-D" "/data" "-p" "5433"`) into a
// shell-quoted option string without the binary and -D, which pg_ctl
// supplies itself.
func ParseOpts(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("postmaster.opts is empty")
	}
	// The binary is unquoted; every argument after it is double-quoted.
	_, rest, _ := strings.Cut(s, " ")
	var args []string
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] != '"' {
			return "", fmt.Errorf("postmaster.opts: argument %q is not double-quoted", rest)
		}
		end := strings.Index(rest[1:], `" `)
		if end < 0 {
			if !strings.HasSuffix(rest, `"`) || len(rest) < 2 {
				return "", fmt.Errorf("postmaster.opts: unterminated argument %q", rest)
			}
			end = len(rest) - 2
		}
		args = append(args, rest[1:end+1])
		rest = rest[end+2:]
	}
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-D" {
			i++
			continue
		}
		out = append(out, shellQuote(args[i]))
	}
	return strings.Join(out, " "), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (h *Host) bin(name string) string {
	if h.BinDir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(h.BinDir, name)
}

// run executes a tool as OSUser in its own session (a server it starts
// must outlive this process's group) and returns its output on failure.
func (h *Host) run(ctx context.Context, name string, args ...string) (string, error) {
	return h.runEnv(ctx, nil, name, args...)
}

// runEnv is run with extra environment variables for the tool alone.
func (h *Host) runEnv(ctx context.Context, extra []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.bin(name), args...)
	cmd.Dir = filepath.Dir(h.DataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	cmd.Env = append(cmd.Env, extra...)
	if cred, home, err := h.credential(); err != nil {
		return "", err
	} else if cred != nil {
		cmd.SysProcAttr.Credential = cred
		// libpq (in the tools and in a started server's WAL receiver) looks
		// for client certificates under $HOME/.postgresql: root's home is
		// not readable by the server's user.
		cmd.Env = append(cmd.Env, "HOME="+home)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if h.Log != nil {
		h.Log.Info("ran", "tool", name, "seconds", time.Since(start).Seconds(), "err", err)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(redactArgs(args), " "), err, strings.TrimSpace(lastLines(string(out), 8)))
	}
	return string(out), nil
}

// credential is nil when this process already runs as OSUser (or no user
// is named); as root it switches to OSUser.
func (h *Host) credential() (*syscall.Credential, string, error) {
	if h.OSUser == "" {
		return nil, "", nil
	}
	u, err := user.Lookup(h.OSUser)
	if err != nil {
		return nil, "", fmt.Errorf("pgsql.osUser %q: %w", h.OSUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == os.Geteuid() {
		return nil, "", nil
	}
	if os.Geteuid() != 0 {
		return nil, "", fmt.Errorf("pgsql.osUser %q: dbmonitor runs as uid %d and can switch users only as root", h.OSUser, os.Geteuid())
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, u.HomeDir, nil
}

// Running reports whether a postmaster serves DataDir.
func (h *Host) Running(ctx context.Context) bool {
	_, err := h.run(ctx, "pg_ctl", "-D", h.DataDir, "status")
	return err == nil
}

// Stop shuts the server down cleanly (fast mode: sessions are ended, a
// shutdown checkpoint is written, which pg_rewind requires).
func (h *Host) Stop(ctx context.Context) error {
	if !h.Running(ctx) {
		return nil
	}
	_, err := h.run(ctx, "pg_ctl", "-D", h.DataDir, "-m", "fast", "-w", "-t", "60", "stop")
	return err
}

// Start starts the server with opts (from Options) and waits until it
// accepts connections or reports that it cannot.
func (h *Host) Start(ctx context.Context, opts string) error {
	logFile := h.DataDir + ".pg_ctl.log"
	if err := h.prepareFile(logFile); err != nil {
		return err
	}
	args := []string{"-D", h.DataDir, "-l", logFile, "-w", "-t", "120"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	if _, err := h.run(ctx, "pg_ctl", append(args, "start")...); err != nil {
		return fmt.Errorf("%w; server log %s: %s", err, logFile, tailFile(logFile, 6))
	}
	return nil
}

// Rewind makes DataDir a copy of the source server from the point their
// histories split. source is a libpq conninfo of a superuser on the new
// primary without its password, which pg_rewind reads from a passfile
// (see withPassfile). The server must be stopped cleanly.
func (h *Host) Rewind(ctx context.Context, source, password string) (string, error) {
	if err := noPassword(source); err != nil {
		return "", err
	}
	var out string
	err := h.withPassfile(password, func(env []string) error {
		var err error
		out, err = h.runEnv(ctx, env, "pg_rewind", "--target-pgdata="+h.DataDir, "--source-server="+source, "--progress")
		return err
	})
	return out, err
}

// Keep copies the stopped server's data directory beside it, to
// <DataDir>.drwatch-kept-<now>, before pg_rewind rewrites it in place:
// what the rewind discards (the WAL and pages past the fork point) stays
// there for an operator. It needs as much free space again; cp uses
// reflinks where the file system has them.
func (h *Host) Keep(ctx context.Context, now time.Time) (string, error) {
	dst := fmt.Sprintf("%s.drwatch-kept-%s", h.DataDir, now.UTC().Format("20060102T150405"))
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("keep a copy of %s: %s exists already", h.DataDir, dst)
	}
	cp, err := exec.LookPath("cp")
	if err != nil {
		return "", fmt.Errorf("keep a copy of %s: %w", h.DataDir, err)
	}
	if _, err := h.run(ctx, cp, "-a", "--reflink=auto", h.DataDir, dst); err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("keep a copy of %s: %w", h.DataDir, err)
	}
	return dst, nil
}

// NewDir is where BaseBackup writes the fresh copy.
func (h *Host) NewDir() string { return h.DataDir + ".drwatch-new" }

// BaseBackup copies the primary named by conninfo (a replication user,
// without the password: that comes from a passfile) into NewDir with -R,
// so the copy starts as its standby. The current data directory is not
// touched.
func (h *Host) BaseBackup(ctx context.Context, conninfo, password string) error {
	if err := noPassword(conninfo); err != nil {
		return err
	}
	dir := h.NewDir()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	err := h.withPassfile(password, func(env []string) error {
		_, err := h.runEnv(ctx, env, "pg_basebackup", "-d", conninfo, "-D", dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
		return err
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	return nil
}

// Swap puts the fresh copy in place and the old data directory aside; it
// returns where the old one went, for Restore or to be kept.
func (h *Host) Swap(now time.Time) (string, error) {
	old := fmt.Sprintf("%s.drwatch-old-%s", h.DataDir, now.UTC().Format("20060102T150405"))
	if err := os.Rename(h.DataDir, old); err != nil {
		return "", fmt.Errorf("put %s aside: %w", h.DataDir, err)
	}
	if err := os.Rename(h.NewDir(), h.DataDir); err != nil {
		_ = os.Rename(old, h.DataDir)
		return "", fmt.Errorf("put the new copy in place: %w", err)
	}
	return old, nil
}

// Restore undoes Swap: the failed copy goes aside and the old directory
// back in place.
func (h *Host) Restore(old string) error {
	failed := h.DataDir + ".drwatch-failed"
	_ = os.RemoveAll(failed)
	if err := os.Rename(h.DataDir, failed); err != nil {
		return err
	}
	return os.Rename(old, h.DataDir)
}

// WriteStandby makes DataDir start as a standby of conninfo:
// standby.signal and primary_conninfo in postgresql.auto.conf (whatever
// pg_rewind copied from the source there is replaced).
func (h *Host) WriteStandby(conninfo string) error {
	if err := h.writeOwned(filepath.Join(h.DataDir, "standby.signal"), nil); err != nil {
		return err
	}
	auto := filepath.Join(h.DataDir, "postgresql.auto.conf")
	b, err := os.ReadFile(auto)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return h.writeOwned(auto, []byte(SetAutoConf(string(b), "primary_conninfo", conninfo)))
}

// SetAutoConf returns postgresql.auto.conf content with key set to value
// (any earlier line for key removed).
func SetAutoConf(content, key, value string) string {
	var out []string
	for _, line := range strings.Split(content, "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		if strings.TrimSpace(k) == key || line == "" {
			continue
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		out = append(out, "# Do not edit this file manually!", "# It will be overwritten by the ALTER SYSTEM command.")
	}
	out = append(out, fmt.Sprintf("%s = '%s'", key, strings.ReplaceAll(value, "'", "''")))
	return strings.Join(out, "\n") + "\n"
}

func (h *Host) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return h.chown(path)
}

func (h *Host) prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("server log: %w", err)
	}
	f.Close()
	return h.chown(path)
}

func (h *Host) chown(path string) error {
	cred, _, err := h.credential()
	if err != nil || cred == nil {
		return err
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// ErrPasswordInArgs means a conninfo meant for a tool's command line
// carries a password: every local user could read it in /proc.
var ErrPasswordInArgs = errors.New("conninfo for a command line carries a password")

func noPassword(conninfo string) error {
	for _, f := range strings.Fields(conninfo) {
		if strings.HasPrefix(f, "password=") {
			return fmt.Errorf("%w: %s (pass the password separately; it goes to a passfile)", ErrPasswordInArgs, RedactConninfo(conninfo))
		}
	}
	if strings.Contains(conninfo, "://") && strings.Contains(conninfo, "@") {
		if u, _, ok := strings.Cut(conninfo[strings.Index(conninfo, "://")+3:], "@"); ok && strings.Contains(u, ":") {
			return fmt.Errorf("%w: a URL with user:password (pass the password separately; it goes to a passfile)", ErrPasswordInArgs)
		}
	}
	return nil
}

// withPassfile runs fn with PGPASSFILE naming a file that holds password
// for any server, readable by OSUser alone (libpq ignores a passfile others
// can read), and removes it when fn returns. libpq reads it at connect
// time, so the password is never on a command line, where every local
// user can read it (/proc/<pid>/cmdline, ps). An empty password runs fn
// without a passfile.
func (h *Host) withPassfile(password string, fn func(env []string) error) error {
	if password == "" {
		return fn(nil)
	}
	dir, err := os.MkdirTemp("", "drwatch-pgpass-")
	if err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "pgpass")
	// host:port:database:user:password; one connection target per run, so
	// wildcards are exact enough and avoid matching libpq's idea of the
	// host name. ':' and '\' in the password are escaped.
	line := "*:*:*:*:" + strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace(password) + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	if err := h.chown(dir); err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	if err := h.chown(path); err != nil {
		return fmt.Errorf("passfile: %w", err)
	}
	return fn([]string{"PGPASSFILE=" + path})
}

func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = RedactConninfo(a)
	}
	return out
}

// RedactConninfo hides password=... in a libpq conninfo.
func RedactConninfo(s string) string {
	f := strings.Fields(s)
	for i, kv := range f {
		if strings.HasPrefix(kv, "password=") || strings.HasPrefix(kv, "--source-server=password=") {
			f[i] = kv[:strings.Index(kv, "password=")] + "password=***"
		}
	}
	return strings.Join(f, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	return lastLines(string(b), n)
}
