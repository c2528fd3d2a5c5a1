package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/bus"
)

// errProblems: health found failing checks (exit 1).
type errProblems struct{ failed, total int }

func (e errProblems) Error() string {
	return fmt.Sprintf("%d of %d checks failed", e.failed, e.total)
}

// errWarnings: health found warnings and no failure (exit 5).
type errWarnings struct{ warned, total int }

func (e errWarnings) Error() string {
	return fmt.Sprintf("%d of %d checks warn", e.warned, e.total)
}

// healthCmd is seed 000's `jmp-dr health`: the configuration, the site
// process, its peer link, then every check the log supports, as a table
// of OK/WARN/FAIL with the threshold each compares with. Exit 0 when all
// are OK, 5 when some warn and none fails, 1 when any fails (an
// unreachable site is a failing check here, not exit 3: health answers
// "is it healthy", and it is not).
func healthCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", stderr)
	r := remoteFlags(fs)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	checks := status.Finish(healthChecks(ctx, r, time.Now()))
	level := status.Worst(checks)
	if *asJSON {
		if err := writeJSON(stdout, map[string]any{"healthy": status.Healthy(checks), "level": level, "checks": checks}); err != nil {
			return err
		}
	} else {
		status.WriteChecks(stdout, checks)
	}
	count := func(l status.Level) int {
		n := 0
		for _, c := range checks {
			if c.Level == l {
				n++
			}
		}
		return n
	}
	switch level {
	case status.LevelFail:
		return errProblems{count(status.LevelFail), len(checks)}
	case status.LevelWarn:
		return errWarnings{count(status.LevelWarn), len(checks)}
	}
	return nil
}

func healthChecks(ctx context.Context, r *remote, now time.Time) []status.Check {
	cfg, err := r.load()
	if err != nil {
		return []status.Check{{Name: "config", Detail: err.Error()}}
	}
	checks := []status.Check{{Name: "config", OK: true, Detail: *r.cfgPath + " is valid"}}
	c, err := dial(ctx, cfg, *r.timeout)
	if err != nil {
		return append(checks, status.Check{Name: "site process", Detail: err.Error()})
	}
	defer c.Close()
	checks = append(checks, c.streamCheck(ctx)...)
	if cfg.HTTP.Listen != "" {
		checks = append(checks, httpCheck(ctx, "http://"+cfg.HTTP.Listen+"/healthz", *r.timeout))
	}
	p, err := c.project(ctx)
	if err != nil {
		return append(checks, status.Check{Name: "event log", Detail: err.Error()})
	}
	return append(checks, p.Checks(now)...)
}

// streamCheck reports the log and the peer's source into it.
func (c *client) streamCheck(ctx context.Context) []status.Check {
	s, err := c.bus.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		return []status.Check{{Name: "event log", Detail: err.Error()}}
	}
	info, err := s.Info(ctx)
	if err != nil {
		return []status.Check{{Name: "event log", Detail: err.Error()}}
	}
	out := []status.Check{{Name: "site process", OK: true, Detail: fmt.Sprintf("NATS at %s, log holds %d events (last seq %d)", siteURL(c.cfg), info.State.Msgs, info.State.LastSeq)}}
	for _, src := range info.Sources {
		ck := status.Check{Name: "peer log link", OK: true, Detail: fmt.Sprintf("sourcing %s: %d behind, active %s ago", c.cfg.Site.Peer, src.Lag, src.Active.Round(time.Second))}
		if src.Error != nil {
			ck.OK, ck.Detail = false, fmt.Sprintf("sourcing %s: %s", c.cfg.Site.Peer, src.Error.Description)
		}
		out = append(out, ck)
	}
	return out
}

func httpCheck(ctx context.Context, url string, timeout time.Duration) status.Check {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return status.Check{Name: "http", Detail: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return status.Check{Name: "http", Detail: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return status.Check{Name: "http", OK: resp.StatusCode == http.StatusOK, Detail: fmt.Sprintf("%s: %d %s", url, resp.StatusCode, trimNL(string(body)))}
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// statusCmd is one screen of both sites (cmviewcl -v, patronictl list);
// --watch redraws it every --interval until interrupted.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	r := remoteFlags(fs)
	asJSON := fs.Bool("json", false, "print as JSON (with --watch: one document per line)")
	watch := fs.Bool("watch", false, "redraw until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "how often --watch redraws")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *watch && *interval < 100*time.Millisecond {
		return fmt.Errorf("%w: --interval %s is below 100ms", errUsage, *interval)
	}
	_, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	draw := func() error {
		p, err := c.project(ctx)
		if err != nil {
			return err
		}
		pair := p.Pair(time.Now())
		switch {
		case *asJSON && *watch:
			return writeJSONLine(stdout, pair)
		case *asJSON:
			return writeJSON(stdout, pair)
		case *watch:
			// Clear the screen and home the cursor, as watch(1) does.
			fmt.Fprint(stdout, "\x1b[H\x1b[2J")
		}
		status.WritePair(stdout, pair)
		return nil
	}
	if err := draw(); err != nil || !*watch {
		return err
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := draw(); err != nil {
				return err
			}
		}
	}
}
