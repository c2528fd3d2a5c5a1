package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
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

	mu      sync.Mutex
	clients map[*SSHTarget]*ssh.Client
	// lost is why each target's last session ended or never began.
	lost map[*SSHTarget]error
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
		h.mu.Lock()
		if h.lost == nil {
			h.lost = map[*SSHTarget]error{}
		}
		h.lost[t] = err
		h.mu.Unlock()
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
	h.setClient(t, client)
	defer h.setClient(t, nil)
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

func (h *Holder) setClient(t *SSHTarget, c *ssh.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients == nil {
		h.clients = map[*SSHTarget]*ssh.Client{}
	}
	if c == nil {
		delete(h.clients, t)
		return
	}
	h.clients[t] = c
}

// client is the session held to t, or nil and why there is none.
func (h *Holder) client(t *SSHTarget) (*ssh.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[t]; c != nil {
		return c, nil
	}
	if err := h.lost[t]; err != nil {
		return nil, fmt.Errorf("%w to %s: %w", ErrNotHeld, t.Addr, err)
	}
	return nil, fmt.Errorf("%w to %s: not dialled yet", ErrNotHeld, t.Addr)
}

// ErrNotHeld says no managing session to the arbiter is up.
var ErrNotHeld = errors.New("no managing session held")

// ErrNotListed says the arbiter's session list does not name this site's
// managing session by one of this site's addresses, so the peer, reading
// the same list, does not count the arbiter as managed by this site.
var ErrNotListed = errors.New("the session list does not name this site")

// Verify runs command — the standby's session-list command — over the
// managing session held to t, and reports in Managed whether the list
// names that session by one of own: this site's addresses as arbiters see
// them, or, when own is empty, the address the session leaves from. That
// is the fact the peer's standby counts; an arbiter where it fails gets
// an Err wrapping ErrNotHeld or ErrNotListed that says what the list shows.
// Reachable says the command ran.
func (h *Holder) Verify(ctx context.Context, t *SSHTarget, command string, own PeerSet) Result {
	res := Result{Host: t.Host}
	c, err := h.client(t)
	if err != nil {
		res.Err = err
		return res
	}
	if len(own) == 0 {
		if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
			if a, ok := netip.AddrFromSlice(ta.IP); ok {
				a = a.Unmap()
				own = PeerSet{netip.PrefixFrom(a, a.BitLen())}
			}
		}
	}
	sess, err := c.NewSession()
	if err != nil {
		res.Err = fmt.Errorf("ssh %s: open a session beside the managing one: %w", t.Addr, err)
		return res
	}
	defer sess.Close()
	// A listing that stalls ends with the round; the managing session
	// itself stays, its keepalives judge it.
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	var out limitedBuffer
	sess.Stdout = &out
	if err := sess.Run(command); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		res.Err = fmt.Errorf("ssh %s: run %q over the managing session: %w", t.Addr, command, err)
		return res
	}
	res.Reachable = true
	if _, ok := ManagedBy(out.String(), own); ok {
		res.Managed = true
		return res
	}
	res.Err = fmt.Errorf("%w: %s: %q %s, not this site's %s: %s", ErrNotListed, t.Addr, command, describeListing(out.String()), own, listingFix(out.String()))
	return res
}

// listingFix says what usually makes a list miss a site's session.
func listingFix(out string) string {
	switch {
	case strings.TrimSpace(out) == "":
		return "who lists only sessions with a terminal; give the account one (sshd PermitTTY, no no-pty in authorized_keys) or set sessionCommand to one that lists connections (ss -tn)"
	case len(SessionAddresses(out)) == 0:
		return "the arbiter lists host names, not addresses; set UseDNS no in its sshd_config"
	}
	return "the arbiter sees this site from another address (NAT?); that address belongs in this site's site.addresses and in the peer's site.peerAddresses"
}

// describeListing says what a session list shows, briefly.
func describeListing(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "lists no session"
	}
	const maxLines = 4
	more := ""
	if len(lines) > maxLines {
		more = fmt.Sprintf(" and %d more", len(lines)-maxLines)
		lines = lines[:maxLines]
	}
	return fmt.Sprintf("lists %q%s", strings.Join(lines, "; "), more)
}
