package kernel

import (
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform/memfile"
)

// syscallArgs are the six raw arguments of a system call.
type syscallArgs struct {
	a [6]uint64
}

// u returns argument i as an unsigned 64-bit value.
func (s *syscallArgs) u(i int) uint64 { return s.a[i] }

// int returns argument i as a C int (Linux truncates int arguments to their
// low 32 bits).
func (s *syscallArgs) int(i int) int { return int(int32(s.a[i])) }

// i64 returns argument i as a signed 64-bit value.
func (s *syscallArgs) i64(i int) int64 { return int64(s.a[i]) }

// syscallFn implements one system call. It returns the value for RAX or an
// error: a unix.Errno for the program, or one of the control errors below.
type syscallFn func(t *Task, a *syscallArgs) (uint64, error)

// Control errors a syscallFn returns to change the run loop's course.
var (
	// errTaskExit: the task must exit (exit, exit_group, a fatal signal).
	errTaskExit = errors.New("task exit")
	// errNoReturnValue: the call set every register itself (rt_sigreturn,
	// execve): RAX must not be overwritten and nothing restarts.
	errNoReturnValue = errors.New("registers already set")
)

// argKind says how --strace prints an argument.
type argKind uint8

const (
	argInt argKind = iota
	argHex
	argFD
	argPath    // NUL-terminated string
	argBufIn   // buffer the kernel reads; the next argument is its length
	argBufOut  // buffer the kernel writes; the result is its length
	argSignal  // signal number
	argIovecIn // iovec array the kernel reads; the next argument is its count
)

// syscallEntry is one row of the system-call table.
type syscallEntry struct {
	name string
	fn   syscallFn
	args []argKind
}

// maxSyscall bounds the table; x86-64 numbers are below it.
const maxSyscall = 512

// syscallTable is indexed by the x86-64 system call number. It is filled by
// init functions of the sys_*.go files.
var syscallTable [maxSyscall]syscallEntry

func register(nr uintptr, name string, fn syscallFn, args ...argKind) {
	if syscallTable[nr].fn != nil {
		panic(fmt.Sprintf("syscall %d (%s) registered twice", nr, name))
	}
	syscallTable[nr] = syscallEntry{name: name, fn: fn, args: args}
}

// SyscallName returns the name of system call nr, or "syscall_N".
func SyscallName(nr uint64) string {
	if nr < maxSyscall && syscallTable[nr].name != "" {
		return syscallTable[nr].name
	}
	if nr < maxSyscall {
		if n := syscallNames[nr]; n != "" {
			return n
		}
	}
	return fmt.Sprintf("syscall_%d", nr)
}

// doSyscall executes the system call in the task's registers, with the
// syscall-enter and syscall-exit stops a tracer asked for (Linux:
// kernel/entry/common.c:syscall_trace_enter() and syscall_exit_work()).
func (t *Task) doSyscall() taskRunState {
	r := &t.st.Regs
	// RAX reads -ENOSYS from the entry on, as Linux's entry code pushes
	// it into pt_regs: a tracer sees it at the enter stop, and a call
	// that is not made (nr -1, or cancelled by the tracer) returns it.
	r.Rax = negErrno(unix.ENOSYS)
	if entryMode := t.ptr.mode; entryMode == ptraceModeSyscall || entryMode == ptraceModeSysemu || entryMode == ptraceModeSysemuStep {
		// The tracer may change the number and arguments.
		if res, ok := t.ptraceStop(StopSyscallEnter, t.syscallStopCode(), nil); ok {
			if t.killed.Load() {
				return exiting{}
			}
			t.applyResume(res)
			if entryMode != ptraceModeSyscall {
				// PTRACE_SYSEMU: the system call is skipped.
				return deliverSignals{}
			}
		}
	}
	switch t.seccompEnter() {
	case seccompSkip:
		return t.syscallExitWork()
	case seccompKill:
		return exiting{}
	}
	nr := r.OrigRax
	if nr == ^uint64(0) {
		// The tracer cancelled the call: RAX keeps its value.
		return t.syscallExitWork()
	}
	args := syscallArgs{a: r.SyscallArgs()}

	var e *syscallEntry
	if nr < maxSyscall && syscallTable[nr].fn != nil {
		e = &syscallTable[nr]
	}
	var pre string
	if t.k.cfg.Strace {
		pre = t.straceEnter(nr, e, &args)
	}

	var ret uint64
	var err error
	if e != nil {
		ret, err = e.fn(t, &args)
	} else {
		err = unix.ENOSYS
		if _, loaded := t.k.unknown.LoadOrStore(nr, true); !loaded {
			t.log.Warn("unimplemented system call; returning ENOSYS (logged once per number)",
				zap.Uint64("nr", nr), zap.String("name", SyscallName(nr)))
		}
	}
	if errors.Is(err, errTaskExit) {
		if t.k.cfg.Strace {
			t.straceExit(pre, e, &args, "?", 0, false)
		}
		return exiting{}
	}
	if errors.Is(err, errNoReturnValue) {
		if t.k.cfg.Strace {
			t.straceExit(pre, e, &args, formatReturn(t.st.Regs.Rax), t.st.Regs.Rax, true)
		}
		return t.syscallExitWork()
	}
	if err != nil {
		ret = negErrno(errnoOf(err))
	}
	r.Rax = ret
	t.syscallReturned = true
	if t.k.cfg.Strace {
		t.straceExit(pre, e, &args, formatReturn(ret), ret, err == nil)
	}
	return t.syscallExitWork()
}

// syscallStopCode is the stop signal of a syscall stop: SIGTRAP, with
// 0x80 under PTRACE_O_TRACESYSGOOD.
func (t *Task) syscallStopCode() int {
	if t.ptraceOptions()&unix.PTRACE_O_TRACESYSGOOD != 0 {
		return int(unix.SIGTRAP) | 0x80
	}
	return int(unix.SIGTRAP)
}

// syscallExitWork makes the syscall-exit stop and the single-step report
// after a system call.
func (t *Task) syscallExitWork() taskRunState {
	if t.ptr.mode == ptraceModeSyscall {
		if res, ok := t.ptraceStop(StopSyscallExit, t.syscallStopCode(), nil); ok {
			if t.killed.Load() {
				return exiting{}
			}
			t.applyResume(res)
		}
	}
	if t.ptr.mode == ptraceModeStep && t.traced() {
		// Stepping over a syscall instruction traps after it (Linux:
		// arch/x86/kernel/step.c:user_single_step_report()).
		return t.forceSignal(unix.SIGTRAP, arch.TRAP_BRKPT, t.st.Regs.Rip)
	}
	return deliverSignals{}
}

// errnoOf maps a kernel error to the errno the program sees.
func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	switch {
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, ErrInterrupted):
		return ERESTARTSYS
	case errors.Is(err, ErrTimedOut):
		return unix.ETIMEDOUT
	case errors.Is(err, memfile.ErrNoMemory), errors.Is(err, errOutOfMemory):
		return unix.ENOMEM
	}
	return unix.EIO
}

func formatReturn(ret uint64) string {
	if v := int64(ret); v < 0 && v >= -4095 {
		e := unix.Errno(-v)
		return fmt.Sprintf("-1 %s (%s)", errnoName(e), e.Error())
	}
	if ret > 0xffff {
		return fmt.Sprintf("%#x", ret)
	}
	return fmt.Sprintf("%d", int64(ret))
}

func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// straceEnter formats the arguments known before the call.
func (t *Task) straceEnter(nr uint64, e *syscallEntry, a *syscallArgs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d] %s(", t.tid, SyscallName(nr))
	if e == nil {
		for i := 0; i < 6; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%#x", a.u(i))
		}
		return b.String()
	}
	for i, k := range e.args {
		if i > 0 {
			b.WriteString(", ")
		}
		switch k {
		case argBufOut:
			b.WriteString("\x00") // filled in at exit
		default:
			b.WriteString(t.formatArg(k, a, i))
		}
	}
	return b.String()
}

// straceExit completes the line with output buffers and the result.
func (t *Task) straceExit(pre string, e *syscallEntry, a *syscallArgs, result string, ret uint64, ok bool) {
	if e != nil {
		for i, k := range e.args {
			if k != argBufOut {
				continue
			}
			s := fmt.Sprintf("%#x", a.u(i))
			if ok {
				s = t.quoteUser(a.u(i), ret)
			}
			pre = strings.Replace(pre, "\x00", s, 1)
		}
	}
	t.k.cfg.StraceLogger.Info(pre + ") = " + result)
}

const straceMaxString = 32

func (t *Task) formatArg(k argKind, a *syscallArgs, i int) string {
	v := a.u(i)
	switch k {
	case argInt:
		return fmt.Sprintf("%d", int64(v))
	case argFD:
		return fmt.Sprintf("%d", int32(v))
	case argSignal:
		if v >= 1 && v <= numSignals {
			if n := unix.SignalName(unix.Signal(v)); n != "" {
				return n
			}
		}
		return fmt.Sprintf("%d", int64(v))
	case argPath:
		s, err := t.CopyInString(v, 4096)
		if err != nil {
			return fmt.Sprintf("%#x", v)
		}
		return fmt.Sprintf("%q", s)
	case argBufIn:
		if i+1 < 6 {
			return t.quoteUser(v, a.u(i+1))
		}
	case argIovecIn:
		return fmt.Sprintf("%#x", v)
	}
	return fmt.Sprintf("%#x", v)
}

// quoteUser formats up to straceMaxString bytes of user memory.
func (t *Task) quoteUser(addr, n uint64) string {
	m := n
	if m > straceMaxString {
		m = straceMaxString
	}
	buf := make([]byte, m)
	if err := t.CopyIn(addr, buf); err != nil {
		return fmt.Sprintf("%#x", addr)
	}
	s := fmt.Sprintf("%q", buf)
	if n > m {
		s += "..."
	}
	return s
}
