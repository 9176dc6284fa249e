package kernel

import (
	"github.com/ringbox/ringbox/platform"
)

// Fork returns a copy of the address space for a child process (Linux:
// kernel/fork.c:dup_mmap()). Private pages are shared copy-on-write: both
// sides lose write access to them in the platform until one writes and
// gets its own copy. Shared mappings share their pages.
func (mm *MemoryManager) Fork() (*MemoryManager, error) {
	child, err := mm.k.newMM()
	if err != nil {
		return nil, err
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	child.brkStart, child.brk = mm.brkStart, mm.brk
	child.mmapBase, child.stackTop = mm.mmapBase, mm.stackTop
	for _, v := range mm.vmas {
		if v.dontFork {
			continue
		}
		nv := *v
		if nv.shm != nil {
			nv.shm.incRef()
		}
		child.vmas = append(child.vmas, &nv)
		child.mapped += v.end - v.start
		if v.wipeOnFork {
			// The child gets fresh zero pages on demand.
			continue
		}
		for va := v.start; va < v.end; va += pageSize {
			if p, ok := mm.pages[va]; ok {
				mm.mf.IncRef(memfileRange(p.off))
				child.pages[va] = p
			}
		}
	}
	// Write-protect the parent's private writable pages: they are now
	// shared. The child maps its pages on demand.
	for _, v := range mm.vmas {
		if v.shared || v.perms&platform.Write == 0 {
			continue
		}
		if err := mm.mapPagesLocked(v, v.start, v.end); err != nil {
			child.decUsers()
			return nil, err
		}
	}
	return child, nil
}
