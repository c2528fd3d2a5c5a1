package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/timeline"
	"github.com/drwatch/drwatch/pkg/events"
)

// manualFailoverCmd is seed 000's `jmp-dr manualFailover [-a|-s]`: it
// records a FailoverRequested for this site and follows the orchestrator's
// answer in the log.
func manualFailoverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("manualFailover", stderr)
	r := remoteFlags(fs)
	active := fs.Bool("a", false, "make this site active")
	standby := fs.Bool("s", false, "make this site standby")
	force := fs.Bool("force", false, "promote even when replication is behind (seed 004 force switch)")
	reason := fs.String("reason", "manual failover by operator", "why, recorded in the log and mails")
	wait := fs.Duration("timeout", 2*time.Minute, "how long to wait for the outcome (0: do not wait)")
	asJSON := fs.Bool("json", false, "print the request and each step as JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	out := &moveOutput{w: stdout, json: *asJSON}
	if *active && *standby {
		return fmt.Errorf("%w: -a and -s exclude each other", errUsage)
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: --reason must not be empty", errUsage)
	}
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	self := events.SiteID(cfg.Site.Name)

	p, err := c.project(ctx)
	if err != nil {
		return err
	}
	target, to := self, events.RoleActive
	switch {
	case *standby:
		to = events.RoleStandby
	case !*active:
		// No option: the seed's "the standby becomes active, the active
		// standby", seen from this site. On the active site that is a
		// hand-over: the peer is asked to become active, and its
		// promotion fences this site first, so the pair is never left
		// without an active site.
		switch role := p.Sites[self].Role; role {
		case events.RoleStandby:
		case events.RoleActive:
			target = events.SiteID(cfg.Site.Peer)
		default:
			return fmt.Errorf("%w: site %s is %s: say -a (become active) or -s (become standby)", errUsage, self, role)
		}
	}

	from, err := c.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the log position: %v", errUnreachable, err)
	}
	req := events.FailoverRequested{Target: target, ToRole: to, Manual: true, Force: *force, Reason: *reason, RequestedBy: operator(), Epoch: p.MaxEpoch}
	env, err := c.bus.Publish(ctx, req, nil)
	if err != nil {
		return fmt.Errorf("record the failover request: %w", err)
	}
	out.note(fmt.Sprintf("requested: site %s to become %s%s (request %s)", target, to, map[bool]string{true: " with force"}[*force], env.ID))
	if *wait == 0 {
		return nil
	}
	return followOutcome(ctx, c, from+1, env, *wait, out)
}

// followOutcome prints the orchestrator's answer to req: a decision, or a
// saga's steps up to its completion or abort.
func followOutcome(ctx context.Context, c *client, from uint64, req *events.Envelope, wait time.Duration, out *moveOutput) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r, err := events.DecodeInto[events.FailoverRequested](req)
	if err != nil {
		return fmt.Errorf("read back the request: %w", err)
	}
	site := r.Target // the site that answers, this one or the peer
	var filters []string
	for _, t := range []events.Type{"FailoverDecided", "FailoverStarted", "FailoverStepDone", "FailoverCompleted", "FailoverAborted", "RoleChanged"} {
		filters = append(filters, events.SiteTypeFilter(site, t))
	}
	got := make(chan *events.Envelope, 64)
	followErr := make(chan error, 1)
	go func() {
		followErr <- c.bus.Follow(ctx, from, filters, func(_ uint64, env *events.Envelope) {
			select {
			case got <- env:
			case <-ctx.Done():
			}
		})
	}()
	failoverID := ""
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				what := "no answer from the orchestrator"
				if failoverID != "" {
					what = "failover " + failoverID + " still running"
				}
				return fmt.Errorf("%w: request %s is recorded; %s of site %s within %s (follow it: drwatch events timeline --correlation %s)", errTimeout, req.ID, what, site, wait, req.CorrelationID)
			}
			return ctx.Err()
		case err := <-followErr:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: following the log: %v", errUnreachable, err)
			}
		case env := <-got:
			ev, err := events.Decode(env)
			if err != nil {
				continue
			}
			line, _ := timeline.Describe(ev)
			switch e := ev.(type) {
			case events.FailoverDecided:
				if e.RequestID != req.ID {
					continue
				}
				out.event(env, line)
				if e.Blocked || e.Branch == "request.stale" {
					return fmt.Errorf("refused by site %s: %s (%s)", site, e.Reason, e.Branch)
				}
				return nil
			case events.FailoverStarted:
				if e.RequestID != req.ID {
					continue
				}
				failoverID = e.FailoverID
			case events.FailoverStepDone:
				if e.FailoverID != failoverID || failoverID == "" {
					continue
				}
			case events.RoleChanged:
				if e.FailoverID != failoverID || failoverID == "" {
					continue
				}
			case events.FailoverCompleted:
				if e.FailoverID != failoverID || failoverID == "" {
					continue
				}
				out.event(env, line)
				return nil
			case events.FailoverAborted:
				if e.FailoverID != failoverID || failoverID == "" {
					continue
				}
				out.event(env, line)
				return fmt.Errorf("failover %s aborted at step %q: %s", e.FailoverID, e.Step, e.Reason)
			}
			out.event(env, line)
		}
	}
}

func stamp(env *events.Envelope) string { return env.Time.UTC().Format("15:04:05.000") }

// watchdogCmd is `toolkit watchdog status --enable-automatic-failover |
// --disable-automatic-failover DURATION`; with neither it prints the state.
func watchdogCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("toolkit watchdog status", stderr)
	r := remoteFlags(fs)
	enable := fs.Bool("enable-automatic-failover", false, "enable automatic failover")
	disable := fs.String("disable-automatic-failover", "", "disable it for DURATION: 2h, 30m, a bare number of hours, or 0 until enabled")
	reason := fs.String("reason", "", "why, recorded in the log")
	asJSON := fs.Bool("json", false, "print the switch as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	disabling := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "disable-automatic-failover" {
			disabling = true
		}
	})
	if *enable && disabling {
		return fmt.Errorf("%w: --enable-automatic-failover and --disable-automatic-failover exclude each other", errUsage)
	}
	var dur time.Duration
	if disabling {
		var err error
		if dur, err = ParseDisableDuration(*disable); err != nil {
			return fmt.Errorf("%w: --disable-automatic-failover: %v", errUsage, err)
		}
	}
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now()
	if !*enable && !disabling {
		p, err := c.project(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"automaticFailover": p.Automatic, "on": p.Automatic.On(now)})
		}
		fmt.Fprintf(stdout, "automatic failover: %s\n", p.Automatic.Describe(now))
		return nil
	}
	ev := events.AutomaticFailoverChanged{Enabled: *enable, By: operator(), Reason: *reason}
	if disabling && dur > 0 {
		until := now.Add(dur).UTC()
		ev.Until = &until
	}
	if ev.Reason == "" {
		ev.Reason = "toolkit watchdog status on site " + cfg.Site.Name
	}
	env, err := c.bus.Publish(ctx, ev, nil)
	if err != nil {
		return fmt.Errorf("record the change: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"recorded": true, "id": env.ID, "enabled": ev.Enabled, "until": ev.Until})
	}
	switch {
	case *enable:
		fmt.Fprintln(stdout, "automatic failover enabled")
	case ev.Until != nil:
		fmt.Fprintf(stdout, "automatic failover disabled until %s\n", ev.Until.Format(time.RFC3339))
	default:
		fmt.Fprintln(stdout, "automatic failover disabled until enabled again")
	}
	return nil
}

// ParseDisableDuration reads the seed's DURATION: "2h", "30m", "1h30m", a
// bare number of hours ("2", "1.5"), or "0" for until enabled (returned as
// 0).
func ParseDisableDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration: want 2h, 30m, a number of hours, or 0 for until enabled")
	}
	if h, err := strconv.ParseFloat(s, 64); err == nil {
		if h < 0 {
			return 0, fmt.Errorf("%q is negative: want 2h, 30m, a number of hours, or 0 for until enabled", s)
		}
		return time.Duration(h * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want 2h, 30m, a number of hours, or 0 for until enabled", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive: use 0 to disable until enabled", s)
	}
	return d, nil
}
