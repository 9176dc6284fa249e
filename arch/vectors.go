package arch

// Vector is an x86 exception vector number (Intel SDM Vol. 3, 6.3.1).
type Vector uint8

// The exception vectors. Names follow Linux's arch/x86/include/asm/trapnr.h.
const (
	VectorDE  Vector = 0  // divide error
	VectorDB  Vector = 1  // debug
	VectorNMI Vector = 2  // non-maskable interrupt
	VectorBP  Vector = 3  // breakpoint (int3)
	VectorOF  Vector = 4  // overflow
	VectorBR  Vector = 5  // bound range
	VectorUD  Vector = 6  // invalid opcode
	VectorNM  Vector = 7  // device not available
	VectorDF  Vector = 8  // double fault
	VectorTS  Vector = 10 // invalid TSS
	VectorNP  Vector = 11 // segment not present
	VectorSS  Vector = 12 // stack segment fault
	VectorGP  Vector = 13 // general protection
	VectorPF  Vector = 14 // page fault
	VectorMF  Vector = 16 // x87 floating point
	VectorAC  Vector = 17 // alignment check
	VectorMC  Vector = 18 // machine check
	VectorXM  Vector = 19 // SIMD floating point
	VectorVE  Vector = 20 // virtualization exception
	VectorCP  Vector = 21 // control protection
	VectorHV  Vector = 28 // hypervisor injection
	VectorVC  Vector = 29 // VMM communication
	VectorSX  Vector = 30 // security exception

	// NumExceptions is the number of architecturally defined vectors.
	NumExceptions = 32
)

// HasErrorCode reports whether the CPU pushes an error code for v.
func (v Vector) HasErrorCode() bool {
	switch v {
	case VectorDF, VectorTS, VectorNP, VectorSS, VectorGP, VectorPF, VectorAC, VectorCP, VectorVC, VectorSX:
		return true
	}
	return false
}

// Page fault error code bits (Intel SDM Vol. 3, 4.7).
const (
	PFPresent = 1 << 0
	PFWrite   = 1 << 1
	PFUser    = 1 << 2
	PFRsvd    = 1 << 3
	PFInstr   = 1 << 4
)

// DR6 and DR7 bits used for single-step and hardware breakpoints.
const (
	DR6BS       = 1 << 14 // single step
	DR6Reserved = 0xffff0ff0
)
