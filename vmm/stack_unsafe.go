package vmm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/ringbox/ringbox/platform/memfile"
)

// stackWord returns a pointer to the word at ring-0 stack address va of
// vCPU v in the memory file.
func (v *vcpu) stackWord(va uint64) *uint64 {
	phys, ok := v.physOfStackVA(va)
	if !ok || va%8 != 0 {
		panic(fmt.Sprintf("vmm: vCPU %d: %#x is not on a ring-0 stack", v.id, va))
	}
	b := v.p.mf.Bytes(memfile.FileRange{Start: phys, End: phys + 8})
	return (*uint64)(unsafe.Pointer(&b[0]))
}

// readStack and writeStack access a ring-0 stack word. The vCPU is out of
// the guest whenever the host does, so plain accesses would do; atomics
// keep the race detector's view simple.
func (v *vcpu) readStack(va uint64) uint64     { return atomic.LoadUint64(v.stackWord(va)) }
func (v *vcpu) writeStack(va uint64, x uint64) { atomic.StoreUint64(v.stackWord(va), x) }
