// Package cli implements the drwatch command line.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/demo"
	"github.com/drwatch/drwatch/pkg/config"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitUnreachable: the site's NATS or log could not be reached; nothing
	// was changed.
	exitUnreachable = 3
	// exitTimeout: a request was recorded but no answer came in time.
	exitTimeout = 4
	// exitWarn: health found warnings and no failure.
	exitWarn = 5
)

const usage = `usage: drwatch <command> [flags]

site process:
  run                     run every service of this site (embedded NATS unless nats.url is set)
  start | stop            start the site process in the background / stop it (pidfile)
  reset --yes             stop it and delete this site's DR data (log, file backups)
  validate [--json]       check a site configuration file and print the problems, or
                          the failover timing contract its timers add up to
  init [-a|-s]            write both sites' configs, TLS certificates, replication users
  vip release             remove this site's VIP after drwatch exited (systemd
                          ExecStopPost=): a dead process cannot release it
  demo [--duration D] [--keep]
                          a whole pair on loopback (no Docker, no root): watch site b
                          take over when site a is powered off

operator (talk to the running site over its NATS):
  health [--json]         OK/WARN/FAIL per check with its threshold; exit 0 all OK,
                          5 warnings only, 1 any failure
  status [--json] [--watch [--interval D]]
                          both sites: role, epoch, VIP, heartbeat, arbiters, replication,
                          files, block window, decisions held back and until when
  history [--json]        one line per failover or switchover (patronictl history)
  switchover [--to SITE] [--yes] [--dry-run] [--scheduled TIME] [--json]
                          planned move of the active role to the peer, from either site:
                          shows plan, guards and lag, asks, then streams the steps
  failover --to SITE [--force] [--yes] [--dry-run] [--json]
                          emergency: make SITE active; --force promotes a lagging replica
  failover ack [--reason R] [--json]
                          acknowledge the last automatic failover: lifts the block window
  pause [--for D] [--observe-only] [--reason R] [--json] | resume
                          pair-wide maintenance: no automatic promotion, the VIP and
                          service monitors stand back (--observe-only: decide, never act)
  manualFailover [-a|-s] [--force] [--json]
                          ask this site to become active (-a) or standby (-s) and wait;
                          bare, the standby becomes active and the active hands over
  db resync|position --database mysql|pgsql
                          ask this site's dbmonitor to rebuild replication from the
                          primary (after divergence or purged logs) or report its position
  toolkit config update   re-read and validate the config; the running site reloads it
  toolkit watchdog status [--enable-automatic-failover | --disable-automatic-failover D]
  api v1 config --list | --include SECTIONS
                          seed 000's JSON sections (role failover core mysql pgsql file
                          watchdog deviceManagement states)
  events list|tail|export|timeline
                          read the log; render an incident as text or HTML
  version                 print the version

Every command takes -config (default $DRWATCH_CONFIG or /etc/drwatch/site.yaml).
Exit codes: 0 ok, 1 failed or unhealthy, 2 bad usage, 3 site unreachable,
4 request recorded but not answered in time, 5 health warnings. See docs/cli.md.
`

// Main runs the command in args and returns the process exit code; stdin
// answers confirmations (switchover, failover --to).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var warn errWarnings
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &warn):
		return exitWarn
	case errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "drwatch:", err)
		return exitUsage
	case errors.Is(err, errUnreachable):
		fmt.Fprintln(stderr, "drwatch:", err)
		return exitUnreachable
	case errors.Is(err, errTimeout):
		fmt.Fprintln(stderr, "drwatch:", err)
		return exitTimeout
	default:
		fmt.Fprintln(stderr, "drwatch:", err)
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "drwatch", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "init":
		return initCmd(ctx, rest, stdout, stderr)
	case "start":
		return startCmd(ctx, rest, stdout, stderr)
	case "stop":
		return stopCmd(ctx, rest, stdout, stderr)
	case "reset":
		return resetCmd(ctx, rest, stdout, stderr)
	case "health":
		return healthCmd(ctx, rest, stdout, stderr)
	case "status":
		return statusCmd(ctx, rest, stdout, stderr)
	case "manualFailover":
		return manualFailoverCmd(ctx, rest, stdout, stderr)
	case "switchover":
		return switchoverCmd(ctx, rest, stdin, stdout, stderr)
	case "failover":
		return failoverCmd(ctx, rest, stdin, stdout, stderr)
	case "history":
		return historyCmd(ctx, rest, stdout, stderr)
	case "pause":
		return pauseCmd(ctx, rest, stdout, stderr)
	case "resume":
		return resumeCmd(ctx, rest, stdout, stderr)
	case "db":
		return dbCmd(ctx, rest, stdout, stderr)
	case "toolkit":
		return toolkitCmd(ctx, rest, stdout, stderr)
	case "api":
		return apiCmd(ctx, rest, stdout, stderr)
	case "events":
		return eventsCmd(ctx, rest, stdout, stderr)
	case "vip":
		return vipCmd(ctx, rest, stdout, stderr)
	case "demo":
		err := demo.Main(ctx, rest, stdout, stderr, Services())
		if errors.Is(err, demo.ErrUsage) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	return fmt.Errorf("%w: unknown command %q (drwatch help lists them)", errUsage, cmd)
}

// words consumes the fixed words of a nested command (api v1 config).
func words(args []string, want ...string) ([]string, error) {
	for _, w := range want {
		if len(args) == 0 || args[0] != w {
			got := "nothing"
			if len(args) > 0 {
				got = fmt.Sprintf("%q", args[0])
			}
			return nil, fmt.Errorf("%w: expected %q, got %s", errUsage, w, got)
		}
		args = args[1:]
	}
	return args, nil
}

// Version is set at build time with -ldflags.
var Version = "dev"

var errUsage = errors.New("usage")

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("drwatch "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, strings.Join(fs.Args(), " "))
	}
	return nil
}

// validateCmd checks a file and prints its failover timing contract: every
// derived figure with its formula and the inequalities Validate checked, so
// that an operator sees what the timers add up to before a failover does.
func validateCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	cfgPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the result and the timing contract as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	t := cfg.Timing()
	if *asJSON {
		return writeJSON(stdout, struct {
			Config  string          `json:"config"`
			OK      bool            `json:"ok"`
			Figures []config.Figure `json:"figures"`
			Checks  []config.Check  `json:"checks"`
		}{*cfgPath, true, t.Figures, t.Checks()})
	}
	fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
	printTiming(stdout, t)
	return nil
}

func printTiming(w io.Writer, t config.Timing) {
	fmt.Fprintln(w, "\nfailover timing contract, counted from the cut (no packet between the sites, nor between the active site and its arbiters):")
	for _, f := range t.Figures {
		fmt.Fprintf(w, "  %-17s %-8s %s\n  %-17s %-8s %s\n", f.Name, f.Value, f.Formula, "", "", f.Why)
	}
	fmt.Fprintln(w, "checks:")
	for _, c := range t.Checks() {
		switch {
		case c.Holds:
			fmt.Fprintf(w, "  ok   %s\n", c.Inequality)
		case c.Required:
			// Load rejects such a file; kept so the printer never hides one.
			fmt.Fprintf(w, "  FAIL %s: %s\n", c.Inequality, c.Fix)
		default:
			fmt.Fprintf(w, "  no   %s (not required: %s)\n", c.Inequality, c.Fix)
		}
	}
}
