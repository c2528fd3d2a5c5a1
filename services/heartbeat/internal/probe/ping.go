// Package probe sends the heartbeat's probes: ICMP echo, as seed 000's
// watchdog pings, and TCP connect for hosts where ICMP is not allowed or is
// filtered.
package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drwatch/drwatch/pkg/ping"
)

// tcpFix is the heartbeat's way around a host or peer that ICMP cannot
// serve, added to the pinger's errors.
const tcpFix = "watchdog.heartbeat.probe: tcp"

// pinger is what ICMP needs of a ping.Pinger.
type pinger interface {
	Ping(ctx context.Context, host string) error
}

// ICMP probes targets with echo requests over one shared pinger, so the
// lines probing at once share one socket.
type ICMP struct {
	pinger pinger
}

// NewICMP opens the pinger the lines share; it lives as long as ctx. When
// the host allows no ICMP socket of mode the error wraps
// ping.ErrNotPermitted and names the host's fixes and the TCP probe.
func NewICMP(ctx context.Context, mode ping.Mode) (*ICMP, error) {
	p, err := ping.Listen(ctx, mode)
	if errors.Is(err, ping.ErrNotPermitted) {
		return nil, fmt.Errorf("%w, or set %s with a port", err, tcpFix)
	}
	if err != nil {
		return nil, err
	}
	return &ICMP{pinger: p}, nil
}

// Probe sends one echo request to target and waits for its reply until
// timeout or ctx ends.
func (p *ICMP) Probe(ctx context.Context, target string, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.pinger.Ping(pctx, target)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ping.ErrNotIPv4):
		return fmt.Errorf("%w; use %s for IPv6 peers", err, tcpFix)
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		// The probe's own timeout, not the caller's: the peer is silent.
		return fmt.Errorf("icmp %s: no echo reply within %s", target, timeout)
	}
	return err
}
