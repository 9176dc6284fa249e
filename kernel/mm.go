package kernel

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// errOutOfMemory is returned when the sandbox's memory file is full.
var errOutOfMemory = errors.New("out of memory")

const (
	pageSize = arch.PageSize
	// mmapMinAddr is the lowest address a mapping may have (Linux:
	// vm.mmap_min_addr default 65536).
	mmapMinAddr = 0x10000
	// faultAround is how many pages around a fault are populated at once,
	// which saves platform round trips on sequential access.
	faultAround = 16
)

// vma is a virtual memory area: a range with uniform permissions.
type vma struct {
	start, end uint64
	perms      platform.AccessType
	// maxPerms bounds what mprotect may grant (always rwx for anonymous).
	maxPerms platform.AccessType
	shared   bool
	name     string
	// dontFork and wipeOnFork are MADV_DONTFORK and MADV_WIPEONFORK.
	dontFork, wipeOnFork bool
	// shm is the object of a shared anonymous mapping or of a file
	// mapping (mm_file.go), and shmOff the
	// object offset of start.
	shm    memObject
	shmOff uint64
}

// page is one present page of the address space.
type page struct {
	// off is the page's offset in the memory file.
	off uint64
	// prefault marks a page populated around a fault on another page
	// (fault-around, which saves the ptrace platform a round trip per
	// page of a sequential access). Linux maps one anonymous page per
	// fault, so mincore(2) reports such a page as not resident until
	// the kernel sees it used.
	//
	// TODO(ringbox): a prefaulted page that user code touches without a
	// fault stays "not resident" for mincore.
	prefault bool
}

// MemoryManager is a process's address space (Linux: struct mm_struct).
type MemoryManager struct {
	k  *Kernel
	mf *memfile.MemoryFile
	as platform.AddressSpace

	users atomic.Int32

	// membarrierRegistered is MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED.
	membarrierRegistered atomic.Bool

	mu sync.Mutex
	// vmas are sorted by start and do not overlap. Protected by mu.
	vmas []*vma
	// pages maps page addresses to present pages. Protected by mu.
	pages map[uint64]page
	// brkStart and brk delimit the heap. Protected by mu.
	brkStart, brk uint64
	// mmapBase is where top-down mmap placement starts. Protected by mu.
	mmapBase uint64
	// stackTop is the top of the initial stack. Protected by mu.
	stackTop uint64
	// mapped is the total length of the vmas (for RLIMIT_AS).
	// Protected by mu.
	mapped uint64
}

// newMM creates an empty address space.
func (k *Kernel) newMM() (*MemoryManager, error) {
	as, err := k.platform.NewAddressSpace()
	if err != nil {
		return nil, err
	}
	mm := &MemoryManager{k: k, mf: k.mf, as: as, pages: make(map[uint64]page)}
	mm.users.Store(1)
	registerMM(mm)
	return mm, nil
}

// incUsers adds a task sharing the address space.
func (mm *MemoryManager) incUsers() { mm.users.Add(1) }

// decUsers drops a task; the last one frees everything.
func (mm *MemoryManager) decUsers() {
	if mm.users.Add(-1) != 0 {
		return
	}
	unregisterMM(mm)
	mm.mu.Lock()
	for _, p := range mm.pages {
		mm.mf.DecRef(memfile.FileRange{Start: p.off, End: p.off + pageSize})
	}
	mm.pages = nil
	for _, v := range mm.vmas {
		dropVMAObject(v)
	}
	mm.vmas = nil
	mm.mu.Unlock()
	mm.as.Release()
}

// findLocked returns the index of the vma containing addr, or -1.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) findLocked(addr uint64) int {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].end > addr })
	if i < len(mm.vmas) && mm.vmas[i].start <= addr {
		return i
	}
	return -1
}

// overlapsLocked reports whether [start, end) intersects a vma or a range
// reserved by the platform.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) overlapsLocked(start, end uint64) bool {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].end > start })
	if i < len(mm.vmas) && mm.vmas[i].start < end {
		return true
	}
	return mm.reservedOverlap(start, end)
}

func (mm *MemoryManager) reservedOverlap(start, end uint64) bool {
	for _, r := range mm.k.platform.ReservedRanges() {
		if start < r.End && r.Start < end {
			return true
		}
	}
	return false
}

// splitLocked makes addr a vma boundary if it falls inside one.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) splitLocked(addr uint64) {
	i := mm.findLocked(addr)
	if i < 0 || mm.vmas[i].start == addr {
		return
	}
	v := mm.vmas[i]
	right := *v
	right.start = addr
	if v.shm != nil {
		v.shm.incRef()
		right.shmOff = v.shmOff + (addr - v.start)
	}
	v.end = addr
	mm.vmas = append(mm.vmas, nil)
	copy(mm.vmas[i+2:], mm.vmas[i+1:])
	mm.vmas[i+1] = &right
}

// removeLocked deletes the vmas and pages in [start, end) and unmaps them
// from the platform.
//
// Preconditions: mm.mu is held; start and end are page aligned.
func (mm *MemoryManager) removeLocked(start, end uint64) {
	mm.splitLocked(start)
	mm.splitLocked(end)
	out := mm.vmas[:0]
	removed := false
	for _, v := range mm.vmas {
		if v.start >= start && v.end <= end {
			mm.mapped -= v.end - v.start
			removed = true
			dropVMAObject(v)
			continue
		}
		out = append(out, v)
	}
	for i := len(out); i < len(mm.vmas); i++ {
		mm.vmas[i] = nil
	}
	mm.vmas = out
	if !removed {
		return
	}
	mm.freePagesLocked(start, end)
	mm.as.Unmap(start, end-start)
}

// freePagesLocked drops the pages in [start, end).
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) freePagesLocked(start, end uint64) {
	if (end-start)/pageSize < uint64(len(mm.pages)) {
		for a := start; a < end; a += pageSize {
			if p, ok := mm.pages[a]; ok {
				mm.mf.DecRef(memfile.FileRange{Start: p.off, End: p.off + pageSize})
				delete(mm.pages, a)
			}
		}
		return
	}
	for a, p := range mm.pages {
		if a >= start && a < end {
			mm.mf.DecRef(memfile.FileRange{Start: p.off, End: p.off + pageSize})
			delete(mm.pages, a)
		}
	}
}

// insertLocked adds v, which must not overlap any vma.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) insertLocked(v *vma) {
	i := sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].start >= v.end })
	mm.vmas = append(mm.vmas, nil)
	copy(mm.vmas[i+1:], mm.vmas[i:])
	mm.vmas[i] = v
	mm.mapped += v.end - v.start
}

// findFreeLocked finds length bytes of unmapped space, top-down below
// mmapBase (Linux: mm/mmap.c:unmapped_area_topdown()).
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) findFreeLocked(length uint64) (uint64, bool) {
	end := mm.mmapBase
	for i := len(mm.vmas) - 1; i >= -1; i-- {
		var lo uint64 = mmapMinAddr
		if i >= 0 {
			v := mm.vmas[i]
			if v.start >= end {
				continue
			}
			lo = max(v.end, mmapMinAddr)
		}
		for end >= lo+length && end-length >= lo {
			start := end - length
			if !mm.reservedOverlap(start, end) {
				return start, true
			}
			// Step below the reserved range that is in the way.
			moved := false
			for _, r := range mm.k.platform.ReservedRanges() {
				if start < r.End && r.Start < end {
					end = arch.PageRoundDown(r.Start)
					moved = true
				}
			}
			if !moved {
				break
			}
		}
		if i >= 0 {
			end = min(end, mm.vmas[i].start)
		}
	}
	return 0, false
}

// HandleFault resolves a fault at addr for access at. It returns the
// si_code for SIGSEGV when the access is not allowed, errOutOfMemory, or
// errBeyondEOF with BUS_ADRERR for a page past the end of a mapped file.
func (mm *MemoryManager) HandleFault(addr uint64, at platform.AccessType) (int32, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	i := mm.findLocked(addr)
	if i < 0 {
		return segvMaperr, unix.EFAULT
	}
	v := mm.vmas[i]
	if at&^v.perms != 0 || v.perms == platform.NoAccess {
		return segvAccerr, unix.EFAULT
	}
	pg := arch.PageRoundDown(addr)
	if p, ok := mm.pages[pg]; ok {
		if p.prefault {
			p.prefault = false
			mm.pages[pg] = p
		}
		if at&platform.Write != 0 && !v.shared && mm.mf.RefCount(p.off) > 1 {
			if err := mm.breakCOWLocked(pg, p); err != nil {
				return 0, errOutOfMemory
			}
		}
		// Present but not (or no longer) mapped by the platform with
		// these permissions: map it again.
		return 0, mm.mapPagesLocked(v, pg, pg+pageSize)
	}
	// Populate an aligned window around the fault, within the vma.
	win := uint64(faultAround * pageSize)
	start := max(v.start, pg&^(win-1))
	end := min(v.end, start+win)
	var absent []uint64
	for a := start; a < end; a += pageSize {
		if _, ok := mm.pages[a]; !ok && a != pg {
			absent = append(absent, a)
		}
	}
	if err := mm.populateLocked(v, start, end); err != nil {
		if errors.Is(err, memfile.ErrNoMemory) {
			return 0, errOutOfMemory
		}
		if !errors.Is(err, errBeyondEOF) {
			return 0, err
		}
		// Past the end of a mapped file: SIGBUS, unless the window
		// only reached beyond it after the faulting page.
		if _, ok := mm.pages[pg]; !ok {
			return busAdrerr, err
		}
	}
	for _, a := range absent {
		if p, ok := mm.pages[a]; ok {
			p.prefault = true
			mm.pages[a] = p
		}
	}
	return 0, nil
}

// populateLocked allocates zeroed pages for the absent pages of
// [start, end) inside v and maps them.
//
// Preconditions: mm.mu is held; [start, end) lies in v.
func (mm *MemoryManager) populateLocked(v *vma, start, end uint64) error {
	if v.shm != nil {
		return mm.populateSharedLocked(v, start, end)
	}
	a := start
	for a < end {
		if _, ok := mm.pages[a]; ok {
			a += pageSize
			continue
		}
		run := a
		for run < end {
			if _, ok := mm.pages[run]; ok {
				break
			}
			run += pageSize
		}
		n := (run - a) / pageSize
		fr, err := mm.mf.Allocate(n)
		if err != nil {
			// Fall back to single (recycled) pages.
			fr, err = mm.mf.Allocate(1)
			if err != nil {
				return err
			}
			n = 1
		}
		for j := uint64(0); j < n; j++ {
			mm.pages[a+j*pageSize] = page{off: fr.Start + j*pageSize}
		}
		if v.perms != platform.NoAccess {
			if err := mm.as.MapFile(a, fr, v.perms); err != nil {
				return err
			}
		}
		a += n * pageSize
	}
	return nil
}

// pagePermsLocked returns the permissions a present page gets in the
// platform: the vma's, without write while a private page is shared
// copy-on-write.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) pagePermsLocked(v *vma, p page) platform.AccessType {
	at := v.perms
	if at&platform.Write != 0 && !v.shared && mm.mf.RefCount(p.off) > 1 {
		at &^= platform.Write
	}
	return at
}

// breakCOWLocked gives the page at va a private copy (Linux:
// mm/memory.c:wp_page_copy()).
//
// Preconditions: mm.mu is held; p is present at va.
func (mm *MemoryManager) breakCOWLocked(va uint64, p page) error {
	fr, err := mm.mf.Allocate(1)
	if err != nil {
		return err
	}
	copy(mm.mf.Bytes(fr), mm.mf.Bytes(memfileRange(p.off)))
	mm.mf.DecRef(memfileRange(p.off))
	mm.pages[va] = page{off: fr.Start}
	return nil
}

// mapPagesLocked (re)maps the present pages of [start, end) in v,
// coalescing runs contiguous in the memory file with equal permissions.
//
// Preconditions: mm.mu is held.
func (mm *MemoryManager) mapPagesLocked(v *vma, start, end uint64) error {
	if v.perms == platform.NoAccess {
		mm.as.Unmap(start, end-start)
		return nil
	}
	var runVA, runOff, runLen uint64
	var runAt platform.AccessType
	flush := func() error {
		if runLen == 0 {
			return nil
		}
		err := mm.as.MapFile(runVA, memfile.FileRange{Start: runOff, End: runOff + runLen}, runAt)
		runLen = 0
		return err
	}
	for a := start; a < end; a += pageSize {
		p, ok := mm.pages[a]
		if !ok {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		at := mm.pagePermsLocked(v, p)
		if runLen != 0 && runVA+runLen == a && runOff+runLen == p.off && runAt == at {
			runLen += pageSize
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		runVA, runOff, runLen, runAt = a, p.off, pageSize, at
	}
	return flush()
}

// populateSharedLocked maps the object pages of a shared anonymous vma.
//
// Preconditions: mm.mu is held; [start, end) lies in v.
func (mm *MemoryManager) populateSharedLocked(v *vma, start, end uint64) error {
	for a := start; a < end; a += pageSize {
		if _, ok := mm.pages[a]; ok {
			continue
		}
		off, err := v.shm.page((a - v.start + v.shmOff) / pageSize)
		if errors.Is(err, errBeyondEOF) && a > start {
			// Map the pages inside the file before saying so.
			if v.perms != platform.NoAccess {
				if merr := mm.mapPagesLocked(v, start, a); merr != nil {
					return merr
				}
			}
			return err
		}
		if err != nil {
			return err
		}
		mm.pages[a] = page{off: off}
	}
	if v.perms == platform.NoAccess {
		return nil
	}
	return mm.mapPagesLocked(v, start, end)
}
