package probe

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Holder keeps one SSH session open to every arbiter while this site is
// active. In drwatch that session is what "managed by the active site"
// means: the standby counts arbiters listing it. A dropped session is
// re-dialled after a pause; a dead one is noticed by keepalives.
type Holder struct {
	Dialer    Dialer
	Targets   []*SSHTarget
	Timeout   time.Duration
	Keepalive time.Duration
	Log       *slog.Logger

	connected atomic.Int64
	readyOnce sync.Once
	ready     chan struct{}
}

// Ready is closed once every target's first dial has ended, with a
// session held or not: from then on Connected counts what this holder
// could claim.
func (h *Holder) Ready() <-chan struct{} {
	h.readyOnce.Do(func() { h.ready = make(chan struct{}) })
	return h.ready
}

// Connected is the number of arbiters currently holding a session.
func (h *Holder) Connected() int { return int(h.connected.Load()) }

// Run holds the sessions until ctx ends, then closes them all.
func (h *Holder) Run(ctx context.Context) {
	h.Ready()
	var first sync.WaitGroup
	first.Add(len(h.Targets))
	go func() { first.Wait(); close(h.ready) }()
	var wg sync.WaitGroup
	for _, t := range h.Targets {
		wg.Go(func() { h.hold(ctx, t, sync.OnceFunc(first.Done)) })
	}
	wg.Wait()
}

// hold keeps a session to t; firstDone is called when the first dial has
// ended either way.
func (h *Holder) hold(ctx context.Context, t *SSHTarget, firstDone func()) {
	defer firstDone()
	log := h.Log.With("arbiter", t.Addr)
	pause := h.Timeout
	for ctx.Err() == nil {
		err := h.session(ctx, t, firstDone)
		firstDone()
		if ctx.Err() != nil {
			return
		}
		log.Warn("managing session to arbiter lost, re-dialling", "err", err, "after", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// session dials, opens a login shell with a terminal (so `who` lists it,
// as utmp records only terminal sessions), and blocks until the connection
// dies or ctx ends.
func (h *Holder) session(ctx context.Context, t *SSHTarget, up func()) error {
	dctx, cancel := context.WithTimeout(ctx, h.Timeout)
	client, err := h.Dialer.Dial(dctx, t)
	cancel()
	if err != nil {
		return err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	// Without a terminal the connection still shows in `ss`, so a refused
	// pty or shell is not fatal.
	if err := sess.RequestPty("vt100", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err == nil {
		_ = sess.Shell()
	}
	h.connected.Add(1)
	defer h.connected.Add(-1)
	up()

	dead := make(chan error, 1)
	go func() { dead <- client.Wait() }()
	tick := time.NewTicker(h.Keepalive)
	defer tick.Stop()
	for {
		select {
		case err := <-dead:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := keepalive(ctx, client, h.Timeout); err != nil {
				return err
			}
		}
	}
}

// keepalive sends an OpenSSH keepalive and waits up to timeout for any
// reply (success or failure both prove the peer alive).
func keepalive(ctx context.Context, c *ssh.Client, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		c.Close()
		return ErrTimeout
	}
}
