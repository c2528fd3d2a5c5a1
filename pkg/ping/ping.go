// Package ping sends ICMP echo requests over IPv4 for drwatch's probes
// (the heartbeat's lines, the arbiter's watchdog). One Pinger owns one
// socket, shared by any number of concurrent pings whose replies it matches,
// so that pinging a thousand arbiters costs one socket, not a thousand raw
// sockets each seeing every reply on the host.
package ping

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Mode says which kind of socket sends echo requests.
type Mode string

// The socket kinds. Auto tries a privileged raw socket, then an
// unprivileged ping socket.
const (
	Auto         Mode = ""
	Privileged   Mode = "privileged"
	Unprivileged Mode = "unprivileged"
)

// ErrNotPermitted says this host lets the process open none of the ICMP
// sockets its mode allows. The error that wraps it says how to fix the
// host; the caller adds its own fallback (the config key of a TCP probe).
var ErrNotPermitted = errors.New("icmp echo not permitted")

// ErrNotIPv4 says a target is an IPv6 address: only IPv4 is pinged. The
// caller adds which config key selects a probe that reaches IPv6.
var ErrNotIPv4 = errors.New("only IPv4 is pinged")

const (
	networkRaw  = "ip4:icmp"
	networkPing = "udp4"
)

// readBuffer holds the replies of a burst of a thousand echoes, which on a
// fast network arrive together; the kernel caps it at rmem_max.
const readBuffer = 4 << 20

// Pinger sends echo requests over one socket and matches the replies. It
// is safe for concurrent use.
type Pinger struct {
	conn net.PacketConn
	// privileged: a raw socket, which sees every echo reply on the host,
	// so replies are matched on our identifier too. An unprivileged ping
	// socket sees only its own and the kernel rewrites the identifier.
	privileged bool
	id         int
	// token is the echo payload, checked on every reply: two pingers of
	// one process (the drwatch binary runs heartbeat and arbiter together)
	// may draw the same identifier, never the same token.
	token  []byte
	closed <-chan struct{}

	mu      sync.Mutex
	seq     uint16
	pending map[uint16]pending
}

type pending struct {
	addr netip.Addr
	done chan struct{}
}

// Listen opens the socket mode asks for and returns a Pinger using it. The
// socket is closed, the reader goroutine ends and pings in flight fail when
// ctx ends. When the host refuses the socket the error wraps
// ErrNotPermitted and names both host fixes.
func Listen(ctx context.Context, mode Mode) (*Pinger, error) {
	var tries []string
	switch mode {
	case Auto:
		tries = []string{networkRaw, networkPing}
	case Privileged:
		tries = []string{networkRaw}
	case Unprivileged:
		tries = []string{networkPing}
	default:
		return nil, fmt.Errorf("icmp mode %q: want privileged, unprivileged or empty for either", mode)
	}
	var errs []string
	var wrapped []error
	for _, network := range tries {
		conn, err := listen(network)
		if err == nil {
			return start(ctx, conn, network == networkRaw, rand.IntN(1<<16)), nil
		}
		err = fmt.Errorf("%s socket: %w", socketName(network), err)
		if !isPermission(err) {
			return nil, fmt.Errorf("icmp: %w", errors.Join(append(wrapped, err)...))
		}
		errs = append(errs, err.Error())
		wrapped = append(wrapped, err)
	}
	return nil, &notPermitted{
		msg: fmt.Sprintf("%v: %s; run as root or with CAP_NET_RAW for the raw socket, "+
			"or allow this process's group to open ping sockets with sysctl net.ipv4.ping_group_range "+
			"(e.g. \"0 2147483647\")", ErrNotPermitted, strings.Join(errs, "; ")),
		errs: wrapped,
	}
}

// notPermitted keeps the socket errors reachable with errors.Is (EPERM,
// EACCES) while printing them on one line, so the caller's fix reads on.
type notPermitted struct {
	msg  string
	errs []error
}

func (e *notPermitted) Error() string { return e.msg }

func (e *notPermitted) Unwrap() []error { return append([]error{ErrNotPermitted}, e.errs...) }

func listen(network string) (net.PacketConn, error) {
	if network == networkPing {
		return icmp.ListenPacket(networkPing, "0.0.0.0")
	}
	c, err := net.ListenPacket(networkRaw, "0.0.0.0")
	if err != nil {
		return nil, err
	}
	_ = c.(*net.IPConn).SetReadBuffer(readBuffer)
	// A raw socket receives every ICMP message of the host, our own echo
	// requests too on loopback; the filter leaves only echo replies to
	// parse.
	var f ipv4.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv4.ICMPTypeEchoReply)
	if err := ipv4.NewPacketConn(c).SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("set echo-reply filter: %w", err)
	}
	return c, nil
}

func start(ctx context.Context, conn net.PacketConn, privileged bool, id int) *Pinger {
	token := make([]byte, 8)
	_, _ = crand.Read(token)
	p := &Pinger{
		conn:       conn,
		privileged: privileged,
		id:         id,
		token:      append([]byte("drwatch-"), token...),
		closed:     ctx.Done(),
		pending:    map[uint16]pending{},
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	go p.read()
	return p
}

func socketName(network string) string {
	if network == networkPing {
		return "unprivileged ping (udp4)"
	}
	return "privileged raw (ip4:icmp)"
}

func isPermission(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission)
}

// Privileged reports whether the pinger uses a raw socket.
func (p *Pinger) Privileged() bool { return p.privileged }

// read hands each echo reply to the ping waiting for it, until the socket
// is closed.
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
		if !ok || (p.privileged && echo.ID != p.id) || !bytes.Equal(echo.Data, p.token) {
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
// ends; the error then wraps ctx.Err(), so a deadline reads as
// context.DeadlineExceeded. A host given as an IPv6 address is refused
// with ErrNotIPv4.
func (p *Pinger) Ping(ctx context.Context, host string) error {
	addr, err := resolve4(ctx, host)
	if err != nil {
		return err
	}
	pe := pending{addr: addr, done: make(chan struct{})}
	seq, err := p.register(pe)
	if err != nil {
		return fmt.Errorf("icmp echo to %s: %w", host, err)
	}
	defer func() {
		p.mu.Lock()
		delete(p.pending, seq)
		p.mu.Unlock()
	}()

	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: int(seq), Data: p.token}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return fmt.Errorf("icmp echo to %s: %w", host, err)
	}
	var dst net.Addr = &net.IPAddr{IP: addr.AsSlice()}
	if !p.privileged {
		dst = &net.UDPAddr{IP: addr.AsSlice()}
	}
	if _, err := p.conn.WriteTo(wb, dst); err != nil {
		return fmt.Errorf("icmp echo to %s: send: %w", host, err)
	}
	select {
	case <-pe.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("icmp echo to %s: %w", host, ctx.Err())
	case <-p.closed:
		return fmt.Errorf("icmp echo to %s: pinger closed: %w", host, net.ErrClosed)
	}
}

// register picks the next free sequence number for pe.
func (p *Pinger) register(pe pending) (uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Skipping numbers still in flight keeps a wrapped counter from
	// handing one ping another's reply.
	for range 1 << 16 {
		p.seq++
		if _, busy := p.pending[p.seq]; !busy {
			p.pending[p.seq] = pe
			return p.seq, nil
		}
	}
	return 0, errors.New("65536 echoes already in flight")
}

func resolve4(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Unmap().Is4() {
			return netip.Addr{}, fmt.Errorf("icmp echo to %s: %w", host, ErrNotIPv4)
		}
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("icmp echo to %s: resolve: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("icmp echo to %s: resolve: no IPv4 address", host)
	}
	return addrs[0].Unmap(), nil
}
