package vmm

import (
	"fmt"

	"github.com/ringbox/ringbox/platform/memfile"
)

// Page-table entry bits (Intel SDM Vol. 3, 4.5, tables 4-14 to 4-20).
const (
	ptePresent  = 1 << 0
	pteWrite    = 1 << 1
	pteUser     = 1 << 2
	pteAccessed = 1 << 5
	pteDirty    = 1 << 6
	pteNX       = 1 << 63
	pteAddrMask = 0x000f_ffff_ffff_f000

	pageSize    = memfile.PageSize
	pageShift   = 12
	levelBits   = 9
	entries     = 1 << levelBits
	levelsTotal = 4
	// userHalfEnd is the first address of the upper canonical half's
	// PML4 range; PML4 entries 256-511 are supervisor territory.
	userHalfEnd = 1 << 47
)

// pteFlags are the permission bits of a leaf entry.
type pteFlags uint64

// leafFlags returns the entry bits of a present user page. Accessed and
// dirty are preset so the CPU never writes to the tables the host edits
// (the host does not track either). Write implies read on x86; a page
// without execute is NX (EFER.NXE is on).
func leafFlags(write, exec, user bool) pteFlags {
	f := pteFlags(ptePresent | pteAccessed)
	if write {
		f |= pteWrite | pteDirty
	}
	if user {
		f |= pteUser
	}
	if !exec {
		f |= pteNX
	}
	return f
}

// pageTables is one 4-level hierarchy kept in guest memory (memory-file
// pages). The host edits it through its mapping of the file while vCPUs
// may walk it: every entry is written with a single atomic store, and a
// table page is freed only after the caller has shot down the TLBs that may
// still cache it (see unmap).
//
// pageTables does no locking; AddressSpace serializes edits.
type pageTables struct {
	mf *memfile.MemoryFile
	// root is the physical address of the PML4.
	root uint64
	// tables counts the table pages owned (the root included, the shared
	// upper half excluded).
	tables int
}

// newPageTables allocates an empty PML4. If upper is non-zero it is
// installed, supervisor-only, as the shared upper-half PML4 entry
// (kernelPML4Index).
func newPageTables(mf *memfile.MemoryFile, upper uint64) (*pageTables, error) {
	fr, err := mf.Allocate(1)
	if err != nil {
		return nil, fmt.Errorf("allocate PML4: %w", err)
	}
	pt := &pageTables{mf: mf, root: fr.Start, tables: 1}
	if upper != 0 {
		storePTE(pt.entry(pt.root, kernelPML4Index), upper)
	}
	return pt, nil
}

// entry returns the address of entry i of the table at physical table.
func (pt *pageTables) entry(table uint64, i int) *uint64 {
	return pteAt(pt.mf, table, i)
}

// index returns the table index of va at level (4 = PML4, 1 = PT).
func index(va uint64, level int) int {
	return int(va>>(pageShift+levelBits*(level-1))) & (entries - 1)
}

// levelSpan is the bytes one entry covers at level.
func levelSpan(level int) uint64 { return 1 << (pageShift + levelBits*(level-1)) }

// leafTable returns the physical address of the page table (level 1) that
// maps va, allocating the missing levels when alloc is set. It returns 0
// when the table is absent and alloc is false.
func (pt *pageTables) leafTable(va uint64, alloc bool) (uint64, error) {
	table := pt.root
	// Intermediate entries are writable and user-accessible for user
	// addresses: the leaf alone decides (Intel SDM Vol. 3, 4.6 combines
	// the levels with AND).
	inter := uint64(ptePresent | pteWrite | pteAccessed)
	if va < userHalfEnd {
		inter |= pteUser
	}
	for level := levelsTotal; level > 1; level-- {
		e := pt.entry(table, index(va, level))
		v := loadPTE(e)
		if v&ptePresent == 0 {
			if !alloc {
				return 0, nil
			}
			fr, err := pt.mf.Allocate(1)
			if err != nil {
				return 0, fmt.Errorf("allocate level-%d page table: %w", level-1, err)
			}
			pt.tables++
			v = fr.Start | inter
			storePTE(e, v)
		}
		table = v & pteAddrMask
	}
	return table, nil
}

// mapRange maps the pages of fr at va with flags. It reports whether a
// present entry was replaced by one that points elsewhere or allows less,
// which obliges the caller to flush TLBs before relying on the change.
func (pt *pageTables) mapRange(va uint64, fr memfile.FileRange, flags pteFlags) (narrowed bool, err error) {
	var table uint64
	for off := uint64(0); off < fr.Length(); off += pageSize {
		a := va + off
		if table == 0 || index(a, 1) == 0 {
			if table, err = pt.leafTable(a, true); err != nil {
				return narrowed, err
			}
		}
		e := pt.entry(table, index(a, 1))
		nv := (fr.Start+off)&pteAddrMask | uint64(flags)
		old := loadPTE(e)
		if old&ptePresent != 0 && old != nv && !widens(old, nv) {
			narrowed = true
		}
		storePTE(e, nv)
	}
	return narrowed, nil
}

// widens reports whether replacing entry old by nv only adds permissions
// to the same page. A stale TLB entry for old then causes at most a
// spurious fault, which invalidates it (Intel SDM Vol. 3, 4.10.4.3).
func widens(old, nv uint64) bool {
	if old&pteAddrMask != nv&pteAddrMask {
		return false
	}
	if old&pteWrite != 0 && nv&pteWrite == 0 {
		return false
	}
	if old&pteNX == 0 && nv&pteNX != 0 {
		return false
	}
	return old&pteUser == nv&pteUser
}

// unmap clears the entries of [va, va+length) and detaches table pages
// that became empty. It returns whether any present entry was cleared, and
// the detached table pages, which the caller frees after the TLB shootdown
// (a vCPU may still walk them through its paging-structure caches).
func (pt *pageTables) unmap(va, length uint64) (cleared bool, freed []uint64) {
	if length == 0 {
		return false, nil
	}
	end := va + length
	if end < va {
		end = ^uint64(0)
	}
	cleared, _ = pt.unmapLevel(pt.root, levelsTotal, 0, va, end, &freed)
	return cleared, freed
}

// unmapLevel clears [start, end) in the table at physical table of level,
// which maps addresses from base. It returns whether it cleared a present
// entry and whether the table is now empty.
func (pt *pageTables) unmapLevel(table uint64, level int, base, start, end uint64, freed *[]uint64) (cleared, empty bool) {
	span := levelSpan(level)
	for i := 0; i < entries; i++ {
		lo := base + uint64(i)*span
		if level == levelsTotal && i >= kernelPML4Index {
			break // never touch the shared upper half
		}
		// lo+span-1 is the entry's last byte: lo+span overflows for the
		// last entry of the address space.
		if lo+span-1 < start || lo >= end {
			continue
		}
		e := pt.entry(table, i)
		v := loadPTE(e)
		if v&ptePresent == 0 {
			continue
		}
		if level == 1 {
			storePTE(e, 0)
			cleared = true
			continue
		}
		child := v & pteAddrMask
		c, childEmpty := pt.unmapLevel(child, level-1, lo, start, end, freed)
		cleared = cleared || c
		if childEmpty {
			storePTE(e, 0)
			*freed = append(*freed, child)
			pt.tables--
		}
	}
	return cleared, pt.tableEmpty(table)
}

// unmapKernel clears and detaches the upper-half subtree of the template
// hierarchy when the platform closes, returning the table pages to free.
func (pt *pageTables) unmapKernel() (cleared bool, freed []uint64) {
	e := pt.entry(pt.root, kernelPML4Index)
	v := loadPTE(e)
	if v&ptePresent == 0 {
		return false, nil
	}
	child := v & pteAddrMask
	cleared, _ = pt.unmapLevel(child, levelsTotal-1, KernelBase, KernelBase, ^uint64(0), &freed)
	storePTE(e, 0)
	return cleared, append(freed, child)
}

// tableEmpty reports whether no entry of the table is present.
func (pt *pageTables) tableEmpty(table uint64) bool {
	for i := 0; i < entries; i++ {
		if loadPTE(pt.entry(table, i))&ptePresent != 0 {
			return false
		}
	}
	return true
}

// lookup returns the leaf entry mapping va, or 0.
func (pt *pageTables) lookup(va uint64) uint64 {
	table := pt.root
	for level := levelsTotal; level > 1; level-- {
		v := loadPTE(pt.entry(table, index(va, level)))
		if v&ptePresent == 0 {
			return 0
		}
		table = v & pteAddrMask
	}
	return loadPTE(pt.entry(table, index(va, 1)))
}

// translate returns the physical address va maps to.
func (pt *pageTables) translate(va uint64) (uint64, bool) {
	e := pt.lookup(va)
	if e&ptePresent == 0 {
		return 0, false
	}
	return e&pteAddrMask | va&(pageSize-1), true
}

// freeTables returns table pages to the memory file.
func freeTables(mf *memfile.MemoryFile, pages []uint64) {
	for _, p := range pages {
		mf.DecRef(memfile.FileRange{Start: p, End: p + pageSize})
	}
}

// release frees every table page of the user half and the root. The
// caller guarantees no vCPU uses the tables any more.
func (pt *pageTables) release() {
	_, freed := pt.unmap(0, userHalfEnd)
	// unmap only detaches tables that had a present entry in range;
	// tables emptied earlier were freed then.
	freed = append(freed, pt.root)
	freeTables(pt.mf, freed)
	pt.tables = 0
	pt.root = 0
}
