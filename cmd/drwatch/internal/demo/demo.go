// Package demo is `drwatch demo`: a whole pair on one machine, with no
// Docker and no root — two sites, each every drwatch service in one
// site.Run on an embedded NATS, joined by a leafnode through a relay that
// can be cut; three arbiters as in-process SSH servers; a VIP on a
// loopback port that only the active site holds; and a client writing
// through it. It powers off the active site and shows the standby take
// over, live, then prints the incident's timeline. The same topology
// serves the partition fuzzer.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/timeline"
	"github.com/drwatch/drwatch/pkg/events"
)

// ErrUsage marks a bad command line.
var ErrUsage = errors.New("demo")

// Main runs `drwatch demo [flags]` with the site's services.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, services []site.Service) error {
	fs := flag.NewFlagSet("drwatch demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 2*time.Minute, "give up (exit 1) if the story has not ended by then")
	keep := fs.Bool("keep", false, "leave the pair running after the story, until Ctrl-C")
	vipPort := fs.Int("vip-port", 17070, "loopback port of the simulated VIP")
	dir := fs.String("dir", "", "directory for both sites' data and logs (default: a new temporary one, removed at the end)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: drwatch demo [--duration D] [--keep] [--vip-port P] [--dir D]\n\n"+
			"Two sites, three arbiters and a VIP on loopback (no Docker, no root): site a is\n"+
			"powered off and site b takes over while a client writes through the VIP.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, strings.Join(fs.Args(), " "))
	}
	if *duration <= 0 {
		return fmt.Errorf("%w: --duration %s must be positive", ErrUsage, *duration)
	}
	if *vipPort < 1 || *vipPort > 65535 {
		return fmt.Errorf("%w: --vip-port %d must be 1-65535", ErrUsage, *vipPort)
	}
	d := Demo{Out: stdout, Duration: *duration, Keep: *keep, VIPPort: *vipPort, Dir: *dir, Services: services}
	return d.Run(ctx)
}

// Demo is one run of the story.
type Demo struct {
	Out      io.Writer
	Duration time.Duration
	Keep     bool
	VIPPort  int
	Dir      string
	Services []site.Service
}

// Run tells the story and returns nil when site b took over and the
// client wrote through it.
func (d Demo) Run(ctx context.Context) (err error) {
	dir := d.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "drwatch-demo-")
		if err != nil {
			return err
		}
		// Kept when the story fails, for its logs.
		defer func() {
			if err == nil && !d.Keep {
				os.RemoveAll(dir)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "sites.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	p := newPrinter(d.Out)
	storyCtx, cancel := context.WithTimeout(ctx, d.Duration)
	defer cancel()
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()

	t, err := NewTopology(runCtx, TopologyOptions{
		Dir: dir, Services: d.Services, VIPPort: d.VIPPort, Linger: 3 * time.Second,
		Log: slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := t.Stop(); serr != nil && err == nil && !errors.Is(serr, context.Canceled) {
			err = serr
		}
	}()
	p.say("drwatch demo: two sites on loopback, no Docker, no root")
	p.say(fmt.Sprintf("  data and service logs: %s", dir))
	p.say(fmt.Sprintf("  VIP %s (a loopback listener only the active site holds)", t.VIPAddr))
	p.say(fmt.Sprintf("  arbiters: %d SSH servers; site a logs in from %s, site b from %s", len(t.Arbiters), sourceIP["a"], sourceIP["b"]))
	p.say("  timers: heartbeat every 1s, timeout 500ms, 2 retries")
	p.say("")

	for _, name := range Sites {
		if err := t.Start(runCtx, name); err != nil {
			return err
		}
	}
	w, err := newWatcher(t)
	if err != nil {
		return err
	}
	defer w.close()
	client := &Client{Addr: t.VIPAddr, Period: 100 * time.Millisecond}
	clientCtx, stopClient := context.WithCancel(runCtx)
	clientDone := make(chan struct{})
	go func() { defer close(clientDone); client.Run(clientCtx) }()
	defer func() { stopClient(); <-clientDone }()

	start := time.Now()
	show := func() { p.status(renderStatus(time.Since(start), t, w, client)) }
	// wait polls the logs and redraws the status every second until cond
	// holds.
	wait := func(what string, cond func() bool) error {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			w.poll(storyCtx)
			show()
			if cond() {
				return nil
			}
			select {
			case <-storyCtx.Done():
				p.say("")
				return fmt.Errorf("demo: %s did not happen within --duration %s (service logs: %s)", what, d.Duration, logPath)
			case <-tick.C:
			}
		}
	}

	p.say("== starting both sites; site a is configured active")
	err = wait("the pair coming up", func() bool {
		a, _ := w.view("a")
		b, _ := w.view("b")
		return a.Role == events.RoleActive && t.Site("a").VIP.IsHeld() && b.Role == events.RoleStandby &&
			noLineDown(a) && noLineDown(b) && t.ManagedBy("a") == len(t.Arbiters) && client.Stats().BySite["a"] > 0
	})
	if err != nil {
		return err
	}
	p.say("== the pair is up: a active and holding the VIP, b standby, the client writes through a")
	for i := 0; i < 2; i++ {
		if err := wait("", func() bool { return true }); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}

	p.say("== powering off site a: its process, its VIP and its network go dark")
	off := time.Now()
	if err := t.PowerOff("a"); err != nil && !errors.Is(err, context.Canceled) {
		p.say(fmt.Sprintf("   site a stopped with: %v", err))
	}
	ackedBefore := client.Stats().BySite["b"]
	err = wait("site b taking over", func() bool {
		b, _ := w.view("b")
		return b.Role == events.RoleActive && t.Site("b").VIP.IsHeld() && client.Stats().BySite["b"] > ackedBefore
	})
	if err != nil {
		return err
	}
	took := time.Since(off)
	p.say(fmt.Sprintf("== site b is active and holds the VIP; the client writes through b again (%.1fs after the power-off)", took.Seconds()))
	p.done()

	if err := d.summary(t, w, client, off); err != nil {
		return err
	}
	if d.Keep {
		fmt.Fprintf(d.Out, "\n--keep: site b keeps running (VIP %s, data in %s); Ctrl-C to stop.\n", t.VIPAddr, dir)
		<-ctx.Done()
	}
	return nil
}

// noLineDown: no heartbeat line reports the peer lost (the heartbeat
// records transitions only, so a peer up from the start has no event).
func noLineDown(s status.Site) bool {
	for _, l := range s.Lines {
		if !l.Reachable {
			return false
		}
	}
	return true
}

// summary prints the measured times and the incident's timeline from site
// b's log.
func (d Demo) summary(t *Topology, w *watcher, client *Client, off time.Time) error {
	recs := w.records("b")
	var detected, started, active time.Time
	var failoverID string
	var detection events.CorrelationID
	for _, r := range recs {
		if r.Env.Site != "b" || r.Env.Time.Before(off) {
			continue
		}
		ev, err := events.Decode(r.Env)
		if err != nil {
			continue
		}
		switch e := ev.(type) {
		case events.RemoteUnreachable:
			if detected.IsZero() {
				detected, detection = r.Env.Time, r.Env.CorrelationID
			}
		case events.FailoverStarted:
			if e.To == events.RoleActive && started.IsZero() {
				started, failoverID = r.Env.Time, e.FailoverID
			}
		case events.RoleChanged:
			if e.To == events.RoleActive && active.IsZero() {
				active = r.Env.Time
			}
		}
	}
	st := client.Stats()
	fmt.Fprintln(d.Out)
	fmt.Fprintln(d.Out, "== measured")
	fmt.Fprintf(d.Out, "  power-off → b detects (RemoteUnreachable)   %s\n", since(off, detected))
	fmt.Fprintf(d.Out, "  power-off → b decides (FailoverStarted)     %s\n", since(off, started))
	fmt.Fprintf(d.Out, "  decision → b active (RoleChanged)           %s\n", since(started, active))
	fmt.Fprintf(d.Out, "  client: %d writes acknowledged (a %d, b %d), %d reconnects, longest gap %s\n",
		st.Acked, st.BySite["a"], st.BySite["b"], st.Reconnects, st.LongestGap.Round(10*time.Millisecond))
	if failoverID == "" {
		return errors.New("demo: site b's log holds no FailoverStarted for its takeover")
	}
	trecs := make([]timeline.Record, 0, len(recs))
	for _, r := range recs {
		trecs = append(trecs, timeline.Record{Seq: r.Seq, Env: r.Env})
	}
	// The detection (RemoteUnreachable and the arbitration it caused) and
	// the saga are two threads of one incident.
	picked := timeline.Select(trecs, timeline.Selector{Correlation: detection, Failover: failoverID})
	fmt.Fprintln(d.Out)
	fmt.Fprintln(d.Out, "== incident timeline (site b's log; the saga alone: drwatch events timeline --failover "+failoverID+")")
	return timeline.WriteText(d.Out, timeline.Build("failover "+failoverID+": site a powered off, site b takes over", picked))
}

func since(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return "-"
	}
	return to.Sub(from).Round(time.Millisecond).String()
}
