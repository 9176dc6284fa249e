package ptrace

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// si_code values of hardware signals (Linux:
// include/uapi/asm-generic/siginfo.h), missing from x/sys/unix. Tested
// against the C headers.
const (
	siKernel = 0x80 // SI_KERNEL: sent by the kernel, not a specific fault

	segvMaperr = 1 // SEGV_MAPERR: address not mapped
	segvAccerr = 2 // SEGV_ACCERR: invalid permissions
	segvPkuerr = 4 // SEGV_PKUERR: protection key

	busAdraln  = 1 // BUS_ADRALN: alignment check
	busAdrerr  = 2 // BUS_ADRERR: nonexistent physical address
	busObjerr  = 3 // BUS_OBJERR: object-specific
	busMceerAR = 4 // BUS_MCEERR_AR: machine check, action required
	busMceerAO = 5 // BUS_MCEERR_AO: machine check, action optional

	trapBrkpt  = 1 // TRAP_BRKPT
	trapTrace  = 2 // TRAP_TRACE: single step
	trapHwbkpt = 4 // TRAP_HWBKPT: hardware breakpoint

	fpeIntdiv = 1 // FPE_INTDIV
	fpeIntovf = 2 // FPE_INTOVF
)

// fswES is the x87 status word's exception summary bit, set while an
// unmasked x87 exception is pending (Intel SDM Vol. 1, 8.1.3).
const fswES = 1 << 7

// decode turns a stop of t (registers already read) into an event. The
// exit reason ExitOther means the stop was not the program's: the caller
// suppresses it and runs on.
//
// Which signal the host raises for which exception is Linux's table in
// arch/x86/kernel/traps.c; the signal itself is never delivered (the
// thread resumes with signal 0): ringbox's kernel decides what the
// program sees.
func (c *context) decode(t *stubThread, ws unix.WaitStatus, regs *arch.Registers, reqs *uint64) (platform.Event, platform.ExitReason, error) {
	sig := ws.StopSignal()
	if sig == unix.SIGTRAP|0x80 {
		// PTRACE_O_TRACESYSGOOD marks syscall-stops - ptrace(2).
		if regs.Rcx != regs.Rip {
			return compatSyscall(regs)
		}
		// pt_regs at a syscall-stop has rax = -ENOSYS; the kernel
		// wants the number in both (platform.EventSyscall).
		regs.Rax = regs.OrigRax
		return platform.Event{Kind: platform.EventSyscall}, platform.ExitSyscall, nil
	}
	if stopEvent(ws) != 0 {
		// PTRACE_EVENT_STOP: a group-stop (someone stopped the stub
		// from outside) or a stray PTRACE_INTERRUPT.
		return platform.Event{}, platform.ExitOther, nil
	}
	switch sig {
	case unix.SIGSTOP:
		if c.pending.Swap(false) {
			return platform.Event{Kind: platform.EventInterrupt}, platform.ExitInterrupt, nil
		}
		return platform.Event{}, platform.ExitOther, nil
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGILL, unix.SIGFPE, unix.SIGTRAP, unix.SIGSYS:
	default:
		return platform.Event{}, platform.ExitOther, nil
	}
	var si siginfo
	if err := ptraceGetSiginfo(t.tid, &si); err != nil {
		return platform.Event{}, 0, err
	}
	*reqs++
	if si.Code <= 0 {
		// SI_USER, SI_TKILL, SI_QUEUE...: sent by a process, not
		// raised by the CPU.
		return platform.Event{}, platform.ExitOther, nil
	}
	exc := func(v arch.Vector) (platform.Event, platform.ExitReason, error) {
		return platform.Event{Kind: platform.EventException, Vector: v}, platform.ExitException, nil
	}
	switch sig {
	case unix.SIGSEGV:
		if si.Code == siKernel {
			// Linux: exc_general_protection() - #GP from user mode
			// (privileged instruction, non-canonical address).
			// TODO: the host keeps the error code in
			// thread.error_code, which ptrace does not expose; Linux
			// shows it in the signal frame's sigcontext.err.
			return exc(arch.VectorGP)
		}
		return pageFault(regs, si), platform.ExitPageFault, nil
	case unix.SIGSYS:
		return vsyscallFault(regs, si)
	case unix.SIGBUS:
		switch si.Code {
		case busAdraln:
			return exc(arch.VectorAC)
		case busMceerAR, busMceerAO:
			return exc(arch.VectorMC)
		case siKernel:
			// Linux: exc_stack_segment() raises SIGBUS.
			return exc(arch.VectorSS)
		}
		// BUS_ADRERR, BUS_OBJERR: an access the host could not back.
		// The memory file never shrinks, so this is the host failing
		// to supply a page (out of memory); report the fault.
		ev := pageFault(regs, si)
		ev.NotPresent = false
		return ev, platform.ExitPageFault, nil
	case unix.SIGILL:
		// Linux: exc_invalid_op() - #UD.
		return exc(arch.VectorUD)
	case unix.SIGFPE:
		if si.Code == fpeIntdiv || si.Code == fpeIntovf {
			// Linux: exc_divide_error() - #DE, divide by zero or
			// quotient overflow.
			return exc(arch.VectorDE)
		}
		v, err := c.fpVector(t, reqs)
		if err != nil {
			return platform.Event{}, 0, err
		}
		return exc(v)
	default: // SIGTRAP
		if si.Code == siKernel {
			// Linux: do_int3_user() - int3 and int $3.
			return exc(arch.VectorBP)
		}
		if si.Code == trapTrace || si.Code == trapHwbkpt || si.Code == trapBrkpt {
			// Linux: exc_debug_user(); the DR6 the thread saw is the
			// virtual DR6 PTRACE_PEEKUSER returns.
			dr6, err := ptracePeekUser(t.tid, userDebugRegOff+8*6)
			if err != nil {
				return platform.Event{}, 0, err
			}
			*reqs++
			return platform.Event{Kind: platform.EventException, Vector: arch.VectorDB, DebugStatus: dr6}, platform.ExitException, nil
		}
		return platform.Event{}, platform.ExitOther, nil
	}
}

// pageFault builds the fault event of a SIGSEGV or SIGBUS. The host does
// not say which access faulted; platform.Event documents what ptrace
// reports instead, and the error code is built to match.
func pageFault(regs *arch.Registers, si siginfo) platform.Event {
	ev := platform.Event{Kind: platform.EventFault, Addr: si.Addr, NotPresent: si.Code == segvMaperr}
	switch {
	case si.Addr == regs.Rip:
		ev.Access = platform.Execute
	case ev.NotPresent:
		ev.Access = platform.Read
	default:
		// SEGV_ACCERR, SEGV_PKUERR: a mapped page refused the access.
		ev.Access = platform.Write
	}
	ev.ErrorCode = arch.PFUser
	if !ev.NotPresent {
		ev.ErrorCode |= arch.PFPresent
	}
	if ev.Access == platform.Write {
		ev.ErrorCode |= arch.PFWrite
	}
	if ev.Access == platform.Execute {
		ev.ErrorCode |= arch.PFInstr
	}
	return ev
}

// fpVector tells #MF from #XM for a floating-point SIGFPE: Linux gives
// both the same si_codes (arch/x86/kernel/traps.c:math_error()), but only
// an x87 exception leaves the status word's ES bit set.
func (c *context) fpVector(t *stubThread, reqs *uint64) (arch.Vector, error) {
	var fx [arch.FXSaveSize]byte
	if _, err := ptraceRegset(t.tid, true, unix.NT_PRFPREG, fx[:]); err != nil {
		return 0, err
	}
	*reqs++
	if binary.LittleEndian.Uint16(fx[2:])&fswES != 0 {
		return arch.VectorMF, nil
	}
	return arch.VectorXM, nil
}

// compatSyscall handles a syscall-stop that the syscall instruction did
// not cause. That instruction always leaves rcx equal to the return
// address (Intel SDM Vol. 2, SYSCALL), so rcx != rip means int $0x80 (or
// sysenter), the 32-bit entries. ringbox implements the 64-bit ABI only,
// so it behaves as Linux built without IA32 emulation, where int $0x80
// finds no gate and raises #GP with the IDT vector as error code.
//
// TODO: a program whose rcx happens to equal the address after its
// int $0x80 is reported as a 64-bit syscall; sysenter (Intel only) is
// reported at the wrong address.
func compatSyscall(regs *arch.Registers) (platform.Event, platform.ExitReason, error) {
	const intLen = 2 // cd 80
	regs.Rax = regs.OrigRax
	regs.OrigRax = noSyscall
	regs.Rip -= intLen
	const idtErr = 0x80<<3 | 2 // selector index 0x80, IDT bit
	return platform.Event{Kind: platform.EventException, Vector: arch.VectorGP, ErrorCode: idtErr}, platform.ExitException, nil
}

// vsyscallStart is the legacy vsyscall page, which the host maps in
// every process at a fixed address in the upper half (Linux:
// arch/x86/include/asm/vsyscall.h VSYSCALL_ADDR).
const vsyscallStart = 0xffffffffff600000

// sysSeccomp is SYS_SECCOMP, the si_code of a seccomp SIGSYS
// (include/uapi/asm-generic/siginfo.h; glibc does not define it, so
// TestHostOnlyEntries checks it by behaviour).
const sysSeccomp = 1

// vsyscallFault turns the SIGSYS of a call into the vsyscall page (the
// filter traps it) into the page fault a machine without that page
// raises: an instruction fetch at the called address. The host emulated
// a "ret" before the signal (emulate_vsyscall()'s do_ret); undoing it puts
// rip back at the call target and the return address back on the stack.
//
// TODO: the host overwrote rax with the vsyscall's number; Linux with
// vsyscall=none would show the program's rax.
func vsyscallFault(regs *arch.Registers, si siginfo) (platform.Event, platform.ExitReason, error) {
	if si.Code != sysSeccomp || si.Addr < vsyscallStart || si.Addr >= vsyscallStart+arch.PageSize {
		return platform.Event{}, platform.ExitOther, nil
	}
	regs.Rip = si.Addr
	regs.Rsp -= 8
	ev := platform.Event{Kind: platform.EventFault, Addr: si.Addr, Access: platform.Execute, NotPresent: true,
		ErrorCode: arch.PFUser | arch.PFInstr}
	return ev, platform.ExitPageFault, nil
}

func errorsIsESRCH(err error) bool { return errors.Is(err, unix.ESRCH) }
