package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/drwatch/drwatch/pkg/ping"
)

// tcpFix is the arbiter's way around a host or arbiter that ICMP cannot
// serve, added to the pinger's errors.
const tcpFix = "watchdog.failureDetection.arbiterProbe: tcp"

// Pinger pings arbiters over one shared ICMP socket (pkg/ping), so a round
// of a thousand arbiters costs one socket.
type Pinger struct {
	pinger *ping.Pinger
}

// NewPinger opens a raw ICMP socket (root or CAP_NET_RAW) or else an
// unprivileged ping socket (net.ipv4.ping_group_range); it is closed when
// ctx ends. When the host allows neither the error wraps
// ping.ErrNotPermitted and names the host's fixes and the TCP probe.
func NewPinger(ctx context.Context) (*Pinger, error) {
	p, err := ping.Listen(ctx, ping.Auto)
	if errors.Is(err, ping.ErrNotPermitted) {
		return nil, fmt.Errorf("%w, or set %s", err, tcpFix)
	}
	if err != nil {
		return nil, err
	}
	return &Pinger{pinger: p}, nil
}

// Ping sends one echo request to host and waits for its reply until ctx
// ends.
func (p *Pinger) Ping(ctx context.Context, host string) Result {
	err := p.pinger.Ping(ctx, host)
	if errors.Is(err, ping.ErrNotIPv4) {
		err = fmt.Errorf("arbiter %s: %w; set %s for IPv6 arbiters", host, err, tcpFix)
	}
	if err != nil {
		return Result{Host: host, Err: err}
	}
	return Result{Host: host, Reachable: true}
}
