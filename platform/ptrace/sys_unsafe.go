package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// The host requests the platform makes, as thin typed wrappers. ptrace
// requests on a stopped tracee do not block, so they go through
// RawSyscall and skip the Go scheduler's bookkeeping; wait4 blocks and
// goes through Syscall so the runtime can hand the P to another thread.
//
// Every ptrace request must come from the tracer thread - ptrace(2): "a
// tracee is attached to a tracer ... the tracer is a thread" - which is why
// callers run on goroutines locked to their OS thread.

// tid is a host thread id (of a stub thread or of the stub's leader).
type tid int32

func ptraceRaw(req int, t tid, addr, data uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(t), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ptraceGetRegs is PTRACE_GETREGS: arch.Registers is struct
// user_regs_struct (tested in package arch).
func ptraceGetRegs(t tid, r *arch.Registers) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_GETREGS, uintptr(t), 0, uintptr(unsafe.Pointer(r)), 0, 0)
	if e != 0 {
		return fmt.Errorf("PTRACE_GETREGS of thread %d: %w", t, e)
	}
	return nil
}

// ptraceSetRegs is PTRACE_SETREGS.
func ptraceSetRegs(t tid, r *arch.Registers) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SETREGS, uintptr(t), 0, uintptr(unsafe.Pointer(r)), 0, 0)
	if e != 0 {
		return fmt.Errorf("PTRACE_SETREGS of thread %d: %w", t, e)
	}
	return nil
}

// ptraceRegset reads (get) or writes the regset note of t through buf
// (PTRACE_GETREGSET/PTRACE_SETREGSET with a struct iovec) and returns the
// size the kernel transferred.
func ptraceRegset(t tid, get bool, note int, buf []byte) (int, error) {
	req, name := unix.PTRACE_SETREGSET, "PTRACE_SETREGSET"
	if get {
		req, name = unix.PTRACE_GETREGSET, "PTRACE_GETREGSET"
	}
	iov := unix.Iovec{Base: unsafe.SliceData(buf)}
	iov.SetLen(len(buf))
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(t), uintptr(note), uintptr(unsafe.Pointer(&iov)), 0, 0)
	if e != 0 {
		return 0, fmt.Errorf("%s %#x of thread %d: %w", name, note, t, e)
	}
	return int(iov.Len), nil
}

// ptracePeekUser is PTRACE_PEEKUSER: the word at off in struct user. The
// raw system call stores the word at data (the glibc wrapper returns it).
func ptracePeekUser(t tid, off uintptr) (uint64, error) {
	var v uint64
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(t), off, uintptr(unsafe.Pointer(&v)), 0, 0)
	if e != 0 {
		return 0, fmt.Errorf("PTRACE_PEEKUSER %#x of thread %d: %w", off, t, e)
	}
	return v, nil
}

// ptracePokeUser is PTRACE_POKEUSER.
func ptracePokeUser(t tid, off uintptr, v uint64) error {
	if err := ptraceRaw(unix.PTRACE_POKEUSR, t, off, uintptr(v)); err != nil {
		return fmt.Errorf("PTRACE_POKEUSER %#x of thread %d: %w", off, t, err)
	}
	return nil
}

// siginfo is the part of siginfo_t the platform reads: si_signo, si_code
// and, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP, si_addr (Linux:
// include/uapi/asm-generic/siginfo.h, _sigfault at offset 16 on 64-bit).
type siginfo struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	Addr  uint64
	_     [128 - 24]byte
}

// ptraceGetSiginfo is PTRACE_GETSIGINFO.
func ptraceGetSiginfo(t tid, si *siginfo) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(t), 0, uintptr(unsafe.Pointer(si)), 0, 0)
	if e != 0 {
		return fmt.Errorf("PTRACE_GETSIGINFO of thread %d: %w", t, e)
	}
	return nil
}

// wait4 waits for a state change of thread t, retrying on EINTR (the Go
// runtime signals its threads). __WALL takes clone children - every stub
// thread but the leader - and lets any thread of ringbox reap a tracee of
// another (Linux: kernel/exit.c:do_wait() walks the whole thread group).
func wait4(t tid, options int) (unix.WaitStatus, tid, error) {
	var ws unix.WaitStatus
	for {
		r, _, e := unix.Syscall6(unix.SYS_WAIT4, uintptr(t), uintptr(unsafe.Pointer(&ws)), uintptr(options|unix.WALL), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		return ws, tid(r), nil
	}
}

// tgkill sends sig to thread t of process pid.
func tgkill(pid, t tid, sig unix.Signal) error {
	_, _, e := unix.RawSyscall(unix.SYS_TGKILL, uintptr(pid), uintptr(t), uintptr(sig))
	if e != 0 {
		return e
	}
	return nil
}
