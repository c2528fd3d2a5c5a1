package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator"
)

// errNotConfirmed: the operator did not say yes; nothing was recorded.
var errNotConfirmed = errors.New("not confirmed")

// move is a request to make a site active, as switchover and failover
// --to build it: the plan is shown, confirmed, recorded and followed.
type move struct {
	name      string // the command, for messages
	target    events.SiteID
	force     bool
	reason    string
	yes       bool
	dryRun    bool
	scheduled time.Time
	wait      time.Duration
	asJSON    bool
}

// switchoverCmd is the planned move of the active role to the peer
// (patronictl switchover), runnable on either site: the target's
// orchestrator fences the old active first, so the pair is never left
// with two actives nor, unless a step fails, with none.
func switchoverCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("switchover", stderr)
	r := remoteFlags(fs)
	to := fs.String("to", "", "the site to make active (default: the site that is not active)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	dry := fs.Bool("dry-run", false, "print the decision and the plan; record nothing")
	sched := fs.String("scheduled", "", "wait until TIME (RFC 3339, or YYYY-MM-DDTHH:MM local) before asking; this command must keep running until then")
	reason := fs.String("reason", "switchover by operator", "why, recorded in the log and mails")
	wait := fs.Duration("timeout", 2*time.Minute, "how long to wait for the outcome (0: do not wait)")
	asJSON := fs.Bool("json", false, "print the plan and each step as JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	m := move{name: "switchover", reason: *reason, yes: *yes, dryRun: *dry, wait: *wait, asJSON: *asJSON}
	if err := m.check(*sched, time.Now()); err != nil {
		return err
	}
	return m.run(ctx, r, stdin, stdout, func(p *status.Projection) (events.SiteID, error) {
		t, err := p.SwitchoverTarget(events.SiteID(*to))
		if errors.Is(err, status.ErrBadTarget) {
			return "", fmt.Errorf("%w: %v", errUsage, err)
		}
		return t, err
	})
}

// failoverCmd is `failover ack` and the emergency `failover --to SITE
// [--force]`: make SITE active whatever the other site's state, fencing
// it if it answers; --force also promotes a replica that is behind.
func failoverCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ack" {
		return ackCmd(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("failover", stderr)
	r := remoteFlags(fs)
	to := fs.String("to", "", "the site to make active (required)")
	force := fs.Bool("force", false, "promote even when its replica is behind: writes not copied yet are lost")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	dry := fs.Bool("dry-run", false, "print the decision and the plan; record nothing")
	reason := fs.String("reason", "failover by operator", "why, recorded in the log and mails")
	wait := fs.Duration("timeout", 2*time.Minute, "how long to wait for the outcome (0: do not wait)")
	asJSON := fs.Bool("json", false, "print the plan and each step as JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return fmt.Errorf("%w: failover needs --to SITE (or `failover ack`); for a planned move use drwatch switchover", errUsage)
	}
	m := move{name: "failover", force: *force, reason: *reason, yes: *yes, dryRun: *dry, wait: *wait, asJSON: *asJSON}
	if err := m.check("", time.Now()); err != nil {
		return err
	}
	return m.run(ctx, r, stdin, stdout, func(p *status.Projection) (events.SiteID, error) {
		t := events.SiteID(*to)
		if t != p.Self && t != p.Peer {
			return "", fmt.Errorf("%w: --to %q: the pair is %s and %s", errUsage, t, p.Self, p.Peer)
		}
		if p.Sites[t].Role == events.RoleActive {
			return "", fmt.Errorf("site %s is already active: nothing to fail over", t)
		}
		return t, nil
	})
}

func (m *move) check(sched string, now time.Time) error {
	if strings.TrimSpace(m.reason) == "" {
		return fmt.Errorf("%w: --reason must not be empty", errUsage)
	}
	if sched == "" {
		return nil
	}
	if m.dryRun {
		return fmt.Errorf("%w: --scheduled and --dry-run exclude each other", errUsage)
	}
	t, err := parseScheduled(sched)
	if err != nil {
		return fmt.Errorf("%w: --scheduled: %v", errUsage, err)
	}
	if !t.After(now) {
		return fmt.Errorf("%w: --scheduled %s is in the past", errUsage, t.Format(time.RFC3339))
	}
	if t.Sub(now) > 7*24*time.Hour {
		return fmt.Errorf("%w: --scheduled %s is more than 7 days ahead", errUsage, t.Format(time.RFC3339))
	}
	m.scheduled = t
	return nil
}

// parseScheduled reads RFC 3339 or a local YYYY-MM-DDTHH:MM[:SS].
func parseScheduled(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-12-08T22:00:00Z) or local 2026-12-08T22:00", s)
}

// run shows the plan, waits for the scheduled time and the confirmation,
// records the request and follows its answer.
func (m *move) run(ctx context.Context, r *remote, stdin io.Reader, stdout io.Writer, target func(*status.Projection) (events.SiteID, error)) error {
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	out := &moveOutput{w: stdout, json: m.asJSON}

	plan := func() (*status.Projection, events.FailoverRequested, orchestrator.Preview, error) {
		p, err := c.project(ctx)
		if err != nil {
			return nil, events.FailoverRequested{}, orchestrator.Preview{}, err
		}
		t, err := target(p)
		if err != nil {
			return nil, events.FailoverRequested{}, orchestrator.Preview{}, err
		}
		req := events.FailoverRequested{Target: t, ToRole: events.RoleActive, Manual: true, Force: m.force, Reason: m.reason, RequestedBy: operator(), Epoch: p.MaxEpoch}
		pv, err := orchestrator.PreviewRequest(cfg, p.ViewOf(t), req, time.Now())
		return p, req, pv, err
	}
	p, req, pv, err := plan()
	if err != nil {
		return err
	}
	out.plan(m.name, p, req, pv, time.Now())
	if !pv.Act {
		return fmt.Errorf("site %s would refuse it now: %s (%s); nothing recorded", req.Target, pv.Reason, pv.Branch)
	}
	if m.dryRun {
		out.note("dry run: nothing recorded")
		return nil
	}
	if !m.scheduled.IsZero() {
		out.note(fmt.Sprintf("waiting until %s (%s); interrupt to cancel, nothing is recorded before then", m.scheduled.Format(time.RFC3339), time.Until(m.scheduled).Round(time.Second)))
		t := time.NewTimer(time.Until(m.scheduled))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cancelled before %s; nothing recorded", m.scheduled.Format(time.RFC3339))
		case <-t.C:
		}
		// The pair may have changed while waiting: decide again.
		if p, req, pv, err = plan(); err != nil {
			return err
		}
		out.plan(m.name, p, req, pv, time.Now())
		if !pv.Act {
			return fmt.Errorf("site %s would refuse it now: %s (%s); nothing recorded", req.Target, pv.Reason, pv.Branch)
		}
	}
	if !m.yes {
		if err := confirm(stdin, stdout, fmt.Sprintf("Make site %s active (%s)? [y/N] ", req.Target, m.name)); err != nil {
			return err
		}
	}
	from, err := c.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the log position: %v", errUnreachable, err)
	}
	env, err := c.bus.Publish(ctx, req, nil)
	if err != nil {
		return fmt.Errorf("record the %s request: %w", m.name, err)
	}
	out.note(fmt.Sprintf("requested: site %s to become active%s (request %s)", req.Target, map[bool]string{true: " with force"}[req.Force], env.ID))
	if m.wait == 0 {
		return nil
	}
	return followOutcome(ctx, c, from+1, env, m.wait, out)
}

// confirm asks question on w and reads the answer from r; anything but
// y/yes is a refusal.
func confirm(r io.Reader, w io.Writer, question string) error {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(w)
		return fmt.Errorf("%w: no answer on standard input (give --yes to run without asking); nothing recorded", errNotConfirmed)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%w: answered %q; nothing recorded", errNotConfirmed, strings.TrimSpace(line))
}

// moveOutput prints a move as text or as JSON lines.
type moveOutput struct {
	w    io.Writer
	json bool
}

func (o *moveOutput) note(text string) {
	if o.json {
		_ = writeJSONLine(o.w, map[string]any{"kind": "note", "text": text})
		return
	}
	fmt.Fprintln(o.w, text)
}

func (o *moveOutput) event(env *events.Envelope, line string) {
	if o.json {
		_ = writeJSONLine(o.w, map[string]any{"kind": "event", "time": env.Time.UTC(), "site": env.Site, "type": env.Type, "id": env.ID, "text": line})
		return
	}
	fmt.Fprintf(o.w, "%s  %s\n", stamp(env), line)
}

// plan prints who is active, the target's lag against the limits, the
// decision its orchestrator would take now and the saga's steps.
func (o *moveOutput) plan(name string, p *status.Projection, req events.FailoverRequested, pv orchestrator.Preview, now time.Time) {
	view := p.ViewOf(req.Target)
	lim := p.LagLimits()
	type lagRow struct {
		Database string `json:"database"`
		Lag      string `json:"lag"`
		Limit    string `json:"limit"`
		Age      string `json:"age,omitempty"`
	}
	var lags []lagRow
	for _, db := range []events.Database{events.MySQL, events.PgSQL} {
		l, ok := view.Lag[db]
		if !ok {
			continue
		}
		row := lagRow{Database: string(db), Age: now.Sub(l.At).Round(time.Second).String()}
		if db == events.MySQL {
			row.Lag, row.Limit = fmt.Sprintf("%d transactions", l.Transactions), fmt.Sprintf("%d (failover.maxLagTransactions)", lim.MaxTransactions)
		} else {
			row.Lag, row.Limit = fmt.Sprintf("%d bytes", l.Bytes), fmt.Sprintf("%d (failover.maxLagBytes)", lim.MaxBytes)
		}
		lags = append(lags, row)
	}
	from := "none"
	if a := p.ActiveSites(); len(a) == 1 {
		from = string(a[0])
	}
	if o.json {
		_ = writeJSONLine(o.w, map[string]any{"kind": "plan", "command": name, "from": from, "to": req.Target, "force": req.Force,
			"epoch": p.MaxEpoch, "lag": lags, "decision": pv})
		return
	}
	fmt.Fprintf(o.w, "%s: active %s → %s (pair epoch %d)%s\n", name, from, req.Target, p.MaxEpoch, map[bool]string{true: ", forced"}[req.Force])
	if len(lags) == 0 {
		fmt.Fprintf(o.w, "  lag on %s: no figure in the log (the saga checks the position before promoting)\n", req.Target)
	}
	for _, l := range lags {
		fmt.Fprintf(o.w, "  lag on %s: %s %s, limit %s, reported %s ago\n", req.Target, l.Database, l.Lag, l.Limit, l.Age)
	}
	verdict := "would act"
	if pv.Blocked {
		verdict = "BLOCKED"
	} else if !pv.Act {
		verdict = "would do nothing"
	}
	fmt.Fprintf(o.w, "  guards on %s: %s — %s %s (%s): %s\n", req.Target, verdict, pv.Action, map[bool]string{true: "at epoch " + fmt.Sprint(pv.Epoch)}[pv.Act], pv.Branch, pv.Reason)
	if len(pv.Steps) > 0 {
		fmt.Fprintf(o.w, "  plan on %s:\n", req.Target)
		for i, s := range pv.Steps {
			fmt.Fprintf(o.w, "    %d. %s%s\n", i+1, s, stepNote(s, p, req.Target))
		}
	}
}

// stepNote says what a step does to the other site, where it matters.
func stepNote(step string, p *status.Projection, target events.SiteID) string {
	other := p.Peer
	if target == p.Peer {
		other = p.Self
	}
	switch step {
	case "fence-peer":
		return fmt.Sprintf(" (site %s releases the VIP, demotes its databases and stops services; if it does not answer, the arbiters are claimed)", other)
	case "check-position", "catch-up":
		return " (refuses to promote a replica behind the limits unless forced)"
	}
	return ""
}
