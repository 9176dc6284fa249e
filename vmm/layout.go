package vmm

import "github.com/ringbox/ringbox/guest"

// Guest memory layout. Every guest address and size of ringbox's KVM
// platform is here.
//
// Physical: one memslot covers the whole memory file, so a guest physical
// address is a memory-file offset (userspace_addr = MemoryFile.Base()).
// Page tables and the ring-0 pages below are allocated from the memory
// file like application pages and count against the sandbox's memory.
//
// Virtual (4-level paging, 48-bit addresses):
//
//	0x0000_0000_0000_0000 +--------------------------------------+
//	                      | user half: the program's mappings,   |
//	                      | made by the kernel with MapFile      |
//	0x0000_7fff_ffff_f000 +--------------------------------------+ arch.MaxUserAddress
//	                      | (unmapped; non-canonical hole)       |
//	0xffff_ff80_0000_0000 +--------------------------------------+ KernelBase (PML4[511])
//	                      | trap code (guest.Code)        r-x    | CodeVA
//	              +0x1000 | IDT                           r--    | IDTVA
//	                      | ...                                  |
//	                +1MiB +--------------------------------------+ CPUBase
//	                      | vCPU 0 block (CPUStride):            |
//	                      |   +0x0000 GDT (+0x80: TSS)    rw-    |
//	                      |   +0x1000 guard                      |
//	                      |   +0x2000 RSP0 stack          rw-    |
//	                      |   +0x3000 guard                      |
//	                      |   +0x4000 IST1 stack (#DF)    rw-    |
//	                      |   +0x5000 guard                      |
//	                      |   +0x6000 IST2 stack (NMI)    rw-    |
//	                      |   +0x7000 guard                      |
//	                      |   +0x8000 IST3 stack (#MC)    rw-    |
//	                      |   ...     guard to CPUStride         |
//	                      +--------------------------------------+
//	                      | vCPU 1 block ...                     |
//
// The upper half is supervisor-only (U=0 from the PML4 entry down) and is
// the same in every address space: each address space's PML4 points its
// entry 511 at one shared PDPT, built once by New.
//
// The trap frame of vCPU n is the top of its RSP0 stack: an exception from
// ring 3 makes the CPU push SS, RSP, RFLAGS, CS, RIP (and an error code)
// at fixed addresses below the stack top, since RSP0 is 16-byte aligned;
// the trap code then pushes the vector (Intel SDM Vol. 3, 6.14.2). The
// host enters ring 3 through iretq from the same five words.
//
//	stack top - 8   SS
//	stack top - 16  RSP
//	stack top - 24  RFLAGS
//	stack top - 32  CS
//	stack top - 40  RIP          <- IretFrame (RSP for SlotIret)
//	stack top - 48  error code   (zero when the CPU pushes none)
//	stack top - 56  vector       <- ExceptionFrame (RSP at the exit)
const (
	// KernelBase is the start of the ring-0 region, PML4 entry 511.
	KernelBase = 0xffff_ff80_0000_0000
	// kernelPML4Index is the PML4 slot shared by every address space.
	kernelPML4Index = 511

	// CodeVA is where the trap code (guest.Code) is mapped.
	CodeVA = KernelBase
	// IDTVA is where the IDT is mapped.
	IDTVA = KernelBase + 0x1000

	// CPUBase is the start of the per-vCPU blocks; vCPU n's is at
	// CPUBase + n*CPUStride.
	CPUBase   = KernelBase + 0x10_0000
	CPUStride = 0x10000

	// Offsets inside a vCPU block. The pages of a block are allocated as
	// one contiguous run of cpuPages memory-file pages, in this order:
	// GDT page, RSP0 stack, IST1, IST2, IST3.
	gdtOffset   = 0x0000
	tssOffset   = 0x0080 // in the GDT page, after the GDTEntries*8 bytes
	stackOffset = 0x2000
	istOffset   = 0x4000 // IST i (1-based) at istOffset + (i-1)*istStride
	istStride   = 0x2000
	cpuPages    = 2 + guest.NumIST

	// MaxCPUs bounds the vCPU count so that the blocks stay inside one
	// page directory (1 GiB) of the ring-0 region.
	MaxCPUs = (1<<30 - (CPUBase - KernelBase)) / CPUStride

	// iretFrameSize is the five words of an iretq frame.
	iretFrameSize = 5 * 8
	// exceptionFrameSize adds the error code and the vector.
	exceptionFrameSize = iretFrameSize + 2*8
)

// Guard against a GDT that would overlap the TSS.
var _ [tssOffset - guest.GDTEntries*8]struct{}

// cpuBlockVA returns the start of vCPU n's block.
func cpuBlockVA(n int) uint64 { return CPUBase + uint64(n)*CPUStride }

// StackTop returns the top of vCPU n's RSP0 stack (TSS.RSP[0]).
func StackTop(n int) uint64 { return cpuBlockVA(n) + stackOffset + pageSize }

// ISTTop returns the top of vCPU n's IST stack i (1-based).
func ISTTop(n, i int) uint64 {
	return cpuBlockVA(n) + istOffset + uint64(i-1)*istStride + pageSize
}

// IretFrame returns the address of vCPU n's iretq frame.
func IretFrame(n int) uint64 { return StackTop(n) - iretFrameSize }

// ExceptionFrame returns where RSP points when vCPU n leaves the guest on
// ExceptionPort after an exception from ring 3.
func ExceptionFrame(n int) uint64 { return StackTop(n) - exceptionFrameSize }

// Entry points of the trap code.
const (
	syscallEntryVA = CodeVA + guest.SlotSyscall*guest.SlotSize
	syscallOutVA   = syscallEntryVA + guest.SyscallOutOffset
	sysretVA       = syscallEntryVA + guest.SysretOffset
	iretVA         = CodeVA + guest.SlotIret*guest.SlotSize
	iretFlushVA    = CodeVA + guest.SlotIretFlush*guest.SlotSize
)
