package e2e

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain prepares what every run shares: no core dumps from the programs
// that are meant to die by a signal (RLIMIT_CORE is inherited), and a
// directory for the ringbox build that outlives any one test.
func TestMain(m *testing.M) {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: setrlimit(RLIMIT_CORE, 0): %v\n", err)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "ringbox-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(2)
	}
	ringboxTmp = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
