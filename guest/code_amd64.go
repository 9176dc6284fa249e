package guest

import (
	"unsafe"

	"github.com/ringbox/ringbox/arch"
)

// I/O ports on which the trap code leaves the guest. Nothing else in the
// VM uses port I/O: there is no in-kernel irqchip or PIT, so every out
// reaches the host as KVM_EXIT_IO. Ring 3 cannot forge these exits: the TSS
// has no I/O permission bitmap and IOPL is kept at 0, so in and out from
// user mode raise #GP.
const (
	SyscallPort   = 0x10
	ExceptionPort = 0x11
)

// SlotSize is the size of one entry slot; every entry point is a multiple
// of it from the start of the code.
const SlotSize = 32

// Slots of the trap code.
const (
	// SlotSyscall is the LSTAR entry: out to SyscallPort, then sysretq.
	SlotSyscall = 0
	// SlotIret is iretq: the host points RSP at a five-word frame
	// (RIP, CS, RFLAGS, RSP, SS) and RIP here to enter ring 3.
	SlotIret = 1
	// SlotIretFlush reloads CR3 (flushing the TLB) and then does what
	// SlotIret does.
	SlotIretFlush = 2
	// slotException0 is the slot of vector 0; vector v is at
	// slotException0+v.
	slotException0 = 3
	// NumSlots is the number of slots.
	NumSlots = slotException0 + arch.NumExceptions
)

// CodeSize is the size of the trap code that Code returns.
const CodeSize = NumSlots * SlotSize

// Offsets inside slots.
const (
	// SyscallOutOffset is the offset of the out in SlotSyscall; KVM
	// reports RIP there on the syscall exit.
	SyscallOutOffset = 0
	// SysretOffset is the offset of the sysretq after it.
	SysretOffset = 2
)

// SlotException returns the slot of exception vector v.
func SlotException(v arch.Vector) int { return slotException0 + int(v) }

// ExceptionOutOffset is the offset of the out in v's slot: after one push
// (the vector) when the CPU pushed an error code, after two otherwise.
func ExceptionOutOffset(v arch.Vector) int {
	if v.HasErrorCode() {
		return 2
	}
	return 4
}

// ExceptionOfSlot returns the vector whose slot holds offset off of the
// code, and false when off is not in an exception slot.
func ExceptionOfSlot(off uint64) (arch.Vector, bool) {
	s := off / SlotSize
	if s < slotException0 || s >= NumSlots {
		return 0, false
	}
	return arch.Vector(s - slotException0), true
}

// trapCode is the assembly symbol holding the slots; it is never called.
func trapCode()

// codeStart returns trapCode's address.
func codeStart() *byte

// Code returns a copy of the trap code, CodeSize bytes, to be placed at a
// page-aligned guest address (the slots are position independent).
func Code() []byte {
	return append([]byte(nil), unsafe.Slice(codeStart(), CodeSize)...)
}

// endMarker returns the byte after the last slot (int3 if no slot grew).
func endMarker() byte { return unsafe.Slice(codeStart(), CodeSize+1)[CodeSize] }
