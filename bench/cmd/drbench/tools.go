package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drwatch/drwatch/bench/internal/report"
)

// Common timers: every tool probes its peer about once a second and gives
// up after about three seconds of silence, where the tool allows it.
const (
	probeEvery = time.Second
	kaVIP      = subnet + ".50"
	pgVIP      = subnet + ".51"
	dwVIP      = subnet + ".52"
	kvPort     = 7000
)

// tool is one failover system under test.
type tool interface {
	name() string
	settings(r *report.Report)
	// setup starts what lives outside the sites (etcd, arbiters).
	setup(ctx context.Context) error
	// startSite starts the tool's processes in a site; first is true only
	// at the very beginning, when a is made active.
	startSite(ctx context.Context, s node, first bool) error
	// writer is the client's write load (kind and target).
	writer() (kind, target string)
	// vip is the address the client writes to.
	vip() string
	// detected returns when the standby noticed the active's death, after t0.
	detected(standby node, t0 time.Time) (time.Time, bool)
	// becameActive counts the standby's takeovers after t0 (false
	// failovers under netem).
	takeovers(s node, t0 time.Time) int
	// ready reports whether the pair is whole again (the old active back
	// as standby) so the next run may start.
	ready(ctx context.Context, active node, since time.Time) bool
	// hasData reports whether RPO is meaningful (the tool replicates data).
	hasData() bool
	// switchover asks for a planned switchover to the standby.
	switchover(ctx context.Context, to node) error
	teardown()
}

// stateLog is a file of "<unix ns> <word>" lines appended by hooks.
type stateLog struct{ path string }

func (s stateLog) after(t0 time.Time, match func(string) bool) []time.Time {
	b, _ := os.ReadFile(s.path)
	var out []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || ns <= t0.UnixNano() || !match(strings.Join(f[1:], " ")) {
			continue
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), mode)
}

// ---- keepalived ----

type keepalived struct {
	dir   string
	self  string
	procs map[string][]*proc
}

func (k *keepalived) name() string { return "keepalived" }

func (k *keepalived) settings(r *report.Report) {
	r.Setf(k.name(), "vrrp", "unicast between 10.77.0.1 and .2, state BACKUP on both, priority 100 both, nopreempt (failback manual, as drwatch)")
	r.Setf(k.name(), "advert_int", "1s (the probe interval)")
	r.Setf(k.name(), "master down interval", "3 × advert_int + skew (256−100)/256 s = 3.61 s (fixed by VRRPv2; not configurable)")
	r.Setf(k.name(), "garp_master_delay / garp_master_repeat", "0 / 1 (one gratuitous ARP at once, as drwatch's VIP)")
	r.Setf(k.name(), "virtual_ipaddress", "%s/24 dev eth0", kaVIP)
	r.Setf(k.name(), "service behind the VIP", "drbench kvserve :%d in each site (fsynced append); no replication, so no RPO", kvPort)
}

func (k *keepalived) setup(context.Context) error { k.procs = map[string][]*proc{}; return nil }

func (k *keepalived) startSite(ctx context.Context, s node, first bool) error {
	peer := site(peerOf(s.name))
	state := filepath.Join(k.dir, "ka-"+s.name+".state")
	notify := filepath.Join(k.dir, "ka-notify.sh")
	if err := writeFile(notify, "#!/bin/sh\n# $1 type, $2 name, $3 state\necho \"$(date +%s%N) $3\" >> \"$STATEFILE\"\n", 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`global_defs {
  router_id drbench_%[1]s
  script_user root
  enable_script_security
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}
vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id 77
  priority 100
  advert_int 1
  unicast_src_ip %[2]s
  unicast_peer {
    %[3]s
  }
  virtual_ipaddress {
    %[4]s/24 dev eth0
  }
  notify "/usr/bin/env STATEFILE=%[5]s %[6]s"
}
`, s.name, s.addr, peer.addr, kaVIP, state, notify)
	cfg := filepath.Join(k.dir, "keepalived-"+s.name+".conf")
	if err := writeFile(cfg, conf, 0o644); err != nil {
		return err
	}
	kv, err := start(k.dir, s, "", "kvserve-"+s.name, nil, k.self, "kvserve", "-listen", fmt.Sprintf(":%d", kvPort), "-file", filepath.Join(k.dir, "kv-"+s.name+".data"))
	if err != nil {
		return err
	}
	pid := filepath.Join(k.dir, "ka-"+s.name)
	// A killed keepalived leaves its pid files; when a pid has been reused
	// it refuses to start ("daemon is already running").
	for _, f := range []string{".pid", "-vrrp.pid", "-check.pid"} {
		_ = os.Remove(pid + f)
	}
	ka, err := start(k.dir, s, "", "keepalived-"+s.name, nil, "keepalived", "-n", "-l", "-D", "-f", cfg,
		"-p", pid+".pid", "-r", pid+"-vrrp.pid", "-c", pid+"-check.pid")
	if err != nil {
		return err
	}
	k.procs[s.name] = []*proc{kv, ka}
	if first && s == siteA {
		// Both start as BACKUP with nopreempt; give a the head start so
		// it is the one that becomes MASTER.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if len(stateLog{state}.after(time.Time{}, isMaster)) > 0 {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("keepalived in site a never became MASTER (see %s)", filepath.Join(k.dir, "keepalived-a.log"))
	}
	return nil
}

func (k *keepalived) vip() string { return kaVIP }

func isMaster(s string) bool { return s == "MASTER" }

func (k *keepalived) writer() (string, string) { return "kv", fmt.Sprintf("%s:%d", kaVIP, kvPort) }

func (k *keepalived) detected(standby node, t0 time.Time) (time.Time, bool) {
	ts := stateLog{filepath.Join(k.dir, "ka-"+standby.name+".state")}.after(t0, isMaster)
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0], true
}

func (k *keepalived) takeovers(s node, t0 time.Time) int {
	return len(stateLog{filepath.Join(k.dir, "ka-"+s.name+".state")}.after(t0, isMaster))
}

func (k *keepalived) ready(ctx context.Context, active node, since time.Time) bool {
	// The returning node must have entered BACKUP since it was restarted.
	other := site(peerOf(active.name))
	return len(stateLog{filepath.Join(k.dir, "ka-"+other.name+".state")}.after(since, func(s string) bool { return s == "BACKUP" })) > 0
}

func (k *keepalived) hasData() bool { return false }

func (k *keepalived) switchover(context.Context, node) error {
	return fmt.Errorf("keepalived holds no data")
}

func (k *keepalived) teardown() {
	for _, ps := range k.procs {
		for _, p := range ps {
			p.stop()
		}
	}
}
