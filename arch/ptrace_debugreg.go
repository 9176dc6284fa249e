package arch

import "golang.org/x/sys/unix"

// The debug registers as ptrace(2) shows them in struct user's u_debugreg
// (Linux: arch/x86/kernel/ptrace.c:ptrace_get_debugreg(),
// ptrace_set_debugreg(), ptrace_write_dr7(), and the hardware-breakpoint
// checks of arch/x86/kernel/hw_breakpoint.c they reach).
//
// State.DebugRegs holds, by index:
//   - 0-3: the breakpoint addresses, as written;
//   - 4, 5: unused (DR4 and DR5 do not exist for ptrace);
//   - 6: DR6 in Linux's "positive polarity" (thread.virtual_dr6): the
//     value ptrace shows XOR DR6Reserved, so that the zero value is a
//     thread that has seen no debug exception, which reads as DR6Reserved;
//   - 7: DR7 exactly as the tracer wrote it, reserved bits
//     (DR_CONTROL_RESERVED) included: Linux ignores them when it decodes
//     the breakpoints but stores and shows them.
//
// Linux keeps, per breakpoint, a perf event that exists from the first
// write to DRn, or from the first DR7 write that enables it, and
// validates that event's address, length and type on every later write
// even while it is disabled. State has no room for that, so a breakpoint
// "exists" here while its address is non-zero or DR7 enables it, and its
// length and type are DR7's.
//
// TODO: this differs from Linux for a breakpoint whose address was
// written as 0, or that DR7 enabled and then disabled with a 0 address
// (Linux: it exists and DR7's fields for it are validated; here they are
// not), and for an address written after DR7 set the fields of its
// disabled slot (Linux validates that address as a 1-byte breakpoint's,
// here with DR7's length).

// NumBreakpoints is the number of address breakpoints, DR0-DR3 (Linux:
// HBP_NUM).
const NumBreakpoints = 4

// DR6 and DR7 fields (Intel SDM Vol. 3, 18.2; Linux:
// arch/x86/include/uapi/asm/debugreg.h).
const (
	// DR6TrapBits are B0-B3: which breakpoint fired.
	DR6TrapBits     = 0xf
	dr7EnableBits   = 0x3 // L and G of one breakpoint, at 2*n
	dr7ControlShift = 16  // RW of breakpoint n at 16+4n, LEN at 18+4n
	dr7ControlBits  = 0xf
	dr7RWExecute    = 0x0
	dr7RWIO         = 0x2
)

// peekDebugReg is PTRACE_PEEKUSER of u_debugreg[n].
func peekDebugReg(st *State, n int) uint64 {
	switch {
	case n < NumBreakpoints, n == 7:
		return st.DebugRegs[n]
	case n == 6:
		return st.DebugRegs[6] ^ DR6Reserved
	}
	return 0 // DR4, DR5
}

// pokeDebugReg is PTRACE_POKEUSER of u_debugreg[n]: EIO for DR4 and DR5,
// EINVAL for a breakpoint address or a DR7 that Linux's hardware
// breakpoint layer refuses, any value for DR6.
func pokeDebugReg(st *State, n int, val uint64) error {
	switch {
	case n < NumBreakpoints:
		length, rw := uint64(1), uint64(1) // a new breakpoint: 1-byte write
		if bpExists(st.DebugRegs, n) {
			length, rw = dr7Slot(st.DebugRegs[7], n)
		}
		if !bpValid(val, length, rw) {
			return unix.EINVAL
		}
	case n == 6:
		val ^= DR6Reserved
	case n == 7:
		for i := 0; i < NumBreakpoints; i++ {
			enabled := val>>(2*i)&dr7EnableBits != 0
			if !enabled && !bpExists(st.DebugRegs, i) {
				continue
			}
			length, rw := dr7Slot(val, i)
			if !bpValid(st.DebugRegs[i], length, rw) {
				return unix.EINVAL
			}
		}
	default:
		return unix.EIO
	}
	if st.DebugRegs[n] != val {
		st.DebugRegs[n] = val
		st.DebugDirty = true
	}
	return nil
}

// bpExists reports whether Linux would hold a breakpoint for slot n; see
// the file comment for how closely.
func bpExists(dr [8]uint64, n int) bool {
	return dr[n] != 0 || dr[7]>>(2*n)&dr7EnableBits != 0
}

// dr7Slot decodes breakpoint n of dr7: its length in bytes and its RW
// field (00 execute, 01 write, 10 I/O, 11 read/write). LEN encodes 1, 2,
// 8 and 4 bytes as 00, 01, 10, 11.
func dr7Slot(dr7 uint64, n int) (length, rw uint64) {
	ctl := dr7 >> (dr7ControlShift + 4*n) & dr7ControlBits
	return [4]uint64{1, 2, 8, 4}[ctl>>2], ctl & 3
}

// bpValid reports whether Linux accepts a ptrace breakpoint at addr of
// the given length and RW type (Linux: arch/x86/kernel/hw_breakpoint.c:
// arch_bp_generic_fields(), hw_breakpoint_arch_parse(),
// arch_check_bp_in_kernelspace(); ptrace breakpoints exclude the kernel):
// execute breakpoints must be 1 byte long, I/O breakpoints do not exist,
// data breakpoints must be aligned to their length, and the whole range
// must be below TASK_SIZE_MAX.
func bpValid(addr, length, rw uint64) bool {
	switch rw {
	case dr7RWExecute:
		if length != 1 {
			return false
		}
	case dr7RWIO:
		return false
	default:
		if addr&(length-1) != 0 {
			return false
		}
	}
	// Linux also checks that addr+length-1 is below TASK_SIZE_MAX; with
	// addr aligned to length and TASK_SIZE_MAX page-aligned that follows.
	return addr < MaxUserAddress
}

// ActiveDR7 returns the DR7 that a platform should load for a tracee whose
// ptrace DR7 is dr7: the enable bits and the RW and LEN fields of the
// enabled breakpoints, and nothing else. Linux never loads what a tracer
// writes to DR7 as is; it programs only the breakpoints it accepted, so
// reserved bits, GD, LE/GE and the fields of disabled breakpoints that a
// tracer may store (and read back) never reach the CPU.
func ActiveDR7(dr7 uint64) uint64 {
	var out uint64
	for n := 0; n < NumBreakpoints; n++ {
		en := dr7 >> (2 * n) & dr7EnableBits
		if en == 0 {
			continue
		}
		out |= en<<(2*n) | (dr7>>(dr7ControlShift+4*n)&dr7ControlBits)<<(dr7ControlShift+4*n)
	}
	return out
}

// SetDebugStatus records the DR6 of a debug exception the tracee took, so
// that PTRACE_PEEKUSER of DR6 shows it: only the single-step bit and the
// bits of the breakpoints that fired, like Linux's virtual DR6 (Linux:
// arch/x86/kernel/traps.c:exc_debug_user(), and
// arch/x86/kernel/ptrace.c:ptrace_triggered()).
func SetDebugStatus(st *State, dr6 uint64) {
	st.DebugRegs[6] = dr6 & (DR6BS | DR6TrapBits)
}

// FlushDebugRegs drops the tracee's breakpoints and debug status, as Linux
// does at execve (Linux: arch/x86/kernel/hw_breakpoint.c:
// flush_ptrace_hw_breakpoint()). It marks the debug registers dirty when
// that changes what the platform must load.
func FlushDebugRegs(st *State) {
	if st.DebugRegs != [8]uint64{} {
		st.DebugRegs = [8]uint64{}
		st.DebugDirty = true
	}
}

// ForkDebugRegs returns the debug registers of a child created by fork or
// clone from a parent with dr: Linux copies the virtual DR6 but not the
// breakpoints (Linux: arch/x86/kernel/process.c:copy_thread() clears
// thread.ptrace_bps), so no breakpoint fires in the child.
//
// TODO: Linux also copies ptrace_dr7, so a tracer of the child reads the
// parent's DR7 although no breakpoint is armed; here the child's DR7 is 0,
// because State has no way to show a DR7 that is not loaded.
func ForkDebugRegs(dr [8]uint64) [8]uint64 {
	return [8]uint64{6: dr[6]}
}
