package ptrace

import (
	"testing"

	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
	"github.com/ringbox/ringbox/platform/platformtest"
)

// newTestPlatform is the platformtest constructor for ptrace.
func newTestPlatform(t *testing.T, mf *memfile.MemoryFile) platform.Platform {
	t.Helper()
	p, err := New(mf, Options{CPUs: 2})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	platformtest.Run(t, newTestPlatform)
}
