package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/api"
	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
)

// ackCmd records an operator's acknowledgement of the last automatic
// failover (orchestrator's ack-cluster-recoveries): it lifts the block
// window (failover.blockWindow) so that a second disaster fails over
// again. With no window in force it records nothing and says so.
func ackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("failover ack", stderr)
	r := remoteFlags(fs)
	reason := fs.String("reason", "", "why (what was checked), recorded in the log")
	asJSON := fs.Bool("json", false, "print the outcome as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.project(ctx)
	if err != nil {
		return err
	}
	res, err := api.Acknowledge(ctx, c.bus, p, operator(), *reason, "drwatch failover ack on site "+cfg.Site.Name, time.Now())
	if errors.Is(err, api.ErrBadInput) {
		return fmt.Errorf("%w: --reason: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintln(stdout, res.Text)
	return nil
}

// historyCmd is one line per move of the active role (patronictl
// history), oldest first.
func historyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("history", stderr)
	r := remoteFlags(fs)
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	_, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.project(ctx)
	if err != nil {
		return err
	}
	h := p.History()
	if *asJSON {
		return writeJSON(stdout, h)
	}
	if len(h) == 0 {
		fmt.Fprintln(stdout, "no failover or switchover in the log")
		return nil
	}
	status.WriteHistory(stdout, h)
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}
