package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
)

// ErrNoVIP: the configuration has no vip.address, so there is nothing to
// release.
var ErrNoVIP = errors.New("vip.address is not configured: no VIP to release")

// ReleaseVIP removes this site's VIP from its interface. It is for the
// process supervisor once drwatch has exited (systemd ExecStopPost=):
// the address belongs to the host, not to the process, so a drwatch that
// died keeps answering on it — beside a peer that took over because the
// dead process no longer held its arbiter sessions. A VIP not held is not
// an error.
func ReleaseVIP(ctx context.Context, cfg *config.Config) error {
	if cfg.VIP.Address == "" {
		return ErrNoVIP
	}
	v, err := vip.New(cfg.VIP.Address, cfg.VIP.Interface)
	if err != nil {
		return fmt.Errorf("release the VIP: %w", err)
	}
	return releaseVIP(ctx, v)
}

// releasable is the slice of a VIP ReleaseVIP needs.
type releasable interface {
	Held(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
}

func releaseVIP(ctx context.Context, v releasable) error {
	held, err := v.Held(ctx)
	if err != nil {
		return fmt.Errorf("release the VIP: is it held: %w", err)
	}
	if !held {
		return nil
	}
	if err := v.Release(ctx); err != nil {
		return fmt.Errorf("release the VIP: %w", err)
	}
	return nil
}
