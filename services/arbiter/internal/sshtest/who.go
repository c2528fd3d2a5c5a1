package sshtest

import (
	"testing"

	"github.com/drwatch/drwatch/pkg/sshsim"
)

// Who is an arbiter whose session list is `who` as sshd and utmp make it:
// only sessions with a terminal are listed, each by what sshd records as
// its origin. It stands for the arbiters a default Server does not: an
// account without a terminal (sshd PermitTTY no, authorized_keys no-pty),
// sshd's UseDNS recording host names, and NAT between a site and its
// arbiters. Sessions still returns every connection, listed or not.
type Who struct {
	*Server
}

// WhoOptions tune a Who server.
type WhoOptions struct {
	// User is the account accepted; default "arbiter".
	User     string
	Password string
	// NoTerminal refuses every pty request, so `who` lists nobody.
	NoTerminal bool
	// Origin is what `who` prints for a session from ip: a host name
	// (UseDNS), another address (NAT); nil prints ip.
	Origin func(ip string) string
}

// NewWho starts a Who server that is stopped when the test ends.
func NewWho(tb testing.TB, o WhoOptions) *Who {
	tb.Helper()
	return &Who{listen(tb, sshsim.Options{
		User:          o.User,
		Password:      o.Password,
		TerminalsOnly: true,
		NoTerminal:    o.NoTerminal,
		Origin:        o.Origin,
	})}
}
