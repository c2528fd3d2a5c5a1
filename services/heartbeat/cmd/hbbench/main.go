// Command hbbench measures how long the heartbeat takes to announce a dead
// peer (peer death → RemoteUnreachable) at several interval / timeout /
// retries settings, against loopback TCP listeners, and prints it beside
// the configured bounds.
//
// Two deaths are measured: "refused" closes the listeners, so every probe
// fails at once (a host that is up with the service gone, or a peer whose
// kernel answers RST); "silent" makes every probe wait its whole timeout (a
// powered-off peer or a cut link, where packets are dropped).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/heartbeat/internal/line"
	"github.com/drwatch/drwatch/services/heartbeat/internal/probe"
)

type setting struct {
	interval, timeout time.Duration
	retries           int
}

func main() {
	trials := flag.Int("trials", 8, "deaths measured per setting and mode")
	list := flag.String("settings", "100ms/20ms/2,100ms/10ms/4,250ms/50ms/4,500ms/100ms/4,1s/200ms/4", "interval/timeout/retries, comma-separated")
	flag.Parse()
	settings, err := parseSettings(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "interval\ttimeout\tretries\tdeath\tbound\tmin\tmedian\tmax\twithin bound\t")
	for _, s := range settings {
		for _, mode := range []string{"refused", "silent"} {
			// refused: the last VIP attempt and the nodes fail at once, so
			// the bound is the seed's interval + retries × timeout. silent:
			// the last VIP attempt and the node probes each wait a timeout.
			bound := s.interval + time.Duration(s.retries)*s.timeout
			if mode == "silent" {
				bound += 2 * s.timeout
			}
			var ds []time.Duration
			for range *trials {
				d, err := measure(s, mode)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				ds = append(ds, d)
			}
			slices.Sort(ds)
			within := 0
			for _, d := range ds {
				if d <= bound {
					within++
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d/%d\t\n", s.interval, s.timeout, s.retries, mode, bound,
				ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), within, len(ds))
		}
	}
	w.Flush()
}

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

func parseSettings(s string) ([]setting, error) {
	var out []setting
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(part, "/")
		if len(f) != 3 {
			return nil, fmt.Errorf("setting %q: want interval/timeout/retries", part)
		}
		i, err1 := time.ParseDuration(f[0])
		t, err2 := time.ParseDuration(f[1])
		r, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil || t >= i || r < 0 {
			return nil, fmt.Errorf("setting %q: want durations with timeout < interval and retries >= 0", part)
		}
		out = append(out, setting{i, t, r})
	}
	return out, nil
}

// silencer makes probes behave as towards a peer that drops every packet
// once dead is set: each waits its whole timeout and fails.
type silencer struct {
	line.Prober
	dead atomic.Bool
}

func (s *silencer) Probe(ctx context.Context, target string, timeout time.Duration) error {
	if s.dead.Load() {
		<-ctx.Done()
		return fmt.Errorf("%s: no answer within %s", target, timeout)
	}
	return s.Prober.Probe(ctx, target, timeout)
}

// measure starts a line against a healthy peer, kills the peer at a random
// moment, and returns how long until RemoteUnreachable.
func measure(s setting, mode string) (time.Duration, error) {
	vip, err := net.Listen("tcp", "127.0.4.1:0")
	if err != nil {
		return 0, err
	}
	port := vip.Addr().(*net.TCPAddr).Port
	node, err := net.Listen("tcp", net.JoinHostPort("127.0.4.2", strconv.Itoa(port)))
	if err != nil {
		vip.Close()
		return 0, err
	}
	for _, ln := range []net.Listener{vip, node} {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	p := &silencer{Prober: probe.TCP{Port: port}}
	m := line.NewMachine(line.Config{
		Name: "bench", Peer: "b", VIP: "127.0.4.1", Nodes: []string{"127.0.4.2"}, Kind: "tcp",
		Interval: s.interval, Timeout: s.timeout, Retries: s.retries,
	}, line.Up, time.Time{})
	got := make(chan time.Time, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go line.Run(ctx, m, p, time.Now, func(ev events.Event) {
		if ev.EventType() == "RemoteUnreachable" {
			got <- time.Now()
		}
	}, slog.New(slog.DiscardHandler))

	// Let a few healthy rounds pass, then die at a random phase of the
	// interval.
	time.Sleep(2*s.interval + rand.N(s.interval))
	death := time.Now()
	if mode == "silent" {
		p.dead.Store(true)
	}
	vip.Close()
	node.Close()
	select {
	case at := <-got:
		return at.Sub(death), nil
	case <-time.After(10 * (s.interval + time.Duration(s.retries+2)*s.timeout)):
		return 0, fmt.Errorf("%+v %s: no RemoteUnreachable", s, mode)
	}
}
