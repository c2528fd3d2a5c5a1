package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/services/orchestrator"
)

// vipCmd is `drwatch vip release`: for the process supervisor after
// drwatch exits (systemd ExecStopPost=). The VIP is the host's: a drwatch
// that died, killed or crashed, leaves it answering beside a peer that
// may take over. It works without the site process.
func vipCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	args, err := words(args, "release")
	if err != nil {
		return fmt.Errorf("%w (drwatch vip release [-config FILE])", err)
	}
	fs := newFlags("vip release", stderr)
	cfgPath := configFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	err = orchestrator.ReleaseVIP(ctx, cfg)
	if errors.Is(err, orchestrator.ErrNoVIP) {
		// A site without a VIP must not fail its unit's stop.
		fmt.Fprintf(stdout, "%s: %v\n", *cfgPath, err)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "VIP %s released from %s (if it was held)\n", cfg.VIP.Address, cfg.VIP.Interface)
	return nil
}
