// Package probe sends the heartbeat's probes: ICMP echo, as seed 000's
// watchdog pings, and TCP connect for hosts where ICMP is not allowed or is
// filtered.
package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ICMPMode says which kind of socket sends echo requests.
type ICMPMode string

// The ICMP socket kinds. Auto tries a privileged raw socket, then an
// unprivileged ping socket.
const (
	ICMPAuto         ICMPMode = ""
	ICMPPrivileged   ICMPMode = "privileged"
	ICMPUnprivileged ICMPMode = "unprivileged"
)

// ErrICMPNotPermitted says this host lets the process open neither kind of
// ICMP socket.
var ErrICMPNotPermitted = errors.New("icmp echo not permitted")

// ICMP pings targets over IPv4.
type ICMP struct {
	network string // "ip4:icmp" or "udp4"
	id      int
	seq     atomic.Uint32
}

// NewICMP checks which ICMP socket the host allows and returns a prober that
// uses it. When neither is allowed the error wraps ErrICMPNotPermitted and
// says how to fix it.
func NewICMP(mode ICMPMode) (*ICMP, error) {
	var tries []string
	switch mode {
	case ICMPAuto:
		tries = []string{"ip4:icmp", "udp4"}
	case ICMPPrivileged:
		tries = []string{"ip4:icmp"}
	case ICMPUnprivileged:
		tries = []string{"udp4"}
	default:
		return nil, fmt.Errorf("icmp mode %q: want privileged, unprivileged or empty for either", mode)
	}
	var errs []error
	for _, network := range tries {
		c, err := icmp.ListenPacket(network, "0.0.0.0")
		if err == nil {
			c.Close()
			return &ICMP{network: network, id: os.Getpid()&0x7fff | rand.IntN(2)<<15}, nil
		}
		errs = append(errs, fmt.Errorf("%s socket: %w", socketName(network), err))
		if !isPermission(err) {
			return nil, fmt.Errorf("icmp: %w", errors.Join(errs...))
		}
	}
	return nil, fmt.Errorf("%w: %w; run as root or with CAP_NET_RAW for the raw socket, "+
		"or allow this process's group to open ping sockets with sysctl net.ipv4.ping_group_range "+
		"(e.g. \"0 2147483647\"), or set watchdog.heartbeat.probe: tcp with a port",
		ErrICMPNotPermitted, errors.Join(errs...))
}

func socketName(network string) string {
	if network == "udp4" {
		return "unprivileged ping (udp4)"
	}
	return "privileged raw (ip4:icmp)"
}

func isPermission(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission)
}

// Privileged reports whether the prober uses a raw socket.
func (p *ICMP) Privileged() bool { return p.network == "ip4:icmp" }

// Probe sends one echo request to target and waits for its reply until
// timeout or ctx ends.
func (p *ICMP) Probe(ctx context.Context, target string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ip, err := resolve4(ctx, target)
	if err != nil {
		return err
	}
	// A socket per probe keeps probes independent: a raw socket sees every
	// ICMP packet of the host, so replies are matched on id and sequence;
	// a ping socket gets only its own.
	c, err := icmp.ListenPacket(p.network, "0.0.0.0")
	if err != nil {
		return fmt.Errorf("icmp %s: open %s socket: %w", target, socketName(p.network), err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return fmt.Errorf("icmp %s: %w", target, err)
	}
	seq := int(p.seq.Add(1) & 0xffff)
	payload := []byte("drwatch-heartbeat")
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: payload}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return fmt.Errorf("icmp %s: %w", target, err)
	}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if p.network == "udp4" {
		dst = &net.UDPAddr{IP: ip}
	}
	if _, err := c.WriteTo(wb, dst); err != nil {
		return fmt.Errorf("icmp %s: send echo: %w", target, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("icmp %s: %w", target, ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("icmp %s: no echo reply within %s", target, timeout)
			}
			return fmt.Errorf("icmp %s: read: %w", target, err)
		}
		if !sameIP(from, ip) {
			continue
		}
		rm, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || rm.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := rm.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq {
			continue
		}
		// The kernel rewrites the id of ping sockets to the socket's port.
		if p.network != "udp4" && echo.ID != p.id {
			continue
		}
		return nil
	}
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.Equal(ip)
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	}
	return false
}

func resolve4(ctx context.Context, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			return ip4, nil
		}
		return nil, fmt.Errorf("icmp %s: only IPv4 is pinged; use watchdog.heartbeat.probe: tcp for IPv6 peers", host)
	}
	addrs, err := net.DefaultResolver.LookupIP(ctx, "ip4", host)
	if err != nil {
		return nil, fmt.Errorf("icmp %s: resolve: %w", host, err)
	}
	return addrs[0], nil
}
