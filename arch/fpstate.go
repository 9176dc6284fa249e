package arch

import "encoding/binary"

// FPState is the FP/SSE/AVX state of a thread in XSAVE layout: the legacy
// 512-byte FXSAVE area, the 64-byte XSAVE header, then the extended
// components. Its first 512 bytes are what NT_PRFPREG and PTRACE_GETFPREGS
// expose (struct user_fpregs_struct); the whole of it is NT_X86_XSTATE.
type FPState []byte

// Offsets inside the FXSAVE area (Intel SDM Vol. 1, 10.5.1).
const (
	FXSaveSize     = 512
	XSaveHeaderOff = 512
	XSaveHeaderLen = 64
	fcwOff         = 0
	mxcsrOff       = 24
	mxcsrMaskOff   = 28

	// DefaultFCW and DefaultMXCSR are the values of a fresh thread after
	// execve (Linux: fpstate_init_fx(), FNINIT and MXCSR_DEFAULT).
	DefaultFCW   = 0x37f
	DefaultMXCSR = 0x1f80

	// XFeatureMaskFPSSE marks the x87 and SSE components present in
	// XSTATE_BV.
	XFeatureMaskFPSSE = 0x3
)

// MinFPStateSize is the smallest XSAVE area: legacy area and header.
const MinFPStateSize = FXSaveSize + XSaveHeaderLen

// NewFPState returns the initial FP state of size bytes (at least
// MinFPStateSize), as a new thread after execve has it.
func NewFPState(size int) FPState {
	if size < MinFPStateSize {
		size = MinFPStateSize
	}
	s := make(FPState, size)
	s.Reset()
	return s
}

// Reset puts the state back to the values after execve.
func (s FPState) Reset() {
	clear(s)
	binary.LittleEndian.PutUint16(s[fcwOff:], DefaultFCW)
	binary.LittleEndian.PutUint32(s[mxcsrOff:], DefaultMXCSR)
	binary.LittleEndian.PutUint32(s[mxcsrMaskOff:], 0xffff)
	// XSTATE_BV: x87 and SSE in use, the rest in init state.
	binary.LittleEndian.PutUint64(s[XSaveHeaderOff:], XFeatureMaskFPSSE)
}

// MXCSR returns the SSE control and status register.
func (s FPState) MXCSR() uint32 { return binary.LittleEndian.Uint32(s[mxcsrOff:]) }

// Clone returns a copy of the state.
func (s FPState) Clone() FPState { return append(FPState(nil), s...) }
