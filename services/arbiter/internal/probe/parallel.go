package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Result is one arbiter's outcome in a round.
type Result struct {
	Host      string
	Reachable bool
	// Managed: the arbiter lists a session from the active site (SSH
	// probes only).
	Managed bool
	Err     error
}

// ErrTimeout says an arbiter did not finish its probe within probeTimeout.
var ErrTimeout = errors.New("no answer within probeTimeout")

// All runs probe against every one of n arbiters at once, each bounded by
// timeout, and returns when all have finished or timed out, so a round
// takes at most one timeout however many arbiters stall. probe must honour
// its context; a probe that ignores it is abandoned at the deadline and its
// arbiter counted unreachable.
func All(ctx context.Context, n int, timeout time.Duration, probe func(ctx context.Context, i int) Result) []Result {
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan Result, 1)
			// The inner goroutine ends when probe returns; probes close
			// their connections when pctx ends, so it never outlives the
			// round by more than the time a close takes.
			go func() { done <- probe(pctx, i) }()
			select {
			case r := <-done:
				if r.Err != nil && errors.Is(r.Err, context.DeadlineExceeded) {
					r.Err = fmt.Errorf("%w (%s): %w", ErrTimeout, timeout, r.Err)
				}
				results[i] = r
			case <-pctx.Done():
				results[i] = Result{Err: fmt.Errorf("%w (%s)", ErrTimeout, timeout)}
			}
		})
	}
	wg.Wait()
	return results
}

// TCP reports an arbiter reachable when a TCP connection to addr opens
// (failureDetection.arbiterProbe: tcp, for hosts where ICMP is filtered).
func TCP(ctx context.Context, host string, port int) Result {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Result{Host: host, Err: fmt.Errorf("tcp connect %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)}
	}
	c.Close()
	return Result{Host: host, Reachable: true}
}
