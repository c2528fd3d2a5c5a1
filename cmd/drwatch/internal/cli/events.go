package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/timeline"
	"github.com/drwatch/drwatch/pkg/events"
)

func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: events takes list, tail, export or timeline", errUsage)
	}
	switch args[0] {
	case "list":
		return eventsListCmd(ctx, args[1:], stdout, stderr, false)
	case "export":
		return eventsListCmd(ctx, args[1:], stdout, stderr, true)
	case "tail":
		return eventsTailCmd(ctx, args[1:], stdout, stderr)
	case "timeline":
		return timelineCmd(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: events %q: want list, tail, export or timeline", errUsage, args[0])
}

// logFilter selects events by site, type and time.
type logFilter struct {
	site, types, since, until, correlation *string
	from, to                               time.Time
}

func logFilterFlags(fs *flag.FlagSet) *logFilter {
	return &logFilter{
		site:        fs.String("site", "", "only events published by this site"),
		types:       fs.String("type", "", "only these event types, comma-separated"),
		since:       fs.String("since", "", "from this time (RFC 3339) or this long ago (90m, 24h)"),
		until:       fs.String("until", "", "up to this time (RFC 3339) or this long ago"),
		correlation: fs.String("correlation", "", "only events of this correlation id"),
	}
}

// prepare checks the values and returns the subject filters.
func (f *logFilter) prepare(now time.Time) ([]string, error) {
	var err error
	if f.from, err = parseWhen(*f.since, now); err != nil {
		return nil, fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	if f.to, err = parseWhen(*f.until, now); err != nil {
		return nil, fmt.Errorf("%w: --until: %v", errUsage, err)
	}
	if !f.from.IsZero() && !f.to.IsZero() && f.to.Before(f.from) {
		return nil, fmt.Errorf("%w: --until %s is before --since %s", errUsage, f.to.Format(time.RFC3339), f.from.Format(time.RFC3339))
	}
	site := events.SiteID(*f.site)
	if site != "" && !events.ValidSiteName(string(site)) {
		return nil, fmt.Errorf("%w: --site %q is not a site name", errUsage, site)
	}
	var types []events.Type
	for _, t := range strings.Split(*f.types, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(events.Types(), events.Type(t)) {
			return nil, fmt.Errorf("%w: --type %q is not an event type (known: %v)", errUsage, t, events.Types())
		}
		types = append(types, events.Type(t))
	}
	var subjects []string
	switch {
	case len(types) > 0:
		for _, t := range types {
			if site != "" {
				subjects = append(subjects, events.SiteTypeFilter(site, t))
			} else {
				subjects = append(subjects, events.TypeFilter(t))
			}
		}
	case site != "":
		subjects = []string{events.SiteEvents(site)}
	}
	return subjects, nil
}

func (f *logFilter) keep(env *events.Envelope) bool {
	if !f.from.IsZero() && env.Time.Before(f.from) {
		return false
	}
	if !f.to.IsZero() && env.Time.After(f.to) {
		return false
	}
	return *f.correlation == "" || string(env.CorrelationID) == *f.correlation
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-23T12:00:00Z) nor a duration ago (90m)", s)
	}
	return now.Add(-d), nil
}

// eventsListCmd prints (list) or exports as JSON Lines (export) the
// matching events.
func eventsListCmd(ctx context.Context, args []string, stdout, stderr io.Writer, export bool) error {
	name := "events list"
	if export {
		name = "events export"
	}
	fs := newFlags(name, stderr)
	r := remoteFlags(fs)
	f := logFilterFlags(fs)
	asJSON := fs.Bool("json", export, "one JSON envelope per line")
	out := fs.String("o", "", "write to this file instead of standard output")
	if err := parse(fs, args); err != nil {
		return err
	}
	subjects, err := f.prepare(time.Now())
	if err != nil {
		return err
	}
	_, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	w, closeOut, err := output(*out, stdout)
	if err != nil {
		return err
	}
	n := 0
	if _, err := c.bus.Replay(ctx, 0, subjects, func(seq uint64, env *events.Envelope) error {
		if !f.keep(env) {
			return nil
		}
		n++
		return printEvent(w, seq, env, *asJSON)
	}); err != nil {
		closeOut()
		return fmt.Errorf("read the log: %w", err)
	}
	if err := closeOut(); err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(stdout, "%d events written to %s\n", n, *out)
	}
	return nil
}

func printEvent(w io.Writer, seq uint64, env *events.Envelope, asJSON bool) error {
	if asJSON {
		data, err := json.Marshal(env)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	what := "?"
	if ev, err := events.Decode(env); err == nil {
		what, _ = timeline.Describe(ev)
	}
	_, err := fmt.Fprintf(w, "%6d %s %-2s %-13s %-24s %s\n", seq, env.Time.UTC().Format("2006-01-02T15:04:05.000Z"), env.Site, env.Service, env.Type, what)
	return err
}

func output(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// eventsTailCmd follows new events until interrupted or --count.
func eventsTailCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events tail", stderr)
	r := remoteFlags(fs)
	f := logFilterFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON envelope per line")
	count := fs.Int("count", 0, "stop after this many events (0: until interrupted)")
	last := fs.Int("n", 0, "first print events from this many sequences back")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *count < 0 || *last < 0 {
		return fmt.Errorf("%w: --count and -n must not be negative", errUsage)
	}
	subjects, err := f.prepare(time.Now())
	if err != nil {
		return err
	}
	_, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	seq, err := c.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the log position: %v", errUnreachable, err)
	}
	from := seq + 1
	if uint64(*last) < from {
		from -= uint64(*last)
	} else {
		from = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	var werr error
	err = c.bus.Follow(ctx, from, subjects, func(seq uint64, env *events.Envelope) {
		if !f.keep(env) || ctx.Err() != nil {
			return
		}
		if werr = printEvent(stdout, seq, env, *asJSON); werr != nil {
			cancel()
			return
		}
		if n++; *count > 0 && n >= *count {
			cancel()
		}
	})
	if werr != nil {
		return werr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("follow the log: %w", err)
	}
	return nil
}

// timelineCmd renders one incident.
func timelineCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events timeline", stderr)
	r := remoteFlags(fs)
	corr := fs.String("correlation", "", "the incident's correlation id")
	failover := fs.String("failover", "", "a failover id (as in FailoverStarted)")
	html := fs.Bool("html", false, "write a self-contained HTML page")
	out := fs.String("o", "", "write to this file instead of standard output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *corr == "" && *failover == "" {
		return fmt.Errorf("%w: give --correlation ID or --failover ID (drwatch events list --type FailoverStarted shows them)", errUsage)
	}
	_, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var recs []timeline.Record
	if _, err := c.bus.Replay(ctx, 0, nil, func(seq uint64, env *events.Envelope) error {
		recs = append(recs, timeline.Record{Seq: seq, Env: env})
		return nil
	}); err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	sel := timeline.Selector{Correlation: events.CorrelationID(*corr), Failover: *failover}
	picked := timeline.Select(recs, sel)
	if len(picked) == 0 {
		return fmt.Errorf("no event in the log of site %s matches %s", c.cfg.Site.Name, describeSel(sel))
	}
	tl := timeline.Build("drwatch incident "+describeSel(sel)+" (log of site "+c.cfg.Site.Name+")", picked)
	w, closeOut, err := output(*out, stdout)
	if err != nil {
		return err
	}
	if *html {
		err = timeline.WriteHTML(w, tl)
	} else {
		err = timeline.WriteText(w, tl)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err == nil && *out != "" {
		fmt.Fprintf(stdout, "timeline of %d events written to %s\n", len(tl.Entries), *out)
	}
	return err
}

func describeSel(s timeline.Selector) string {
	var parts []string
	if s.Correlation != "" {
		parts = append(parts, "correlation "+string(s.Correlation))
	}
	if s.Failover != "" {
		parts = append(parts, "failover "+s.Failover)
	}
	return strings.Join(parts, ", ")
}
