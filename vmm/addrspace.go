package vmm

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// addressSpace is one process's page tables. Its upper half is the shared
// ring-0 region.
//
// TLB coherence (DESIGN.md): gen counts changes that remove or narrow a
// translation. A vCPU remembers the (address space, generation) its TLB
// may cache and flushes before entering when either differs; a change
// additionally kicks every vCPU running the address space out of the guest
// and waits for it to leave, so that no vCPU keeps using a stale entry once
// Unmap or MapFile returns.
//
// This relies on two-dimensional paging (EPT/NPT): the host writes guest
// page tables behind KVM's back, which shadow paging would not notice.
// TODO: detect shadow paging and refuse it.
type addressSpace struct {
	p *Platform

	// mu serializes edits of the tables.
	mu sync.Mutex
	// pt is the hierarchy. Protected by mu.
	pt *pageTables
	// gen is the generation; written under mu, read by vCPUs atomically.
	gen atomic.Uint64
	// released is set by Release. Protected by mu.
	released bool
}

var _ platform.AddressSpace = (*addressSpace)(nil)

// MapFile implements platform.AddressSpace.MapFile.
func (a *addressSpace) MapFile(addr uint64, fr memfile.FileRange, at platform.AccessType) error {
	if addr%pageSize != 0 || fr.Start%pageSize != 0 || fr.End%pageSize != 0 || fr.End < fr.Start {
		return fmt.Errorf("vmm: MapFile(%#x, %v): unaligned", addr, fr)
	}
	if end := addr + fr.Length(); end < addr || end > arch.MaxUserAddress {
		return fmt.Errorf("vmm: MapFile(%#x, %v): outside the user half", addr, fr)
	}
	if fr.End > a.p.mf.Size() {
		return fmt.Errorf("vmm: MapFile(%#x, %v): beyond the memory file", addr, fr)
	}
	if at&platform.AnyAccess == 0 {
		// PROT_NONE: nothing the CPU may reach.
		a.Unmap(addr, fr.Length())
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return fmt.Errorf("vmm: MapFile on a released address space")
	}
	narrowed, err := a.pt.mapRange(addr, fr, leafFlags(at&platform.Write != 0, at&platform.Execute != 0, true))
	if narrowed {
		a.shootdownLocked(nil)
	}
	if err != nil {
		return fmt.Errorf("vmm: MapFile(%#x, %v): %w", addr, fr, err)
	}
	return nil
}

// Unmap implements platform.AddressSpace.Unmap.
func (a *addressSpace) Unmap(addr, length uint64) {
	if addr >= arch.MaxUserAddress {
		return
	}
	if end := addr + length; end < addr || end > arch.MaxUserAddress {
		length = arch.MaxUserAddress - addr
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return
	}
	cleared, freed := a.pt.unmap(addr, length)
	if cleared || len(freed) > 0 {
		a.shootdownLocked(freed)
	} else {
		freeTables(a.p.mf, freed)
	}
}

// shootdownLocked makes the edits just made visible to every vCPU: it bumps
// the generation, kicks the vCPUs that run a in the guest and waits until
// each has left it, then frees the detached table pages.
//
// Preconditions: a.mu is held.
func (a *addressSpace) shootdownLocked(freed []uint64) {
	a.gen.Add(1)
	for _, v := range a.p.allVCPUs() {
		v.kickAndWait(a)
	}
	freeTables(a.p.mf, freed)
}

// Release implements platform.AddressSpace.Release.
func (a *addressSpace) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return
	}
	a.released = true
	// No context runs a any more. vCPUs that ran it last still point
	// loadedAS at it, which keeps the pointer from being reused, so their
	// next entry into another address space reloads CR3 and flushes
	// before the freed table pages can be reached.
	a.pt.release()
}
