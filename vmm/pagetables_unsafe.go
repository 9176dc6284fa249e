package vmm

import (
	"sync/atomic"
	"unsafe"

	"github.com/ringbox/ringbox/platform/memfile"
)

// pteAt returns a pointer to entry i of the page-table page at physical
// address table, inside the kernel's mapping of the memory file.
func pteAt(mf *memfile.MemoryFile, table uint64, i int) *uint64 {
	b := mf.Bytes(memfile.FileRange{Start: table, End: table + pageSize})
	return (*uint64)(unsafe.Pointer(&b[i*8]))
}

// loadPTE and storePTE access an entry atomically: a vCPU's page walker
// may read it concurrently, and must never see half of an update.
func loadPTE(e *uint64) uint64     { return atomic.LoadUint64(e) }
func storePTE(e *uint64, v uint64) { atomic.StoreUint64(e, v) }
