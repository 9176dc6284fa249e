package arch

// State is what the kernel keeps of a thread's CPU state between two
// switches into user code.
//
// The general registers are always current after Switch returns. The FP
// state is fetched lazily: while FPValid is false it lives in the platform
// (a vCPU, a stub thread) and the kernel must call the platform Context's
// PullFPState before reading FP. A kernel that changes FP sets FPDirty so
// the next Switch loads it.
type State struct {
	Regs    Registers
	FP      FPState
	FPValid bool
	FPDirty bool

	// DebugRegs are DR0-DR3, DR6 and DR7 as ptrace's u_debugreg holds them
	// (indices 4 and 5 are unused aliases), except DR6, which is kept
	// XOR DR6Reserved like Linux's virtual DR6 so that the zero value
	// reads as a fresh thread's (see ptrace_debugreg.go). Platforms load
	// DR0-DR3 and ActiveDR7(DR7). DebugDirty asks the platform to load
	// them on the next Switch.
	DebugRegs  [8]uint64
	DebugDirty bool
}

// SetFP installs a new FP state that the next Switch must load.
func (s *State) SetFP(fp FPState) {
	s.FP = fp
	s.FPValid = true
	s.FPDirty = true
}
