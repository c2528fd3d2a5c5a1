package monitor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Checker runs one check; nil means the monitored thing is healthy, an
// error says what is wrong.
type Checker interface {
	Check(ctx context.Context) error
}

// Host says where the checks find the system: tests point them at fixture
// files and stand-in commands.
type Host struct {
	// Proc is the proc file system root (default /proc).
	Proc string
	// Systemctl and Docker are the commands a service monitor runs
	// (default: found on PATH).
	Systemctl string
	Docker    string
}

func (h Host) withDefaults() Host {
	if h.Proc == "" {
		h.Proc = "/proc"
	}
	if h.Systemctl == "" {
		h.Systemctl = "systemctl"
	}
	if h.Docker == "" {
		h.Docker = "docker"
	}
	return h
}

// Config is one monitor as configured.
type Config struct {
	Spec
	// Target: unit ("nginx", "systemd:nginx") or container
	// ("container:web", "docker:web") for service, cmdline pattern for
	// process, path for disk, executable for script.
	Target     string
	Threshold  float64
	Interval   time.Duration
	ResultFile string
}

// NewChecker returns the checker for c.
func NewChecker(c Config, h Host) (Checker, error) {
	h = h.withDefaults()
	switch c.Kind {
	case "service":
		if name, ok := cutAny(c.Target, "container:", "docker:"); ok {
			return &command{what: "container " + name, timeout: cmdTimeout(c.Interval),
				argv: []string{h.Docker, "inspect", "--format", "{{.State.Running}}", name}, wantOut: "true"}, nil
		}
		unit, _ := cutAny(c.Target, "systemd:")
		return &command{what: "unit " + unit, timeout: cmdTimeout(c.Interval),
			argv: []string{h.Systemctl, "is-active", unit}, wantOut: "active"}, nil
	case "process":
		return &process{proc: h.Proc, pattern: c.Target}, nil
	case "memory":
		return &memory{proc: h.Proc, threshold: c.Threshold}, nil
	case "cpu":
		return &cpu{proc: h.Proc, threshold: c.Threshold}, nil
	case "disk":
		return &disk{path: c.Target, threshold: c.Threshold}, nil
	case "script":
		// Seed 004: a script must finish within interval × max failures.
		return &script{path: c.Target, resultFile: c.ResultFile, timeout: c.Interval * time.Duration(max(c.MaxFailures, 1))}, nil
	}
	return nil, fmt.Errorf("monitor %q: kind %q must be service, process, memory, cpu, disk or script", c.Name, c.Kind)
}

func cutAny(s string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return s, false
}

// cmdTimeout gives systemctl and docker at least 5 s: on a loaded host they
// are slow, and a slow answer is not a stopped service.
func cmdTimeout(interval time.Duration) time.Duration { return max(interval, 5*time.Second) }

// command runs argv and wants its first output line to be wantOut.
type command struct {
	what    string
	argv    []string
	wantOut string
	timeout time.Duration
}

func (c *command) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	state := strings.TrimSpace(firstLine(stdout.String()))
	if err == nil && state == c.wantOut {
		return nil
	}
	if state == "" {
		state = strings.TrimSpace(stderr.String())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s did not answer within %s", c.what, c.argv[0], c.timeout)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("%s: run %s: %w", c.what, c.argv[0], err)
	}
	return fmt.Errorf("%s is not running: %s says %q", c.what, filepath.Base(c.argv[0]), truncate(state, 256))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// process looks for a process whose command line matches a pattern. Seed
// 004 tells operators to copy the pattern from `cat /proc/PID/cmdline`,
// which prints the arguments run together, so both that form and the
// space-separated one match.
type process struct {
	proc    string
	pattern string
}

func (p *process) Check(context.Context) error {
	dirs, err := os.ReadDir(p.proc)
	if err != nil {
		return fmt.Errorf("process %q: list %s: %w", p.pattern, p.proc, err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil || d.Name() == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(p.proc, d.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone meanwhile, or a kernel thread
		}
		raw = bytes.TrimRight(raw, "\x00")
		if strings.Contains(string(bytes.ReplaceAll(raw, []byte{0}, []byte(" "))), p.pattern) ||
			strings.Contains(string(bytes.ReplaceAll(raw, []byte{0}, nil)), p.pattern) {
			return nil
		}
	}
	return fmt.Errorf("no process whose %s/PID/cmdline contains %q", p.proc, p.pattern)
}

// memory trips when the share of memory in use is above threshold percent.
type memory struct {
	proc      string
	threshold float64
}

func (m *memory) Check(context.Context) error {
	path := filepath.Join(m.proc, "meminfo")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
			vals[k] = n
		}
	}
	total, avail := vals["MemTotal"], vals["MemAvailable"]
	if total <= 0 {
		return fmt.Errorf("memory: %s has no MemTotal", path)
	}
	if _, ok := vals["MemAvailable"]; !ok {
		return fmt.Errorf("memory: %s has no MemAvailable (kernel older than 3.14?)", path)
	}
	used := (total - avail) / total * 100
	if used > m.threshold {
		return fmt.Errorf("memory %.1f%% used, above the %.1f%% threshold", used, m.threshold)
	}
	return nil
}

// cpu trips when the share of CPU time spent busy since the previous check
// is above threshold percent. The first check only takes the baseline.
type cpu struct {
	proc      string
	threshold float64

	mu          sync.Mutex
	idle, all   uint64
	hasBaseline bool
}

func (c *cpu) Check(context.Context) error {
	idle, all, err := readCPU(filepath.Join(c.proc, "stat"))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prevIdle, prevAll, had := c.idle, c.all, c.hasBaseline
	c.idle, c.all, c.hasBaseline = idle, all, true
	if !had || all <= prevAll {
		return nil
	}
	busy := 100 * (1 - float64(idle-prevIdle)/float64(all-prevAll))
	if busy > c.threshold {
		return fmt.Errorf("cpu %.1f%% busy, above the %.1f%% threshold", busy, c.threshold)
	}
	return nil
}

// readCPU returns idle (idle + iowait) and total jiffies from the "cpu"
// line of /proc/stat. guest and guest_nice are already inside user and
// nice, so they are left out of the total.
func readCPU(path string) (idle, all uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("cpu: %w", err)
	}
	line := firstLine(string(data))
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpu: %s does not start with a cpu line: %q", path, truncate(line, 80))
	}
	for i, f := range fields[1:min(len(fields), 9)] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpu: %s field %d %q is not a number", path, i+1, f)
		}
		all += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, all, nil
}

// disk trips when the file system holding path is fuller than threshold
// percent, counted as df does (blocks reserved for root are not free).
type disk struct {
	path      string
	threshold float64
}

func (d *disk) Check(context.Context) error {
	var st unix.Statfs_t
	if err := unix.Statfs(d.path, &st); err != nil {
		return fmt.Errorf("disk %s: %w", d.path, err)
	}
	used := float64(st.Blocks - st.Bfree)
	denom := used + float64(st.Bavail)
	if denom == 0 {
		return nil
	}
	pct := used / denom * 100
	if pct > d.threshold {
		return fmt.Errorf("disk %s %.1f%% used, above the %.1f%% threshold", d.path, pct, d.threshold)
	}
	return nil
}

// script runs a custom monitor script. It fails when the script exits
// non-zero, does not finish in time, or — seed 004's convention — writes
// "false" as the first five characters of its result file.
type script struct {
	path       string
	resultFile string
	timeout    time.Duration
}

func (s *script) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, s.path)
	cmd.Stdout, cmd.Stderr = &out, &out
	// The script's children die with it: a hung pipeline must not outlive
	// the check.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	tail := strings.TrimSpace(lastBytes(out.String(), 512))
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("script %s did not finish within %s (interval × maxFailures)", s.path, s.timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("script %s exited with status %d: %s", s.path, ee.ExitCode(), tail)
		}
		return fmt.Errorf("script %s: %w", s.path, err)
	}
	if s.resultFile == "" {
		return nil
	}
	f, err := os.Open(s.resultFile)
	if err != nil {
		return fmt.Errorf("script %s: result file: %w", s.path, err)
	}
	defer f.Close()
	head := make([]byte, 5)
	n, _ := f.Read(head)
	if string(head[:n]) == "false" {
		return fmt.Errorf("script %s wrote false to %s", s.path, s.resultFile)
	}
	return nil
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
