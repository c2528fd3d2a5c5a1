//go:build !linux

package demo

import "syscall"

// reusePort is a no-op off Linux: a second holder of
// the VIP is then refused by the kernel.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
