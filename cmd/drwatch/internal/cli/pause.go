package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/api"
	"github.com/drwatch/drwatch/pkg/events"
)

// pauseCmd puts the pair into maintenance (patronictl pause): nothing
// automatic promotes a site and the VIP and service monitors stand back,
// or, with --observe-only, decisions are recorded and never carried out.
// Pair-wide, whichever site records it; --for ends it by itself.
func pauseCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pause", stderr)
	r := remoteFlags(fs)
	dur := fs.String("for", "0", "how long: 2h, 30m, a bare number of hours, or 0 until drwatch resume")
	observe := fs.Bool("observe-only", false, "record decisions as what the pair would do, carry nothing out (failover.observeOnly at run time)")
	reason := fs.String("reason", "", "why, recorded in the log and mails")
	asJSON := fs.Bool("json", false, "print what was recorded as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	d, err := ParseDisableDuration(*dur)
	if err != nil {
		return fmt.Errorf("%w: --for: %v", errUsage, err)
	}
	mode := events.MaintenancePaused
	if *observe {
		mode = events.MaintenanceObserveOnly
	}
	return recordMaintenance(ctx, r, mode, d, *reason, *asJSON, stdout)
}

// resumeCmd ends maintenance.
func resumeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("resume", stderr)
	r := remoteFlags(fs)
	reason := fs.String("reason", "", "why, recorded in the log")
	asJSON := fs.Bool("json", false, "print what was recorded as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	return recordMaintenance(ctx, r, events.MaintenanceOff, 0, *reason, *asJSON, stdout)
}

func recordMaintenance(ctx context.Context, r *remote, mode string, d time.Duration, reason string, asJSON bool, stdout io.Writer) error {
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.project(ctx)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "resume", false: "pause"}[mode == events.MaintenanceOff]
	res, err := api.Maintain(ctx, c.bus, p, mode, d, operator(), reason, "drwatch "+verb+" on site "+cfg.Site.Name, time.Now())
	if errors.Is(err, api.ErrBadInput) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintln(stdout, res.Text)
	return nil
}
