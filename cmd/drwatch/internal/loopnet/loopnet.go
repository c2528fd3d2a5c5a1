// Package loopnet stands for the network of a two-site demo on one
// machine: TCP relays on loopback that can be cut and healed, and that can
// dial their target from a chosen loopback source address so that a server
// sees each site coming from an address of its own (127.0.0.2 for one
// site, 127.0.0.3 for the other), as arbiters see real sites.
package loopnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Relay forwards connections made to Addr to a target. Cut drops every
// connection and closes the port, so that even a bare TCP connect (the
// heartbeat's probe) fails until Heal opens it again.
type Relay struct {
	Addr   string
	target string
	source net.Addr
	linger time.Duration
	ctx    context.Context

	mu    sync.Mutex
	ln    net.Listener
	cut   bool
	pairs map[*pair]struct{}
}

// Options tune a relay.
type Options struct {
	// Source is the loopback IP the relay dials the target from; empty
	// lets the kernel pick.
	Source string
	// Linger keeps the target's side of a connection open this long after
	// a cut before closing it, as a server that hears nothing more keeps a
	// dead client's session until its keepalive gives up (sshd's
	// ClientAliveInterval × ClientAliveCountMax). The near side is closed
	// at once: the client's own keepalive notices first.
	Linger time.Duration
}

type pair struct{ near, far net.Conn }

// Listen starts a relay to target on a free loopback port; it runs until
// ctx ends.
func Listen(ctx context.Context, target string, o Options) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay to %s: %w", target, err)
	}
	r := &Relay{Addr: ln.Addr().String(), target: target, linger: o.Linger, ctx: ctx, ln: ln, pairs: map[*pair]struct{}{}}
	if o.Source != "" {
		ip := net.ParseIP(o.Source)
		if ip == nil {
			ln.Close()
			return nil, fmt.Errorf("relay to %s: source %q is not an IP address", target, o.Source)
		}
		r.source = &net.TCPAddr{IP: ip}
	}
	go r.serve(ctx, ln)
	go func() {
		<-ctx.Done()
		r.drop(0)
	}()
	return r, nil
}

// Port is the relay's port.
func (r *Relay) Port() int {
	_, p, _ := net.SplitHostPort(r.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (r *Relay) serve(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		cut := r.cut
		r.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		d := net.Dialer{LocalAddr: r.source, Timeout: time.Second}
		up, err := d.DialContext(ctx, "tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		p := &pair{near: c, far: up}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		r.pairs[p] = struct{}{}
		r.mu.Unlock()
		go r.pipe(p, up, c)
		go r.pipe(p, c, up)
	}
}

func (r *Relay) pipe(p *pair, dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	r.mu.Lock()
	cut := r.cut
	r.mu.Unlock()
	// After a cut the far side lingers on its own timer; otherwise an end
	// closed by either side closes both, as TCP would.
	if !cut {
		p.near.Close()
		p.far.Close()
	}
	r.mu.Lock()
	delete(r.pairs, p)
	r.mu.Unlock()
}

// Cut drops the link: nothing passes until Heal.
func (r *Relay) Cut() { r.drop(r.linger) }

func (r *Relay) drop(linger time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for p := range r.pairs {
		p.near.Close()
		if linger <= 0 {
			p.far.Close()
			continue
		}
		// Nothing more flows: the copy from far to near fails on the closed
		// near side, and the far side hears nothing until it is closed.
		far := p.far
		time.AfterFunc(linger, func() { far.Close() })
	}
}

// Heal restores the link (the same port opens again); clients redial on
// their own.
func (r *Relay) Heal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.cut || r.ctx.Err() != nil {
		return nil
	}
	ln, err := net.Listen("tcp", r.Addr)
	if err != nil {
		return fmt.Errorf("heal the relay to %s: %w", r.target, err)
	}
	r.ln, r.cut = ln, false
	go r.serve(r.ctx, ln)
	return nil
}

// IsCut reports whether the link is cut.
func (r *Relay) IsCut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cut
}
