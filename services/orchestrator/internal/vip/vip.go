// Package vip moves the site's service address: it adds or removes the
// address on an interface over netlink and announces it with gratuitous
// ARP so neighbours forget the old owner's MAC at once.
package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrPermission marks an operation refused for lack of CAP_NET_ADMIN (or
// CAP_NET_RAW for the announcement).
var ErrPermission = errors.New("permission denied: moving the VIP needs CAP_NET_ADMIN and CAP_NET_RAW (run drwatch as root or grant them)")

// Address is a VIP on one interface.
type Address struct {
	Prefix    netip.Prefix
	Interface string
}

// New parses cidr ("10.0.0.10/24") for iface.
func New(cidr, iface string) (*Address, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("vip.address %q: want an address with prefix length, e.g. 10.0.0.10/24: %w", cidr, err)
	}
	if iface == "" {
		return nil, fmt.Errorf("vip.interface is required with vip.address %s", cidr)
	}
	return &Address{Prefix: p, Interface: iface}, nil
}

func (a *Address) String() string { return a.Prefix.String() + " on " + a.Interface }

// Names returns the address with its prefix length and the interface.
func (a *Address) Names() (address, iface string) { return a.Prefix.String(), a.Interface }

func (a *Address) link() (netlink.Link, *netlink.Addr, error) {
	l, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return nil, nil, wrap(fmt.Sprintf("vip.interface %q", a.Interface), err)
	}
	ipn := &net.IPNet{IP: net.IP(a.Prefix.Addr().AsSlice()), Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())}
	return l, &netlink.Addr{IPNet: ipn}, nil
}

// Held reports whether the address is on the interface.
func (a *Address) Held(context.Context) (bool, error) {
	l, want, err := a.link()
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false, wrap("list addresses of "+a.Interface, err)
	}
	for _, got := range addrs {
		if got.IP.Equal(want.IP) {
			return true, nil
		}
	}
	return false, nil
}

// Take adds the address (a no-op when present) and announces it. Both are
// idempotent, so a resumed failover may take it again.
func (a *Address) Take(ctx context.Context) error {
	l, addr, err := a.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return wrap("add "+a.String(), err)
	}
	if a.Prefix.Addr().Is4() {
		if err := announce(l, a.Prefix.Addr()); err != nil {
			return wrap("gratuitous ARP for "+a.String(), err)
		}
	}
	return nil
}

// Release removes the address; absent is fine.
func (a *Address) Release(ctx context.Context) error {
	held, err := a.Held(ctx)
	if err != nil || !held {
		return err
	}
	l, addr, err := a.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return wrap("remove "+a.String(), err)
	}
	return nil
}

func wrap(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s: %w", what, ErrPermission)
	}
	return fmt.Errorf("%s: %w", what, err)
}

const ethPARP = 0x0806

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// announce broadcasts a gratuitous ARP request and reply for ip from the
// link's MAC, as arping -U and -A do; some neighbours heed only one kind.
func announce(l netlink.Link, ip netip.Addr) error {
	hw := l.Attrs().HardwareAddr
	if len(hw) != 6 {
		return nil // no Ethernet address (e.g. a tunnel): nothing to announce
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(ethPARP)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	bcast := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	sa := &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: l.Attrs().Index, Halen: 6, Addr: bcast}
	for _, op := range []uint16{1, 2} {
		if err := unix.Sendto(fd, Frame(hw, ip, op), 0, sa); err != nil {
			return err
		}
	}
	return nil
}

// Frame builds a broadcast gratuitous ARP frame: sender and target protocol
// address are both ip.
func Frame(hw net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], hw)
	binary.BigEndian.PutUint16(f[12:14], ethPARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:4], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], op)
	ip4 := ip.As4()
	copy(a[8:14], hw)
	copy(a[14:18], ip4[:])
	if op == 2 {
		copy(a[18:24], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	copy(a[24:28], ip4[:])
	return f
}
