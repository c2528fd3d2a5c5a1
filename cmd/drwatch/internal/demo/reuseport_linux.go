//go:build linux

package demo

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets both sites bind the VIP address at once, so that a second
// holder is not hidden by the kernel refusing it.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
