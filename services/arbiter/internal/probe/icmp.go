package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ErrNoICMP says the host allows neither a raw ICMP socket nor an
// unprivileged ping socket.
var ErrNoICMP = errors.New("cannot open an ICMP socket")

// Pinger sends ICMP echo requests over one shared socket and matches the
// replies, so that pinging a thousand arbiters costs one socket, not a
// thousand raw sockets each seeing every reply.
type Pinger struct {
	conn net.PacketConn
	// privileged: a raw socket, which sees every echo reply on the host, so
	// replies are matched on our identifier too. An unprivileged ping
	// socket sees only its own and the kernel rewrites the identifier.
	privileged bool
	id         int

	mu      sync.Mutex
	seq     uint16
	pending map[uint16]pendingEcho
}

type pendingEcho struct {
	addr netip.Addr
	done chan struct{}
}

// NewPinger opens a raw ICMP socket (root or CAP_NET_RAW) or else an
// unprivileged ping socket (net.ipv4.ping_group_range). The socket is closed
// and the reader ends when ctx ends.
func NewPinger(ctx context.Context) (*Pinger, error) {
	p := &Pinger{id: os.Getpid() & 0xffff, pending: map[uint16]pendingEcho{}}
	conn, errRaw := listenRaw()
	if errRaw == nil {
		p.privileged = true
	} else {
		var errUDP error
		conn, errUDP = icmp.ListenPacket("udp4", "0.0.0.0")
		if errUDP != nil {
			return nil, fmt.Errorf("%w: raw socket: %v; unprivileged ping socket: %v. "+
				"Run as root or with CAP_NET_RAW, or allow this group in sysctl net.ipv4.ping_group_range "+
				"(e.g. \"0 2147483647\"), or set watchdog.failureDetection.arbiterProbe: tcp", ErrNoICMP, errRaw, errUDP)
		}
	}
	p.conn = conn
	context.AfterFunc(ctx, func() { conn.Close() })
	go p.read()
	return p, nil
}

// pingReadBuffer holds the replies of a burst of a thousand echoes, which
// on a fast network arrive together; the kernel caps it at rmem_max.
const pingReadBuffer = 4 << 20

// listenRaw opens a raw ICMP socket that only receives echo replies (not
// every ICMP message the host sees, nor its own requests on loopback).
func listenRaw() (net.PacketConn, error) {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	_ = c.(*net.IPConn).SetReadBuffer(pingReadBuffer)
	var f ipv4.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv4.ICMPTypeEchoReply)
	if err := ipv4.NewPacketConn(c).SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Privileged reports whether the pinger uses a raw socket.
func (p *Pinger) Privileged() bool { return p.privileged }

func (p *Pinger) read() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		msg, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || msg.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := msg.Body.(*icmp.Echo)
		if !ok || (p.privileged && echo.ID != p.id) {
			continue
		}
		src := addrOf(from)
		p.mu.Lock()
		pe, ok := p.pending[uint16(echo.Seq)]
		if ok && pe.addr == src {
			delete(p.pending, uint16(echo.Seq))
			close(pe.done)
		}
		p.mu.Unlock()
	}
}

func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// Ping sends one echo request to host and waits for its reply until ctx
// ends.
func (p *Pinger) Ping(ctx context.Context, host string) Result {
	addr, err := resolve4(ctx, host)
	if err != nil {
		return Result{Host: host, Err: err}
	}
	pe := pendingEcho{addr: addr, done: make(chan struct{})}
	p.mu.Lock()
	// 65 536 outstanding echoes would be needed to wrap onto a live one;
	// at most 1 000 arbiters are allowed.
	p.seq++
	seq := p.seq
	p.pending[seq] = pe
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, seq)
		p.mu.Unlock()
	}()

	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: int(seq), Data: []byte("drwatch-arbiter")}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return Result{Host: host, Err: fmt.Errorf("icmp echo to %s: %w", host, err)}
	}
	var dst net.Addr = &net.IPAddr{IP: addr.AsSlice()}
	if !p.privileged {
		dst = &net.UDPAddr{IP: addr.AsSlice()}
	}
	if _, err := p.conn.WriteTo(wb, dst); err != nil {
		return Result{Host: host, Err: fmt.Errorf("icmp echo to %s: %w", host, err)}
	}
	select {
	case <-pe.done:
		return Result{Host: host, Reachable: true}
	case <-ctx.Done():
		return Result{Host: host, Err: fmt.Errorf("icmp echo to %s: %w", host, ctx.Err())}
	}
}

func resolve4(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Unmap().Is4() {
			return netip.Addr{}, fmt.Errorf("arbiter %s: ICMP probes are IPv4 only; set watchdog.failureDetection.arbiterProbe: tcp for IPv6 arbiters", host)
		}
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve arbiter %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve arbiter %s: no IPv4 address", host)
	}
	return addrs[0].Unmap(), nil
}
