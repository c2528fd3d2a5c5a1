// Package chaos is drwatch's real-process chaos harness: both sites as
// `drwatch run` processes in network namespaces, three sshd arbiters, a
// MariaDB per site replicating, the VIP, and a client appending through
// the VIP and to each database, under faults drawn from a seed; then the
// safety and liveness checks over both sites' logs and what the harness
// observed every 10 ms.
package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options is one invocation: how many runs, how long each, from which seed.
type Options struct {
	Runs     int
	Duration time.Duration // faults are drawn within it
	Seed     uint64        // run i uses Seed+i
	Kinds    []string
	MaxHold  time.Duration // longest a fault is held
	// Liveness is the bound, after the final heal, within which exactly
	// one site must be active (one VIP holder, its database alone
	// writable). The default is the longest wait drwatch's timing
	// contract states for these settings (`drwatch validate`:
	// restartYield 2m25.5s, a site that stood down on restart leaving the
	// peer time to take over) plus 15 s.
	Liveness time.Duration
	Repo     string // the repository drwatch is built from
	Work     string // where each run's directory goes
	Keep     bool   // keep every run's directory, not only failing ones
	Out      io.Writer
	Log      *slog.Logger
}

// DefaultOptions are one 60 s run with every fault kind.
func DefaultOptions() Options {
	return Options{Runs: 1, Duration: 60 * time.Second, Seed: 1, Kinds: Kinds, MaxHold: 15 * time.Second, Liveness: 160 * time.Second,
		Work: filepath.Join(os.TempDir(), "drchaos"), Out: os.Stdout, Log: slog.Default()}
}

func (o Options) validate() error {
	switch {
	case o.Runs < 1:
		return fmt.Errorf("runs: %d must be 1 or more", o.Runs)
	case o.Duration < 10*time.Second:
		return fmt.Errorf("duration: %s is shorter than the 10 s a fault needs with its warm-up", o.Duration)
	case o.MaxHold < 3*time.Second || o.MaxHold+7*time.Second > o.Duration:
		return fmt.Errorf("maxHold: %s must be at least 3 s and leave the 5 s warm-up and a 2 s gap within duration %s", o.MaxHold, o.Duration)
	case o.Liveness <= 0:
		return fmt.Errorf("liveness: %s must be positive", o.Liveness)
	case o.Repo == "":
		return errors.New("repo: the repository to build drwatch from is required")
	case os.Geteuid() != 0:
		return errors.New("drchaos needs root (namespaces, iptables, sshd, mariadbd as mysql)")
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db", "mariadb", "/usr/sbin/sshd", "ssh-keygen", "iptables", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: install mariadb-server, mariadb-client, openssh-server, iptables, iproute2", bin)
		}
	}
	return nil
}

// Result is one run's verdict.
type Result struct {
	Seed          uint64         `json:"seed"`
	Dir           string         `json:"dir"`
	Faults        []Fault        `json:"faults"`
	Violations    []string       `json:"violations"`
	Acked         map[string]int `json:"acked"`               // per via: vip, a, b
	Lost          map[string]int `json:"lost"`                // acked and absent from the final active's database
	Diverged      int            `json:"replicationDiverged"` // ReplicationDiverged events drwatch logged
	RoleChanges   int            `json:"roleChanges"`
	Observations  int            `json:"observations"`
	MaxGap        time.Duration  `json:"maxObservationGap"`
	Settled       time.Duration  `json:"settled"` // final heal → exactly one active; -1 if never
	FinalActive   string         `json:"finalActive"`
	JudgedAgainst string         `json:"judgedAgainst"` // whose database the appends were looked up in
	Err           string         `json:"error,omitempty"`
}

// Failed says whether the run found something: a violation, a setup error,
// a loss through the VIP, or no single active within the bound.
func (r Result) Failed() bool {
	return r.Err != "" || len(r.Violations) > 0
}

// Run builds drwatch and runs the pair o.Runs times, printing one line per run
// and a summary.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	// mariadbd runs as mysql and must reach its directory below.
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(o.Work, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(o.Work, "drwatch")
	b := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/drwatch")
	b.Dir = o.Repo
	if out, err := b.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build drwatch: %w: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rev, _ := output(ctx, "git", "-C", o.Repo, "log", "-1", "--format=%h %s")
	fmt.Fprintf(o.Out, "drchaos: drwatch at %s; %d runs of %s, seeds %d…, holds ≤ %s, faults %s\n", strings.TrimSpace(rev), o.Runs, o.Duration, o.Seed, o.MaxHold, strings.Join(o.Kinds, ","))
	var results []Result
	for i := 0; i < o.Runs && ctx.Err() == nil; i++ {
		seed := o.Seed + uint64(i)
		r := runOnce(ctx, o, bin, self, seed)
		results = append(results, r)
		fmt.Fprintln(o.Out, r.line())
		for _, v := range r.Violations {
			fmt.Fprintf(o.Out, "    VIOLATION %s\n", v)
		}
		if !r.Failed() && !o.Keep {
			_ = os.RemoveAll(r.Dir)
		}
	}
	fmt.Fprintln(o.Out, Summary(results))
	return results, nil
}

func (r Result) line() string {
	if r.Err != "" {
		return fmt.Sprintf("seed %d: ERROR %s (dir %s)", r.Seed, r.Err, r.Dir)
	}
	settled := "never"
	if r.Settled >= 0 {
		settled = r.Settled.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("seed %d: %d faults, %d violations; acked vip/a/b %d/%d/%d, lost %d/%d/%d (in %s's database); diverged %d; role changes %d; %d observations (max gap %s); one active %s after heal (%s)",
		r.Seed, len(r.Faults), len(r.Violations), r.Acked["vip"], r.Acked["a"], r.Acked["b"], r.Lost["vip"], r.Lost["a"], r.Lost["b"], r.JudgedAgainst,
		r.Diverged, r.RoleChanges, r.Observations, r.MaxGap.Round(time.Millisecond), settled, r.FinalActive)
}

// Summary is the closing line over all runs.
func Summary(rs []Result) string {
	var failed, errs, viol, lostVIP, ackVIP int
	var seeds []string
	for _, r := range rs {
		if r.Err != "" {
			errs++
		}
		if r.Failed() {
			failed++
			seeds = append(seeds, fmt.Sprint(r.Seed))
		}
		viol += len(r.Violations)
		lostVIP += r.Lost["vip"]
		ackVIP += r.Acked["vip"]
	}
	return fmt.Sprintf("summary: %d runs, %d failed (%d setup errors, %d violations), VIP appends lost %d of %d acknowledged; failing seeds: [%s]",
		len(rs), failed, errs, viol, lostVIP, ackVIP, strings.Join(seeds, " "))
}

// vipSample is who held the VIP at one instant, read over netlink in each
// site's namespace.
type vipSample struct {
	at      time.Time
	holders []string
}

type vipSampler struct {
	handles map[string]*netlink.Handle
}

func newVIPSampler() (*vipSampler, error) {
	v := &vipSampler{handles: map[string]*netlink.Handle{}}
	for _, s := range sites {
		ns, err := netns.GetFromName(s.ns())
		if err != nil {
			return nil, err
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			return nil, err
		}
		v.handles[s.name] = h
	}
	return v, nil
}

func (v *vipSampler) sample() vipSample {
	smp := vipSample{at: time.Now()}
	for _, s := range sites {
		link, err := v.handles[s.name].LinkByName("eth0")
		if err != nil {
			continue
		}
		addrs, err := v.handles[s.name].AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.String() == vipAddr {
				smp.holders = append(smp.holders, s.name)
			}
		}
	}
	return smp
}

func (v *vipSampler) close() {
	for _, h := range v.handles {
		h.Close()
	}
}

// loop samples every 10 ms until ctx ends.
func (v *vipSampler) loop(ctx context.Context, mu *sync.Mutex, into *[]vipSample) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := v.sample()
			mu.Lock()
			*into = append(*into, s)
			mu.Unlock()
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
