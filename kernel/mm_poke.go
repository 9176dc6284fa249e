package kernel

import (
	"encoding/binary"

	"github.com/ringbox/ringbox/platform"
)

// storeU32Present stores v at the aligned user address addr only if its
// page is present, private to this address space and writable: it never
// populates or breaks copy-on-write, so it calls no platform method and
// may run inside Switch (the rseq entry hook).
func (mm *MemoryManager) storeU32Present(addr uint64, v uint32) bool {
	if addr%4 != 0 {
		return false
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	pg := addr &^ (pageSize - 1)
	p, ok := mm.pages[pg]
	if !ok {
		return false
	}
	i := mm.findLocked(addr)
	if i < 0 || mm.vmas[i].perms&platform.Write == 0 {
		return false
	}
	if !mm.vmas[i].shared && mm.mf.RefCount(p.off) > 1 {
		return false
	}
	b := mm.mf.Bytes(memfileRange(p.off))
	binary.LittleEndian.PutUint32(b[addr-pg:], v)
	return true
}
