package guest

import (
	"encoding/binary"

	"github.com/ringbox/ringbox/arch"
)

// Segment selectors of the GDT, matching Linux's (arch/x86/include/asm/
// segment.h) so that sysret lands on the selectors in arch.UserCS and
// arch.UserDS, which ptrace users see.
const (
	KernelCS = 0x10 // GDT entry 2, __KERNEL_CS
	KernelDS = 0x18 // GDT entry 3, __KERNEL_DS
	// GDT entry 4 (__USER32_CS) is left null: a far jump into
	// compatibility mode raises #GP instead of reaching a CSTAR entry.
	UserDS = arch.UserDS // GDT entry 5, RPL 3
	UserCS = arch.UserCS // GDT entry 6, RPL 3
	TSSSel = 0x40        // GDT entries 8 and 9 (a 16-byte system descriptor)

	// GDTEntries is the number of 8-byte GDT slots.
	GDTEntries = 10
	// GDTLimit is the GDTR limit.
	GDTLimit = GDTEntries*8 - 1
)

// STAR is the value of MSR_STAR: syscall loads CS from bits 47:32 (SS is
// CS+8); sysretq loads CS from bits 63:48 plus 16 and SS from them plus 8,
// both with RPL 3 (Intel SDM Vol. 2, SYSCALL and SYSRET). With 0x23 as the
// user base, sysretq gives CS 0x33 and SS 0x2b as in Linux.
const STAR = uint64(UserCS-16)<<48 | uint64(KernelCS)<<32

// Descriptor is an 8-byte code or data segment descriptor (Intel SDM
// Vol. 3, 3.4.5).
type Descriptor uint64

// Access-byte and flag bits of a segment descriptor.
const (
	descAccessed   = 1 << 40
	descWritable   = 1 << 41 // data: writable; code: readable
	descExecutable = 1 << 43
	descCodeData   = 1 << 44 // S: code or data, not system
	descDPLShift   = 45
	descPresent    = 1 << 47
	descLong       = 1 << 53
	descDB         = 1 << 54
	descGranular   = 1 << 55
	descLimitLow   = 0xffff
	descLimitHigh  = 0xf << 48
)

// CodeSegment64 returns a 64-bit code segment of privilege dpl. Base and
// limit are ignored in long mode; they are set as Linux sets them. The
// accessed bit is preset so the CPU never writes the GDT.
func CodeSegment64(dpl int) Descriptor {
	return Descriptor(descLimitLow | descLimitHigh | descAccessed | descWritable | descExecutable |
		descCodeData | uint64(dpl&3)<<descDPLShift | descPresent | descLong | descGranular)
}

// DataSegment returns a writable data segment of privilege dpl.
func DataSegment(dpl int) Descriptor {
	return Descriptor(descLimitLow | descLimitHigh | descAccessed | descWritable |
		descCodeData | uint64(dpl&3)<<descDPLShift | descPresent | descDB | descGranular)
}

// System descriptor types (Intel SDM Vol. 3, 3.5, table 3-2, IA-32e mode).
const (
	TypeTSSAvailable = 0x9
	TypeTSSBusy      = 0xb
	TypeInterrupt    = 0xe
)

// TSSDescriptor returns the two 8-byte GDT slots of a 64-bit TSS
// descriptor at base with the given limit (Intel SDM Vol. 3, 8.2.3). It is
// marked busy: TR is loaded by KVM_SET_SREGS, not ltr, and VM entry
// requires a busy TSS.
func TSSDescriptor(base uint64, limit uint32) [2]uint64 {
	lo := uint64(limit&0xffff) |
		(base&0xffffff)<<16 |
		uint64(TypeTSSBusy)<<40 |
		descPresent |
		uint64(limit>>16&0xf)<<48 |
		(base>>24&0xff)<<56
	return [2]uint64{lo, base >> 32}
}

// TSSSize is the size of the 64-bit TSS (Intel SDM Vol. 3, figure 8-11).
const TSSSize = 104

// TSS is the 64-bit task-state segment: stack pointers for entering ring
// 0 (RSP[0]) and the interrupt stack table.
type TSS struct {
	RSP [3]uint64
	// IST[i] is IST(i+1); a gate with IST field n switches to IST[n-1].
	IST [7]uint64
}

// Encode returns the TSS in memory layout. The I/O map base is set past
// the limit, so there is no I/O permission bitmap and ring 3 port I/O
// faults.
func (t *TSS) Encode() [TSSSize]byte {
	var b [TSSSize]byte
	for i, r := range t.RSP {
		binary.LittleEndian.PutUint64(b[4+8*i:], r)
	}
	for i, r := range t.IST {
		binary.LittleEndian.PutUint64(b[36+8*i:], r)
	}
	binary.LittleEndian.PutUint16(b[102:], TSSSize)
	return b
}

// Gate is a 64-bit IDT interrupt gate (Intel SDM Vol. 3, 6.14.1).
type Gate struct {
	Offset   uint64
	Selector uint16
	// IST is 0 to stay on the current or RSP0 stack, 1-7 for an IST.
	IST uint8
	// DPL is the highest privilege level allowed to reach the gate with
	// int n; CPU-raised exceptions ignore it.
	DPL uint8
}

// GateSize is the size of one IDT entry in long mode.
const GateSize = 16

// Encode returns the gate in memory layout. Interrupt gates (not trap
// gates) clear IF on entry.
func (g Gate) Encode() [GateSize]byte {
	lo := g.Offset&0xffff |
		uint64(g.Selector)<<16 |
		uint64(g.IST&7)<<32 |
		uint64(TypeInterrupt)<<40 |
		uint64(g.DPL&3)<<45 |
		descPresent |
		(g.Offset>>16&0xffff)<<48
	var b [GateSize]byte
	binary.LittleEndian.PutUint64(b[0:], lo)
	binary.LittleEndian.PutUint64(b[8:], g.Offset>>32)
	return b
}

// IST indexes used by the IDT: the exceptions that can arrive on a bad
// stack or at any time get their own stacks (as Linux does for #DF, NMI
// and #MC); all others come from ring 3 and use RSP0.
const (
	ISTDoubleFault  = 1
	ISTNMI          = 2
	ISTMachineCheck = 3
	NumIST          = 3
)

// ISTOf returns the IST index of vector v's gate (0 for none).
func ISTOf(v arch.Vector) uint8 {
	switch v {
	case arch.VectorDF:
		return ISTDoubleFault
	case arch.VectorNMI:
		return ISTNMI
	case arch.VectorMC:
		return ISTMachineCheck
	}
	return 0
}

// GateDPL returns the DPL of vector v's gate: 3 for the vectors a program
// may raise with an instruction (int3, into; Linux: arch/x86/kernel/
// idt.c, def_idts uses DPL3 for X86_TRAP_BP and X86_TRAP_OF), 0 for the
// rest, so that "int $n" for them raises #GP as on Linux.
func GateDPL(v arch.Vector) uint8 {
	if v == arch.VectorBP || v == arch.VectorOF {
		return 3
	}
	return 0
}

// IDTLimit is the IDTR limit: only the 32 exception vectors exist. There
// is no interrupt controller, so nothing raises a higher vector except
// "int $n", which faults on the limit (#GP) as Linux's DPL-0 gates do.
const IDTLimit = arch.NumExceptions*GateSize - 1

// IDT encodes the IDT for trap code placed at codeBase.
func IDT(codeBase uint64) []byte {
	b := make([]byte, arch.NumExceptions*GateSize)
	for v := arch.Vector(0); v < arch.NumExceptions; v++ {
		g := Gate{
			Offset:   codeBase + uint64(SlotException(v)*SlotSize),
			Selector: KernelCS,
			IST:      ISTOf(v),
			DPL:      GateDPL(v),
		}
		e := g.Encode()
		copy(b[int(v)*GateSize:], e[:])
	}
	return b
}

// GDT encodes the GDT of a vCPU whose TSS is at tssBase.
func GDT(tssBase uint64) []byte {
	b := make([]byte, GDTEntries*8)
	put := func(sel int, d uint64) { binary.LittleEndian.PutUint64(b[sel&^7:], d) }
	put(KernelCS, uint64(CodeSegment64(0)))
	put(KernelDS, uint64(DataSegment(0)))
	put(UserDS, uint64(DataSegment(3)))
	put(UserCS, uint64(CodeSegment64(3)))
	t := TSSDescriptor(tssBase, TSSSize-1)
	put(TSSSel, t[0])
	put(TSSSel+8, t[1])
	return b
}
