package demo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// VIP stands for a site's virtual IP on loopback: while held, a listener
// on the shared VIP address answers each line a client sends with
// "ack <site> <line>". Both sites listen with SO_REUSEPORT where the
// system has it, so two holders would both get connections — as two hosts
// answering for one address do — instead of the second being refused.
type VIP struct {
	site, addr string
	ctx        context.Context

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	off   bool
}

func newVIP(ctx context.Context, site, addr string) *VIP {
	return &VIP{site: site, addr: addr, ctx: ctx, conns: map[net.Conn]struct{}{}}
}

// Held implements the orchestrator's VIP.
func (v *VIP) Held(context.Context) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ln != nil, nil
}

// IsHeld reports whether the site holds the VIP.
func (v *VIP) IsHeld() bool {
	held, _ := v.Held(context.Background())
	return held
}

// Take implements the orchestrator's VIP.
func (v *VIP) Take(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ln != nil {
		return nil
	}
	if v.off {
		return fmt.Errorf("site %s is powered off", v.site)
	}
	lc := net.ListenConfig{Control: reusePort}
	ln, err := lc.Listen(ctx, "tcp", v.addr)
	if err != nil {
		return fmt.Errorf("take the VIP %s: %w", v.addr, err)
	}
	v.ln = ln
	go v.serve(ln)
	return nil
}

// Release implements the orchestrator's VIP: the listener closes and the
// connections through it drop, as they do when an address leaves a host.
func (v *VIP) Release(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.release()
	return nil
}

func (v *VIP) release() {
	if v.ln == nil {
		return
	}
	v.ln.Close()
	v.ln = nil
	for c := range v.conns {
		c.Close()
	}
}

// PowerOff releases the VIP and refuses to take it again until PowerOn.
func (v *VIP) PowerOff() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.release()
	v.off = true
}

// PowerOn lets the VIP be taken again.
func (v *VIP) PowerOn() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.off = false
}

// Names implements the orchestrator's VIP.
func (v *VIP) Names() (string, string) { return v.addr, "loopback (demo)" }

func (v *VIP) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		v.mu.Lock()
		if v.ln != ln {
			v.mu.Unlock()
			c.Close()
			return
		}
		v.conns[c] = struct{}{}
		v.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				v.mu.Lock()
				delete(v.conns, c)
				v.mu.Unlock()
			}()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				if _, err := fmt.Fprintf(c, "ack %s %s\n", v.site, sc.Text()); err != nil {
					return
				}
			}
		}()
	}
}

// Client writes through the VIP: one line every Period, counting the
// acknowledgements and from which site they came, reconnecting when the
// connection drops.
type Client struct {
	Addr   string
	Period time.Duration

	sent, acked, reconnects atomic.Int64
	mu                      sync.Mutex
	bySite                  map[string]int64
	lastSite                string
	lastAck                 time.Time
	longestGap              time.Duration
}

// ClientStats is what the client saw.
type ClientStats struct {
	Sent, Acked, Reconnects int64
	BySite                  map[string]int64
	// Last is the site that acknowledged last.
	Last string
	// LongestGap is the longest time without an acknowledgement.
	LongestGap time.Duration
}

// Stats returns a copy of the counters.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := map[string]int64{}
	for k, v := range c.bySite {
		by[k] = v
	}
	return ClientStats{Sent: c.sent.Load(), Acked: c.acked.Load(), Reconnects: c.reconnects.Load(), BySite: by, Last: c.lastSite, LongestGap: c.longestGap}
}

// Run writes until ctx ends.
func (c *Client) Run(ctx context.Context) {
	c.mu.Lock()
	c.bySite = map[string]int64{}
	c.lastAck = time.Now()
	c.mu.Unlock()
	first := true
	for ctx.Err() == nil {
		if !first {
			c.reconnects.Add(1)
		}
		first = false
		c.session(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Client) session(ctx context.Context) {
	d := net.Dialer{Timeout: 300 * time.Millisecond}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r := bufio.NewReader(conn)
	tick := time.NewTicker(c.Period)
	defer tick.Stop()
	for n := 1; ; n++ {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		c.sent.Add(1)
		if _, err := fmt.Fprintf(conn, "write %d\n", n); err != nil {
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		var site string
		var m int
		if _, err := fmt.Sscanf(line, "ack %s write %d", &site, &m); err != nil || m != n {
			return
		}
		c.acked.Add(1)
		now := time.Now()
		c.mu.Lock()
		c.bySite[site]++
		c.lastSite = site
		c.longestGap = max(c.longestGap, now.Sub(c.lastAck))
		c.lastAck = now
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
