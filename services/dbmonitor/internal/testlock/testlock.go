// Package testlock serialises the test runs that use the databases of
// scripts/testdb.sh: they promote, fence and rebuild one shared pair.
package testlock

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Acquire blocks until this process holds the lock of the test databases
// (a file in $DRWATCH_TESTDB_BASE) and returns its release. Without the
// variable the tests skip, and there is nothing to lock.
func Acquire() func() {
	base := os.Getenv("DRWATCH_TESTDB_BASE")
	if base == "" {
		return func() {}
	}
	f, err := os.OpenFile(filepath.Join(base, "tests.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testlock: %v (running unlocked)\n", err)
		return func() {}
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		fmt.Fprintf(os.Stderr, "testlock: %v (running unlocked)\n", err)
	}
	if d := time.Since(start); d > time.Second {
		fmt.Fprintf(os.Stderr, "testlock: waited %s for another test run on the same databases\n", d.Round(time.Second))
	}
	return func() { f.Close() }
}
