// Package probe reaches arbiters: ICMP echo and TCP connect for the active
// site, SSH login plus a session-listing command for the standby site, the
// persistent SSH sessions by which the active site "manages" its arbiters,
// and the parallel fan-out that bounds a whole round by one timeout.
package probe

import (
	"fmt"
	"net/netip"
	"strings"
)

// PeerSet is the set of the active site's source addresses, as arbiters
// see them in their session lists (site.peerAddresses). Prefixes are
// accepted so a site behind several NAT addresses is one entry.
type PeerSet []netip.Prefix

// ParsePeerSet reads addresses ("10.0.0.1") and prefixes ("10.0.0.0/29").
func ParsePeerSet(items []string) (PeerSet, error) {
	return ParseAddressSet("site.peerAddresses", "the peer site's", items)
}

// ParseAddressSet reads a set of addresses and prefixes configured under
// field; whose says whose source addresses they are, for the error.
func ParseAddressSet(field, whose string, items []string) (PeerSet, error) {
	var ps PeerSet
	for i, s := range items {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not an IP address or prefix (arbiters list sessions by address, so give %s source addresses)", field, i, s, whose)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

// String lists the set as configured: addresses bare, prefixes with
// their length.
func (ps PeerSet) String() string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.IsSingleIP() {
			parts = append(parts, p.Addr().String())
		} else {
			parts = append(parts, p.String())
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Contains reports whether a is one of the peer's addresses.
func (ps PeerSet) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SessionAddresses extracts every IP address from a session listing. It
// reads `who` ("root pts/0 2025-03-01 12:00 (10.0.0.1)"), `ss -tn`
// ("ESTAB 0 0 10.0.0.9:22 10.0.0.1:53422"), Junos `show system users` and
// plain one-address-per-line output alike, because it looks at tokens, not
// columns: a token is an address when it parses as one, optionally in
// parentheses or brackets and with a port.
func SessionAddresses(output string) []netip.Addr {
	var out []netip.Addr
	for _, line := range strings.Split(output, "\n") {
		for _, tok := range strings.Fields(line) {
			if a, ok := parseAddrToken(tok); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

func parseAddrToken(tok string) (netip.Addr, bool) {
	tok = strings.Trim(tok, "(),;")
	if a, err := netip.ParseAddr(tok); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(tok); err == nil {
		return ap.Addr().Unmap(), true
	}
	// `who` prints X displays as "10.0.0.1:S.0"; ss can print "*:22".
	if host, _, ok := strings.Cut(tok, ":"); ok && strings.Count(tok, ":") == 1 {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// ManagedBy reports whether a session listing shows a session from one of
// the peer's addresses, and which address matched.
func ManagedBy(output string, peers PeerSet) (netip.Addr, bool) {
	for _, a := range SessionAddresses(output) {
		if peers.Contains(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}
