package e2e

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ringbox/ringbox/platform/memfile"
	"github.com/ringbox/ringbox/platform/platformtest"
	"github.com/ringbox/ringbox/vmm"
)

// kvmProbeSize is the memory file of the probe: enough for the KVM
// platform's own ring-0 pages (a memfd is sparse, so it costs nothing).
const kvmProbeSize = 16 << 20

// kvmPlatformOnce builds and closes the KVM platform once per run, as
// `ringbox run --platform kvm` would, so that a /dev/kvm that answers
// KVM_GET_API_VERSION but cannot run ringbox's guest is told apart from a
// broken ringbox.
var kvmPlatformOnce = sync.OnceValue(func() error {
	mf, err := memfile.New("e2e-kvm-probe", kvmProbeSize)
	if err != nil {
		return fmt.Errorf("memory file for the KVM probe: %w", err)
	}
	defer mf.Close()
	p, err := vmm.New(mf, vmm.Options{CPUs: 1})
	if err != nil {
		return err
	}
	return p.Close()
})

// requireKVMPlatform skips t, saying why, unless the KVM platform can run
// here: /dev/kvm usable (platformtest.RequireKVM, the one gate of KVM
// tests) and a KVM that ringbox supports, with the capabilities it needs
// (not PVM, for one).
func requireKVMPlatform(t *testing.T) {
	t.Helper()
	platformtest.RequireKVM(t)
	err := kvmPlatformOnce()
	switch {
	case errors.Is(err, vmm.ErrUnsupportedKVM), errors.Is(err, vmm.ErrMissingCapability):
		t.Skipf("KVM platform unavailable: %v", err)
	case err != nil:
		t.Fatalf("creating the KVM platform: %v", err)
	}
}
