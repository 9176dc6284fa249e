package arch

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// This file is the register side of ptrace(2) for a 64-bit tracee: the
// words of struct user that PTRACE_PEEKUSER and PTRACE_POKEUSER reach, and
// the rules Linux applies when a tracer writes the general registers
// (PTRACE_POKEUSER, PTRACE_SETREGS, PTRACE_SETREGSET with NT_PRSTATUS).
// The debug registers are in ptrace_debugreg.go, the regsets in
// ptrace_regset.go, PTRACE_GET_SYSCALL_INFO in ptrace_syscallinfo.go. All of
// it is pure: the kernel finds the tracee, stops it and copies the bytes;
// these functions decide what the bytes are and which errno a request
// gets.

// The layout of struct user as the kernel sees it (Linux:
// arch/x86/include/asm/user_64.h). PTRACE_PEEKUSER and PTRACE_POKEUSER take
// an offset into it.
const (
	// UserRegsOff is offsetof(struct user, regs): struct
	// user_regs_struct, the layout of Registers.
	UserRegsOff = 0
	// UserDebugRegOff is offsetof(struct user, u_debugreg): DR0-DR7, one
	// 8-byte word each.
	UserDebugRegOff = 848
	// UserAreaSize is sizeof(struct user) in the kernel. glibc's
	// <sys/user.h> ends its struct user at u_debugreg (912 bytes); the
	// kernel's has error_code and fault_address after it, and bounds
	// PTRACE_PEEKUSER with that size (Linux: arch/x86/kernel/ptrace.c:
	// arch_ptrace()).
	UserAreaSize = 928

	// RegistersSize is sizeof(struct user_regs_struct).
	RegistersSize = 27 * 8
)

// Offsets of the registers whose writes Linux checks (Linux:
// arch/x86/kernel/ptrace.c:putreg()), as offsetof(struct user_regs_struct).
const (
	regCSOff     = 17 * 8
	regEflagsOff = 18 * 8
	regSSOff     = 20 * 8
	regFSBaseOff = 21 * 8
	regGSBaseOff = 22 * 8
	regDSOff     = 23 * 8
	regESOff     = 24 * 8
	regFSOff     = 25 * 8
	regGSOff     = 26 * 8
)

// PtraceFlagMask are the RFLAGS bits a tracer may change: CF, PF, AF, ZF,
// SF, TF, DF, OF, NT, RF and AC (Linux: arch/x86/kernel/ptrace.c
// FLAG_MASK, which is FLAG_MASK_32 plus NT on 64-bit). IF, IOPL, VM, VIF,
// VIP and ID keep the tracee's values.
const PtraceFlagMask = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4000 | 0x10000 | 0x40000

// segmentRPLMask is the requested privilege level field of a selector,
// and userRPL the ring user code runs in (Linux: asm/segment.h).
const (
	segmentRPLMask = 0x3
	userRPL        = 0x3
)

// regWord returns the register at byte offset off (a multiple of 8 below
// RegistersSize) of r, in the order of struct user_regs_struct.
func regWord(r *Registers, off uint64) *uint64 {
	ptrs := [RegistersSize / 8]*uint64{
		&r.R15, &r.R14, &r.R13, &r.R12, &r.Rbp, &r.Rbx, &r.R11, &r.R10,
		&r.R9, &r.R8, &r.Rax, &r.Rcx, &r.Rdx, &r.Rsi, &r.Rdi, &r.OrigRax,
		&r.Rip, &r.Cs, &r.Eflags, &r.Rsp, &r.Ss, &r.FsBase, &r.GsBase,
		&r.Ds, &r.Es, &r.Fs, &r.Gs,
	}
	return ptrs[off/8]
}

// EncodeRegisters writes r in the layout of struct user_regs_struct into b
// (at least RegistersSize bytes): what PTRACE_GETREGS and NT_PRSTATUS
// return.
//
// TODO: Linux hides a TF that it set itself for PTRACE_SINGLESTEP
// (TIF_FORCED_TF, arch/x86/kernel/step.c) from what the tracer reads; the
// kernel must clear it from r before encoding.
func EncodeRegisters(r *Registers, b []byte) {
	for off := uint64(0); off < RegistersSize; off += 8 {
		binary.LittleEndian.PutUint64(b[off:], *regWord(r, off))
	}
}

// DecodeRegisters reads registers in the layout of struct user_regs_struct
// from b (at least RegistersSize bytes) as they are, with none of the
// checks of a tracer's write: for state that comes from a kernel, such as
// a host's PTRACE_GETREGS.
func DecodeRegisters(b []byte, r *Registers) {
	for off := uint64(0); off < RegistersSize; off += 8 {
		*regWord(r, off) = binary.LittleEndian.Uint64(b[off:])
	}
}

// PeekUser is PTRACE_PEEKUSER: the word at byte offset off of struct user.
// The registers and u_debugreg read as the tracee has them; every other
// aligned offset inside struct user reads as 0 (Linux keeps no FP or
// core-dump fields there for a live task). An unaligned offset, or one at
// or past UserAreaSize, is EIO (Linux: arch/x86/kernel/ptrace.c:
// arch_ptrace()).
func PeekUser(st *State, off uint64) (uint64, error) {
	if off%8 != 0 || off >= UserAreaSize {
		return 0, unix.EIO
	}
	switch {
	case off < RegistersSize:
		return *regWord(&st.Regs, off), nil
	case off >= UserDebugRegOff && off < UserDebugRegOff+8*8:
		return peekDebugReg(st, int(off-UserDebugRegOff)/8), nil
	}
	return 0, nil
}

// PokeUser is PTRACE_POKEUSER: it writes val to the word at byte offset
// off of struct user. Registers are checked as putReg says, debug
// registers as pokeDebugReg does. An unaligned or out-of-range offset, or
// one that is neither a register nor a debug register, is EIO (Linux:
// arch/x86/kernel/ptrace.c:arch_ptrace()).
func PokeUser(st *State, off, val uint64) error {
	if off%8 != 0 || off >= UserAreaSize {
		return unix.EIO
	}
	switch {
	case off < RegistersSize:
		return putReg(&st.Regs, off, val)
	case off >= UserDebugRegOff && off < UserDebugRegOff+8*8:
		return pokeDebugReg(st, int(off-UserDebugRegOff)/8, val)
	}
	return unix.EIO
}

// SetRegs is PTRACE_SETREGS: it writes the registers of r to st in the
// order of struct user_regs_struct, each checked as PTRACE_POKEUSER checks
// it. Like Linux (arch/x86/kernel/ptrace.c:genregs_set()), it stops at the
// first register it refuses and returns EIO, keeping the registers it
// already wrote: a tracer that sets an invalid cs has still changed r15
// through orig_rax and rip.
func SetRegs(st *State, r *Registers) error {
	var b [RegistersSize]byte
	EncodeRegisters(r, b[:])
	return setRegsPrefix(&st.Regs, b[:])
}

// setRegsPrefix writes the whole words of b to regs from r15 on, as
// PTRACE_SETREGSET with NT_PRSTATUS and a short iovec does: only the first
// len(b)/8 registers change.
func setRegsPrefix(regs *Registers, b []byte) error {
	for off := uint64(0); off+8 <= uint64(len(b)) && off < RegistersSize; off += 8 {
		if err := putReg(regs, off, binary.LittleEndian.Uint64(b[off:])); err != nil {
			return err
		}
	}
	return nil
}

// putReg writes one register as a tracer may (Linux:
// arch/x86/kernel/ptrace.c:putreg(), set_segment_reg(), set_flags()):
//   - a segment selector is truncated to 16 bits and must be null or have
//     RPL 3 (invalid_selector()); cs and ss must not be null;
//   - fs_base and gs_base must be below TASK_SIZE_MAX;
//   - RFLAGS changes only in PtraceFlagMask;
//   - every other register, orig_rax included, takes any value.
//
// TODO: Linux lets a tracer load any RPL-3 cs, 0x23 included, which puts
// the tracee in 32-bit compatibility mode; ringbox's platforms run 64-bit
// code only, so such a cs is stored and shown here but what the tracee
// then runs is up to the platform.
func putReg(regs *Registers, off, val uint64) error {
	switch off {
	case regCSOff, regSSOff, regDSOff, regESOff, regFSOff, regGSOff:
		sel := uint16(val)
		if sel != 0 && sel&segmentRPLMask != userRPL {
			return unix.EIO
		}
		if sel == 0 && (off == regCSOff || off == regSSOff) {
			return unix.EIO
		}
		val = uint64(sel)
	case regEflagsOff:
		val = regs.Eflags&^PtraceFlagMask | val&PtraceFlagMask
	case regFSBaseOff, regGSBaseOff:
		if val >= MaxUserAddress {
			return unix.EIO
		}
	}
	*regWord(regs, off) = val
	return nil
}
