package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/checker"
	"github.com/drwatch/drwatch/pkg/events"
)

// runOnce is one seed: build the pair, load it, inject the schedule, heal,
// wait for one active, then judge.
func runOnce(ctx context.Context, o Options, bin, self string, seed uint64) Result {
	r := Result{Seed: seed, Settled: -1, Acked: map[string]int{}, Lost: map[string]int{}}
	r.Dir = filepath.Join(o.Work, fmt.Sprintf("run-%d", seed))
	_ = os.RemoveAll(r.Dir)
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	r.Faults = Schedule(seed, o.Duration, o.MaxHold, o.Kinds)
	w := &world{dir: r.Dir, bin: bin, drwatch: map[string]*proc{}, db: map[string]*proc{}}
	cleanTopology(ctx)
	defer func() {
		for _, s := range sites {
			w.drwatch[s.name].kill()
			w.db[s.name].kill()
		}
		for _, p := range w.sshd {
			p.kill()
		}
		cleanTopology(context.Background())
	}()
	if err := r.play(ctx, o, w, self); err != nil {
		r.Err = err.Error()
	}
	_ = writeJSON(filepath.Join(r.Dir, "result.json"), r)
	return r
}

func (r *Result) play(ctx context.Context, o Options, w *world, self string) error {
	if err := buildTopology(ctx); err != nil {
		return err
	}
	for _, s := range sites {
		if err := os.MkdirAll(w.siteDir(s), 0o755); err != nil {
			return err
		}
	}
	if err := w.startArbiters(ctx); err != nil {
		return err
	}
	if err := w.setupDBs(ctx); err != nil {
		return err
	}
	if err := w.writeConfigs(); err != nil {
		return err
	}
	for _, s := range sites {
		if err := w.startDrwatch(ctx, s); err != nil {
			return err
		}
	}
	// drwatch takes the VIP inside a takeover only: the initial active's
	// is placed once, as an operator's first setup would (drbench does
	// the same).
	if err := run(ctx, "ip", "-n", siteA.ns(), "addr", "add", vipAddr+"/24", "dev", "eth0"); err != nil {
		return err
	}
	vs, err := newVIPSampler()
	if err != nil {
		return err
	}
	defer vs.close()
	// Let both sites start and find each other before the clock starts.
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return err
	}

	client, err := start(r.Dir, clientNS, "client", self, "client")
	if err != nil {
		return err
	}
	defer client.stop()
	var mu sync.Mutex
	var vips []vipSample
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go vs.loop(sctx, &mu, &vips)

	t0 := time.Now()
	var downs []checker.Down
	trace, err := os.Create(filepath.Join(r.Dir, "faults.log"))
	if err != nil {
		return err
	}
	defer trace.Close()
	for _, f := range r.Faults {
		if err := sleepCtx(ctx, time.Until(t0.Add(f.At))); err != nil {
			return err
		}
		fmt.Fprintf(trace, "%s apply %s\n", time.Now().Format(time.RFC3339Nano), f)
		if err := w.apply(ctx, f, func(site string) { downs = append(downs, checker.Down{Site: site, At: time.Now()}) }); err != nil {
			return fmt.Errorf("apply %s: %w", f, err)
		}
		if err := sleepCtx(ctx, f.Hold); err != nil {
			return err
		}
		fmt.Fprintf(trace, "%s heal %s\n", time.Now().Format(time.RFC3339Nano), f)
		if err := w.healAll(ctx); err != nil {
			return fmt.Errorf("heal %s: %w", f, err)
		}
	}
	if err := sleepCtx(ctx, time.Until(t0.Add(o.Duration))); err != nil {
		return err
	}
	if err := w.healAll(ctx); err != nil {
		return err
	}
	healed := time.Now()
	fmt.Fprintf(trace, "%s final heal\n", healed.Format(time.RFC3339Nano))

	// Liveness: exactly one VIP holder whose database alone is writable,
	// steady for 3 s, within the bound.
	var steadySince time.Time
	for time.Since(healed) < o.Liveness {
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		mu.Lock()
		last := vips[len(vips)-1]
		mu.Unlock()
		one := ""
		if len(last.holders) == 1 {
			one = last.holders[0]
		}
		if one != "" && w.writable(ctx, siteNamed(one)) && !w.writable(ctx, peerOf(siteNamed(one))) {
			if steadySince.IsZero() {
				steadySince = time.Now()
			}
			if time.Since(steadySince) >= 3*time.Second {
				r.Settled, r.FinalActive = steadySince.Sub(healed), one
				break
			}
		} else {
			steadySince = time.Time{}
		}
	}
	// A little more load on the settled pair, then stop and judge.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	client.stop()
	stopSampling()
	// Let replication catch up before the other database is read.
	_ = sleepCtx(ctx, 2*time.Second)
	return r.judge(ctx, w, t0, downs, vips, o.Liveness)
}

// writable reads read_only through the site's socket as root.
func (w *world) writable(ctx context.Context, s node) bool {
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out, err := w.my(c, s, "SELECT @@read_only")
	return err == nil && out == "0"
}

func (r *Result) judge(ctx context.Context, w *world, t0 time.Time, downs []checker.Down, vips []vipSample, bound time.Duration) error {
	acks, wr, err := readClient(filepath.Join(r.Dir, "client.log"))
	if err != nil {
		return err
	}
	obs := observations(t0, vips, wr)
	r.Observations = len(obs)
	for i := 1; i < len(obs); i++ {
		r.MaxGap = max(r.MaxGap, obs[i].At.Sub(obs[i-1].At))
	}

	// Both logs: each site's own RoleChanged/RoleConfirmed from its own
	// log (its copy of the peer's may lag), exported after the heal.
	var changes []checker.RoleChange
	for _, s := range sites {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := w.drw(c, s, "events", "export", "-o", filepath.Join(r.Dir, "log-"+s.name+".jsonl"))
		cancel()
		if err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("site %s's log could not be read after the heal: %v %s", s.name, err, out))
			continue
		}
		cs, div, err := readLog(filepath.Join(r.Dir, "log-"+s.name+".jsonl"), s.name)
		if err != nil {
			return err
		}
		changes = append(changes, cs...)
		r.Diverged += div
	}
	r.RoleChanges = len(changes)
	ivs := checker.ActiveIntervals("a", t0, changes, downs)
	r.Violations = append(r.Violations, checker.NeverTwoActiveObserved(ivs, obs)...)
	if r.Settled < 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("no single active site (one VIP holder, its database alone writable) within %s of the final heal", bound))
	}

	// Every acknowledged append must be in the final active's database;
	// with no single active, in the last VIP holder's (the database the
	// client's VIP appends went to last), else site a's.
	final := siteA
	last := ""
	if len(vips) > 0 && len(vips[len(vips)-1].holders) == 1 {
		last = vips[len(vips)-1].holders[0]
	}
	if r.FinalActive == "b" || (r.FinalActive == "" && last == "b") {
		final = siteB
	}
	r.JudgedAgainst = final.name
	present, err := w.ids(ctx, final)
	if err != nil {
		return err
	}
	var lostVIP []int64
	for via, ids := range acks {
		r.Acked[via] = len(ids)
		for _, id := range ids {
			if !present[id] {
				r.Lost[via]++
				if via == "vip" {
					lostVIP = append(lostVIP, id)
				}
			}
		}
	}
	if len(lostVIP) > 0 {
		sort.Slice(lostVIP, func(i, j int) bool { return lostVIP[i] < lostVIP[j] })
		r.Violations = append(r.Violations, fmt.Sprintf("%d appends acknowledged through the VIP are not in site %s's database after the heal (first id %d; drwatch logged %d ReplicationDiverged)",
			len(lostVIP), final.name, lostVIP[0], r.Diverged))
	}
	return nil
}

func (w *world) ids(ctx context.Context, s node) (map[int64]bool, error) {
	out, err := w.my(ctx, s, "SELECT id FROM chaos.appends")
	if err != nil {
		return nil, err
	}
	m := map[int64]bool{}
	for _, l := range strings.Fields(out) {
		if v, err := strconv.ParseInt(l, 10, 64); err == nil {
			m[v] = true
		}
	}
	return m, nil
}

type reading struct {
	at       time.Time
	writable string // 1, 0, ?
}

func readClient(path string) (map[string][]int64, map[string][]reading, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	acks := map[string][]int64{}
	wr := map[string][]reading{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		switch {
		case len(fl) == 5 && fl[0] == "ack":
			id, _ := strconv.ParseInt(fl[2], 10, 64)
			acks[fl[1]] = append(acks[fl[1]], id)
		case len(fl) == 4 && fl[0] == "w":
			ns, _ := strconv.ParseInt(fl[2], 10, 64)
			wr[fl[1]] = append(wr[fl[1]], reading{time.Unix(0, ns), fl[3]})
		}
	}
	return acks, wr, sc.Err()
}

// observations puts each VIP sample beside the latest read_only reading
// of each database taken at most 100 ms before it; an older or missing
// reading counts as not writable at that instant.
func observations(t0 time.Time, vips []vipSample, wr map[string][]reading) []checker.Observation {
	var out []checker.Observation
	idx := map[string]int{}
	for _, v := range vips {
		if v.at.Before(t0) {
			continue
		}
		o := checker.Observation{At: v.at, VIP: v.holders}
		for _, s := range sites {
			rs := wr[s.name]
			i := idx[s.name]
			for i+1 < len(rs) && !rs[i+1].at.After(v.at) {
				i++
			}
			idx[s.name] = i
			if i < len(rs) && !rs[i].at.After(v.at) && v.at.Sub(rs[i].at) <= 100*time.Millisecond && rs[i].writable == "1" {
				o.Writable = append(o.Writable, s.name)
			}
		}
		out = append(out, o)
	}
	return out
}

// readLog returns the site's own role events and how many
// ReplicationDiverged it logged.
func readLog(path, site string) ([]checker.RoleChange, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var out []checker.RoleChange
	div := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var env events.Envelope
		if err := json.Unmarshal(sc.Bytes(), &env); err != nil || string(env.Site) != site {
			continue
		}
		switch env.Type {
		case "RoleChanged":
			var ev events.RoleChanged
			if json.Unmarshal(env.Payload, &ev) == nil {
				out = append(out, checker.RoleChange{Site: site, At: env.Time, From: string(ev.From), To: string(ev.To), Epoch: uint64(ev.Epoch)})
			}
		case "RoleConfirmed":
			var ev events.RoleConfirmed
			if json.Unmarshal(env.Payload, &ev) == nil {
				out = append(out, checker.RoleChange{Site: site, At: env.Time, From: string(ev.Role), To: string(ev.Role), Epoch: uint64(ev.Epoch), Resumed: true})
			}
		case "ReplicationDiverged":
			div++
		}
	}
	return out, div, sc.Err()
}
