package kernel

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// Atomic access to 32-bit words of user memory, for futexes and robust
// lists (Linux: arch/x86/include/asm/futex.h, futex_atomic_cmpxchg_inatomic()
// and arch_futex_atomic_op_inuser()).
//
// Other threads of the program run in user mode on other vCPUs and change
// the same words with locked instructions while the kernel works on them, so
// the kernel's own lock protects nothing there: the word is accessed with
// sync/atomic on the kernel's mapping of the memory file, which is the same
// physical memory the vCPUs use. MemoryManager.mu is held only so that the
// page cannot be freed, replaced by a copy-on-write break or handed to
// another mapping while the kernel touches it.

// errUserU32Retry asks withUserU32 to fault the page in and look again.
var errUserU32Retry = errors.New("page not ready for the access")

// userU32MaxTries bounds the fault-and-retry loop of withUserU32; a word
// that another thread keeps unmapping and remapping meanwhile gets EFAULT.
const userU32MaxTries = 8

// withUserU32 runs fn on the aligned 32-bit word of user memory at addr,
// with the page present and, if write is set, writable and private to this
// address space (copy-on-write already broken), as a fault of that access
// would leave it. It returns EINVAL for an unaligned address and EFAULT
// when the access is not allowed. Without fault, it returns
// errUserU32Retry instead of faulting the page in: the caller holds locks
// that a fault must not be taken under (Linux: pagefault_disable()).
func (mm *MemoryManager) withUserU32(addr uint64, write, fault bool, fn func(p *uint32)) error {
	if addr%4 != 0 {
		return unix.EINVAL
	}
	if !userRangeOK(addr, 4) {
		return unix.EFAULT
	}
	at := platform.Read
	if write {
		at = platform.ReadWrite
	}
	for try := 0; try < userU32MaxTries; try++ {
		mm.mu.Lock()
		p, err := mm.userU32Locked(addr, at)
		if err == nil {
			fn(p)
			mm.mu.Unlock()
			return nil
		}
		mm.mu.Unlock()
		if !errors.Is(err, errUserU32Retry) || !fault {
			return err
		}
		// Populate the page, or break copy-on-write, exactly as the
		// fault the program would take on this access.
		if _, err := mm.HandleFault(addr, at); err != nil {
			if errors.Is(err, errOutOfMemory) {
				return err
			}
			return unix.EFAULT
		}
	}
	return unix.EFAULT
}

// userU32Locked returns the kernel's pointer to the word at addr, or
// errUserU32Retry when a fault must first populate the page or break its
// copy-on-write sharing.
//
// Preconditions: mm.mu is held; addr is 4-byte aligned.
func (mm *MemoryManager) userU32Locked(addr uint64, at platform.AccessType) (*uint32, error) {
	i := mm.findLocked(addr)
	if i < 0 {
		return nil, unix.EFAULT
	}
	v := mm.vmas[i]
	if at&^v.perms != 0 || v.perms == platform.NoAccess {
		return nil, unix.EFAULT
	}
	pg := arch.PageRoundDown(addr)
	p, ok := mm.pages[pg]
	if !ok {
		return nil, errUserU32Retry
	}
	if at&platform.Write != 0 && !v.shared && mm.mf.RefCount(p.off) > 1 {
		return nil, errUserU32Retry
	}
	return u32At(mm.mf.Bytes(memfileRange(p.off)), addr-pg), nil
}

// LoadU32 atomically reads the 32-bit word at addr.
func (mm *MemoryManager) LoadU32(addr uint64) (uint32, error) {
	return mm.loadU32(addr, true)
}

// loadU32 is LoadU32; without fault, a page that is not present yet is
// errUserU32Retry.
func (mm *MemoryManager) loadU32(addr uint64, fault bool) (uint32, error) {
	var v uint32
	err := mm.withUserU32(addr, false, fault, func(p *uint32) { v = atomic.LoadUint32(p) })
	return v, err
}

// CompareAndSwapU32 atomically replaces the word at addr with new if it
// holds old. It returns the value found, which equals old exactly when the
// swap happened (Linux: futex_atomic_cmpxchg_inatomic()).
func (mm *MemoryManager) CompareAndSwapU32(addr uint64, old, new uint32) (uint32, error) {
	return mm.compareAndSwapU32(addr, old, new, true)
}

// compareAndSwapU32 is CompareAndSwapU32; without fault, a page not ready
// for the write is errUserU32Retry.
func (mm *MemoryManager) compareAndSwapU32(addr uint64, old, new uint32, fault bool) (uint32, error) {
	var prev uint32
	err := mm.withUserU32(addr, true, fault, func(p *uint32) {
		for {
			if atomic.CompareAndSwapUint32(p, old, new) {
				prev = old
				return
			}
			// The swap failed because the word differs from old; report
			// what it holds, unless it changed back to old meanwhile.
			if cur := atomic.LoadUint32(p); cur != old {
				prev = cur
				return
			}
		}
	})
	return prev, err
}

// ReadModifyWriteU32 atomically replaces the word at addr with op(old) and
// returns old (Linux: arch_futex_atomic_op_inuser()).
func (mm *MemoryManager) ReadModifyWriteU32(addr uint64, op func(old uint32) uint32) (uint32, error) {
	return mm.readModifyWriteU32(addr, true, op)
}

// readModifyWriteU32 is ReadModifyWriteU32; without fault, a page that is
// not present or still shared copy-on-write is errUserU32Retry.
func (mm *MemoryManager) readModifyWriteU32(addr uint64, fault bool, op func(old uint32) uint32) (uint32, error) {
	var old uint32
	err := mm.withUserU32(addr, true, fault, func(p *uint32) {
		for {
			old = atomic.LoadUint32(p)
			if atomic.CompareAndSwapUint32(p, old, op(old)) {
				return
			}
		}
	})
	return old, err
}

// StoreU32 atomically writes the word at addr.
func (mm *MemoryManager) StoreU32(addr uint64, v uint32) error {
	return mm.withUserU32(addr, true, true, func(p *uint32) { atomic.StoreUint32(p, v) })
}
