package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"
)

// Fault kinds. Each is applied at At and healed Hold later; one fault is
// in force at a time, so a run's trace reads as a list.
const (
	killDrwatch        = "kill-drwatch"         // SIGKILL; restarted at heal (as a supervisor would)
	killDrwatchRelease = "kill-drwatch+release" // the same, and `drwatch vip release` run at once (systemd ExecStopPost)
	stopDrwatch        = "stop-drwatch"         // SIGSTOP, SIGCONT at heal
	killDB             = "kill-db"              // SIGKILL mariadbd; restarted at heal (read_only from its my.cnf)
	stopDB             = "stop-db"
	killSSHD           = "kill-sshd"
	stopSSHD           = "stop-sshd"
	dropSites          = "drop-sites"   // iptables DROP both ways between the sites
	oneWay             = "one-way"      // the target site's packets to its peer dropped, not the reverse
	cutArbiters        = "cut-arbiters" // the target site cut from all three arbiters, both ways
	wipeLog            = "wipe-log"     // SIGKILL drwatch, delete its JetStream store, restart at heal
	isolateSite        = "isolate-site" // the target site cut from everyone but the client
)

// Kinds lists every fault kind, in the order -faults names them.
var Kinds = []string{killDrwatch, killDrwatchRelease, stopDrwatch, killDB, stopDB, killSSHD, stopSSHD,
	dropSites, oneWay, cutArbiters, wipeLog, isolateSite}

// Fault is one fault of a run's schedule.
type Fault struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target"` // a, b, arb1..3, or "a-b"
	At     time.Duration `json:"at"`
	Hold   time.Duration `json:"hold"`
}

func (f Fault) String() string {
	return fmt.Sprintf("%s %s at %s for %s", f.Kind, f.Target, f.At.Round(time.Millisecond), f.Hold.Round(time.Millisecond))
}

// Schedule draws a run's faults from its seed: after a warm-up, a gap of
// 2–6 s, then a fault held from 3 s to maxHold, until the run's duration.
// With maxHold 15 s no fault outlasts drwatch's earliestTakeover (20 s
// with these settings); a longer maxHold lets a stopped or cut active
// stay so while its peer takes over.
func Schedule(seed uint64, d, maxHold time.Duration, kinds []string) []Fault {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []Fault
	t := 5 * time.Second
	for {
		t += time.Duration(2000+r.IntN(4000)) * time.Millisecond
		// Whole milliseconds through IntN, as before -max-hold existed, so
		// a recorded seed draws the same schedule at the default.
		hold := time.Duration(3000+r.IntN(max(int((maxHold-3*time.Second)/time.Millisecond), 1))) * time.Millisecond
		if t+hold > d {
			return out
		}
		k := kinds[r.IntN(len(kinds))]
		target := sites[r.IntN(2)].name
		switch k {
		case killSSHD, stopSSHD:
			target = arbs[r.IntN(len(arbs))].name
		case dropSites:
			target = "a-b"
		}
		out = append(out, Fault{Kind: k, Target: target, At: t, Hold: hold})
		t += hold
	}
}

func siteNamed(name string) node {
	if name == "b" {
		return siteB
	}
	return siteA
}

func arbIndex(name string) int {
	for i, a := range arbs {
		if a.name == name {
			return i
		}
	}
	return 0
}

func ipt(ctx context.Context, n node, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", n.ns(), "iptables"}, args...)...)
}

func dropBoth(ctx context.Context, n node, peers ...node) error {
	for _, p := range peers {
		if err := ipt(ctx, n, "-A", "INPUT", "-s", p.addr, "-j", "DROP"); err != nil {
			return err
		}
		if err := ipt(ctx, n, "-A", "OUTPUT", "-d", p.addr, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// apply starts a fault; kills note a Down for the checker.
func (w *world) apply(ctx context.Context, f Fault, down func(site string)) error {
	switch f.Kind {
	case killDrwatch, killDrwatchRelease, wipeLog:
		s := siteNamed(f.Target)
		w.drwatch[s.name].kill()
		down(s.name)
		if f.Kind == killDrwatchRelease {
			if _, err := w.drw(ctx, s, "vip", "release"); err != nil {
				return err
			}
		}
		if f.Kind == wipeLog {
			return os.RemoveAll(w.storeDir(s))
		}
	case stopDrwatch:
		w.drwatch[f.Target].signal(syscall.SIGSTOP)
	case killDB:
		w.db[f.Target].kill()
	case stopDB:
		w.db[f.Target].signal(syscall.SIGSTOP)
	case killSSHD:
		w.sshd[arbIndex(f.Target)].kill()
	case stopSSHD:
		w.sshd[arbIndex(f.Target)].signal(syscall.SIGSTOP)
	case dropSites:
		if err := dropBoth(ctx, siteA, siteB); err != nil {
			return err
		}
		return dropBoth(ctx, siteB, siteA)
	case oneWay:
		s := siteNamed(f.Target)
		return ipt(ctx, s, "-A", "OUTPUT", "-d", peerOf(s).addr, "-j", "DROP")
	case cutArbiters:
		return dropBoth(ctx, siteNamed(f.Target), arbs...)
	case isolateSite:
		s := siteNamed(f.Target)
		return dropBoth(ctx, s, append([]node{peerOf(s)}, arbs...)...)
	default:
		return fmt.Errorf("unknown fault %q", f.Kind)
	}
	return nil
}

// healAll ends whatever fault is in force: rules flushed, stopped
// processes continued, dead ones restarted.
func (w *world) healAll(ctx context.Context) error {
	for _, n := range allNodes {
		_ = ipt(ctx, n, "-F")
	}
	for _, s := range sites {
		w.drwatch[s.name].signal(syscall.SIGCONT)
		w.db[s.name].signal(syscall.SIGCONT)
	}
	for i, p := range w.sshd {
		p.signal(syscall.SIGCONT)
		if p.exited() {
			if err := w.startSSHD(i); err != nil {
				return err
			}
		}
	}
	for _, s := range sites {
		if w.db[s.name].exited() {
			if err := w.startDB(ctx, s); err != nil {
				return err
			}
		}
		if w.drwatch[s.name].exited() {
			if err := w.startDrwatch(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseKinds checks a comma-separated list against Kinds; empty is all.
func ParseKinds(list []string) ([]string, error) {
	if len(list) == 0 {
		return Kinds, nil
	}
	for _, k := range list {
		ok := false
		for _, known := range Kinds {
			ok = ok || k == known
		}
		if !ok {
			return nil, fmt.Errorf("fault %q: want some of %v", k, Kinds)
		}
	}
	return list, nil
}
