package ptrace

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// errStubDied reports that a stub thread (or the whole stub) exited while
// the platform was driving it.
var errStubDied = errors.New("stub thread died")

// tracee is a host thread in a ptrace-stop, traced by the calling OS
// thread: a stub process's leader (traced by its control thread) or a
// stub thread (traced by its task's thread).
type tracee struct {
	tid tid
	// regs are the thread's registers as the host holds them now: what
	// the last PTRACE_GETREGS read or the last PTRACE_SETREGS wrote.
	regs arch.Registers
}

// noSyscall is the orig_rax written with every register set. Linux
// restarts an interrupted system call on the way back to user mode when
// orig_rax is a syscall number and rax an -ERESTART* code (Linux:
// arch/x86/kernel/signal.c:arch_do_signal_or_restart()); a stub thread
// stopped in its wait loop's pause() is in exactly that state, and
// neither the program's registers nor an injected call may be rewound.
const noSyscall = ^uint64(0)

// inject runs one system call in the stopped thread from the syscall
// instruction at rip, which must be followed by int3, and returns the
// call's raw result (a negative errno on failure). The thread keeps the
// injection's registers; the next Switch sees that they differ from the
// program's and restores them. ptrace(2): the tracee is resumed with
// PTRACE_CONT and signal 0, so whatever stop it was in (syscall-stop,
// signal-delivery-stop, event-stop) delivers nothing.
func (t *tracee) inject(rip uint64, nr uintptr, args ...uint64) (uint64, error) {
	r := t.regs
	r.Rip = rip
	r.Rax = uint64(nr)
	r.OrigRax = noSyscall
	r.Cs, r.Ss = arch.UserCS, arch.UserDS
	// The program may be single-stepping itself; the injected code must
	// not.
	r.Eflags &^= arch.FlagTF
	regs := []*uint64{&r.Rdi, &r.Rsi, &r.Rdx, &r.R10, &r.R8, &r.R9}
	if len(args) > len(regs) {
		return 0, fmt.Errorf("inject syscall %d: %d arguments, at most 6", nr, len(args))
	}
	for i, a := range args {
		*regs[i] = a
	}
	if err := ptraceSetRegs(t.tid, &r); err != nil {
		return 0, fmt.Errorf("inject syscall %d: %w", nr, err)
	}
	t.regs = r
	if err := t.resumeUntilTrap(); err != nil {
		return 0, fmt.Errorf("inject syscall %d into thread %d: %w", nr, t.tid, err)
	}
	if err := ptraceGetRegs(t.tid, &t.regs); err != nil {
		return 0, err
	}
	// Only the int3 after the syscall may end an injection; a SIGTRAP
	// elsewhere (a hardware breakpoint the program set on the stub's
	// code) means the call did not run as asked.
	if want := trapAfter(rip); t.regs.Rip != want {
		return 0, fmt.Errorf("inject syscall %d into thread %d: trapped at %#x, want %#x", nr, t.tid, t.regs.Rip, want)
	}
	return t.regs.Rax, nil
}

// trapAfter is the rip at the SIGTRAP that ends an injection started at
// the syscall instruction at rip: just after its int3.
func trapAfter(rip uint64) uint64 {
	if rip == stubCloneSyscall {
		return stubCloneTrap
	}
	return rip + syscallInsnLen + 1
}

// resumeUntilTrap resumes the thread until the int3 after an injected
// syscall stops it. Stops on the way - a SIGSTOP left over from an
// Interrupt, a signal sent from outside, an event-stop - are resumed
// with the signal suppressed; a fault in the stub's own code is an error.
func (t *tracee) resumeUntilTrap() error {
	for {
		if err := ptraceRaw(unix.PTRACE_CONT, t.tid, 0, 0); err != nil {
			return fmt.Errorf("PTRACE_CONT: %w", err)
		}
		ws, _, err := wait4(t.tid, 0)
		if err != nil {
			return fmt.Errorf("wait4: %w", err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			return fmt.Errorf("%w: %s", errStubDied, describeStatus(ws))
		case !ws.Stopped():
			continue
		}
		sig := ws.StopSignal()
		switch {
		case sig == unix.SIGTRAP && stopEvent(ws) == 0:
			return nil
		case isFaultSignal(sig) && stopEvent(ws) == 0:
			return fmt.Errorf("stub code faulted: %s", describeStatus(ws))
		}
	}
}

// injectResult turns a raw system call result into an error.
func injectResult(r uint64, err error) (uint64, error) {
	if err != nil {
		return 0, err
	}
	if int64(r) < 0 && int64(r) >= -4095 {
		return 0, unix.Errno(-int64(r))
	}
	return r, nil
}

// stopEvent is the PTRACE_EVENT_* of a stop status (status>>16), 0 for
// signal-delivery-stops and syscall-stops.
func stopEvent(ws unix.WaitStatus) int { return int(ws) >> 16 }

// isFaultSignal reports whether sig is one the CPU raises synchronously.
func isFaultSignal(sig unix.Signal) bool {
	switch sig {
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGILL, unix.SIGFPE:
		return true
	}
	return false
}

// describeStatus formats a wait status for errors and logs.
func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	case ws.Stopped():
		return fmt.Sprintf("stopped by %v (event %d)", ws.StopSignal(), stopEvent(ws))
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
