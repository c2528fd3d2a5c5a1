package probe

import (
	"context"
	"fmt"
	"net"
	"time"
)

// TCP probes a target by opening (and closing) a TCP connection to Port.
type TCP struct {
	Port int
}

// Probe connects to target:Port within timeout.
func (p TCP) Probe(ctx context.Context, target string, timeout time.Duration) error {
	addr := net.JoinHostPort(target, fmt.Sprint(p.Port))
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp %s: %w", addr, err)
	}
	return c.Close()
}
