package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// CopyInForce reads user memory ignoring the vma's current protections,
// as ptrace and /proc/pid/mem do (Linux: FOLL_FORCE in
// mm/gup.c:check_vma_flags()): a PROT_NONE page of a mapping that could
// be made readable is still read. It returns the bytes read.
func (mm *MemoryManager) CopyInForce(addr uint64, buf []byte) (int, error) {
	return mm.copyForce(addr, buf, false)
}

// CopyOutForce writes user memory ignoring the vma's protections: a
// tracer's POKETEXT into read-only text. A private page gets a private
// copy first (copy-on-write), so the write never reaches another process
// sharing the page.
func (mm *MemoryManager) CopyOutForce(addr uint64, buf []byte) (int, error) {
	return mm.copyForce(addr, buf, true)
}

func (mm *MemoryManager) copyForce(addr uint64, buf []byte, write bool) (int, error) {
	if !userRangeOK(addr, uint64(len(buf))) {
		return 0, unix.EFAULT
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	done := 0
	for done < len(buf) {
		a := addr + uint64(done)
		pg := arch.PageRoundDown(a)
		i := mm.findLocked(a)
		if i < 0 {
			return done, unix.EFAULT
		}
		v := mm.vmas[i]
		p, ok := mm.pages[pg]
		if !ok {
			if err := mm.populateLocked(v, pg, pg+pageSize); err != nil {
				return done, unix.ENOMEM
			}
			p = mm.pages[pg]
		}
		if write && !v.shared && mm.mf.RefCount(p.off) > 1 {
			if err := mm.breakCOWLocked(pg, p); err != nil {
				return done, unix.ENOMEM
			}
			p = mm.pages[pg]
			if err := mm.mapPagesLocked(v, pg, pg+pageSize); err != nil {
				return done, err
			}
		}
		inPage := a - pg
		n := min(uint64(len(buf)-done), pageSize-inPage)
		mem := mm.mf.Bytes(memfileRange(p.off))
		if write {
			copy(mem[inPage:inPage+n], buf[done:])
		} else {
			copy(buf[done:], mem[inPage:inPage+n])
		}
		done += int(n)
	}
	return done, nil
}
