package monitor

import (
	"os"
	"testing"

	"github.com/drwatch/drwatch/services/dbmonitor/internal/testlock"
)

// TestMain holds the test databases for the whole run: another go test
// process (a second package, a parallel CI job on the same box) promoting
// or healing the same pair would otherwise break this one's assumptions.
func TestMain(m *testing.M) {
	unlock := testlock.Acquire()
	code := m.Run()
	unlock()
	os.Exit(code)
}
