package kernel

import (
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// taskRunState is one state of a task's run loop (see the package doc).
type taskRunState interface {
	execute(t *Task) taskRunState
}

// run is the task goroutine's body.
func (t *Task) run() {
	// A new task goes to user mode as a return from a system call does:
	// through signal delivery first, so that a pending SIGSTOP or ptrace
	// trap stops it before its first instruction (Linux:
	// ret_from_fork -> syscall_exit_to_user_mode()).
	var s taskRunState = deliverSignals{}
	for s != nil {
		s = s.execute(t)
	}
}

// runApp switches into user code until the next event.
type runApp struct{}

func (runApp) execute(t *Task) taskRunState {
	if t.killed.Load() {
		return exiting{}
	}
	if c := t.k.cpu(t.lastCPU); c != nil {
		c.leave(t, CPUInGuest)
	}
	if t.rseq.check && !t.rseqFixup() {
		return t.forceSignal(unix.SIGSEGV, siKernel, 0)
	}
	if t.rseq.addr != 0 && t.rseq.cpu < 0 {
		t.rseqPrepare()
	}
	t.accountSystem()
	t.prepareStep()
	t.userSince.Store(t.lastAccount.UnixNano())
	ev, err := t.ctx.Switch(t.mm.as, &t.st)
	t.userSince.Store(0)
	t.finishStep()
	t.accountUser()
	t.checkCPULimit()
	if err != nil {
		if !errors.Is(err, platform.ErrContextKilled) {
			t.log.Error("switch to user code failed; killing the process", zap.Error(err))
		}
		t.tg.exitGroup(ExitStatus{Signal: unix.SIGKILL})
		return exiting{}
	}
	if ev.CPU >= 0 {
		t.lastCPU = ev.CPU
	}
	// Anything but a system call leaves user code at an arbitrary
	// instruction: an rseq critical section there must abort.
	t.rseq.check = t.rseq.addr != 0 && ev.Kind != platform.EventSyscall
	c := t.k.cpu(ev.CPU)
	if c != nil {
		c.enterKernel(t)
	}
	switch ev.Kind {
	case platform.EventSyscall:
		if c != nil {
			c.syscalls.Add(1)
		}
		return t.doSyscall()
	case platform.EventFault:
		if c != nil {
			c.faults.Add(1)
		}
		return t.handleFault(ev)
	case platform.EventException:
		if c != nil {
			c.exceptions.Add(1)
		}
		return t.handleException(ev)
	case platform.EventInterrupt:
		return deliverSignals{}
	}
	t.log.Error("unknown platform event", zap.Stringer("kind", ev.Kind))
	return runApp{}
}

// handleFault resolves a page fault, or turns it into SIGSEGV/SIGBUS.
func (t *Task) handleFault(ev platform.Event) taskRunState {
	t.trapNo, t.trapErr, t.trapCR2 = uint64(arch.VectorPF), pfErrorCode(ev), ev.Addr
	code, err := t.mm.HandleFault(ev.Addr, ev.Access)
	if err == nil {
		return runApp{}
	}
	if errors.Is(err, errOutOfMemory) {
		// Linux: mm/oom_kill.c picks a victim; the faulting process is
		// the only sensible one here.
		t.log.Warn("out of memory in page fault; killing the process", zap.Uint64("addr", ev.Addr))
		return t.forceSignal(unix.SIGKILL, 0, 0)
	}
	if errors.Is(err, errBeyondEOF) {
		return t.forceSignal(unix.SIGBUS, code, ev.Addr)
	}
	return t.forceSignal(unix.SIGSEGV, code, ev.Addr)
}

// handleException maps an exception vector to the signal Linux sends
// (Linux: arch/x86/kernel/traps.c).
func (t *Task) handleException(ev platform.Event) taskRunState {
	rip := t.st.Regs.Rip
	t.trapNo, t.trapErr = uint64(ev.Vector), ev.ErrorCode
	switch ev.Vector {
	case arch.VectorDE:
		return t.forceSignal(unix.SIGFPE, fpeIntDiv, rip)
	case arch.VectorBP:
		// do_int3_user(): SIGTRAP with SI_KERNEL.
		return t.forceSignal(unix.SIGTRAP, siKernel, 0)
	case arch.VectorDB:
		// Linux: arch/x86/kernel/traps.c:exc_debug_user() and
		// get_si_code(): single step, else a hardware breakpoint.
		code := int32(arch.TRAP_BRKPT)
		switch {
		case ev.DebugStatus&arch.DR6BS != 0:
			code = arch.TRAP_TRACE
		case ev.DebugStatus&0xf != 0:
			code = arch.TRAP_HWBKPT
		}
		arch.SetDebugStatus(&t.st, ev.DebugStatus)
		if c := t.k.cpu(t.lastCPU); c != nil && code == arch.TRAP_TRACE {
			c.stops[StopSingleStep].Add(1)
		}
		return t.forceSignal(unix.SIGTRAP, code, rip)
	case arch.VectorUD:
		return t.forceSignal(unix.SIGILL, illIllopn, rip)
	case arch.VectorGP, arch.VectorSS, arch.VectorNP, arch.VectorTS:
		// do_general_protection(): SIGSEGV with SI_KERNEL.
		return t.forceSignal(unix.SIGSEGV, siKernel, 0)
	case arch.VectorAC:
		return t.forceSignal(unix.SIGBUS, busAdraln, 0)
	case arch.VectorMF, arch.VectorXM:
		return t.forceSignal(unix.SIGFPE, 0, rip)
	case arch.VectorOF, arch.VectorBR:
		return t.forceSignal(unix.SIGSEGV, siKernel, 0)
	}
	t.log.Error("unexpected exception from user code", zap.Uint8("vector", uint8(ev.Vector)), zap.Uint64("rip", rip))
	return t.forceSignal(unix.SIGKILL, 0, 0)
}

// exiting tears the task down.
type exiting struct{}

func (exiting) execute(t *Task) taskRunState {
	// PTRACE_EVENT_EXIT: "Stop the tracee at exit" - ptrace(2), with the
	// exit status in the event message. The SIGKILL that brought the task
	// here has been consumed, as Linux dequeues it before do_exit(): the
	// task stops even then, and only a new SIGKILL ends the stop.
	t.killed.Store(false)
	select {
	case <-t.interruptCh:
	default:
	}
	t.tg.mu.Lock()
	st := t.exitStatus
	if t.tg.exiting {
		st = t.tg.status
	}
	t.tg.mu.Unlock()
	t.ptraceEvent(unix.PTRACE_EVENT_EXIT, unix.PTRACE_O_TRACEEXIT, uint64(waitStatus(st)))
	t.killed.Store(true)
	t.exit()
	return nil
}

// CPU time accounting: the time inside Switch is user time; the time
// between two Switches is system time, less the time spent blocked
// (Block adds it to blockedSince).

// accountSystem charges the time since the last Switch returned to
// system time and starts the user clock.
func (t *Task) accountSystem() {
	now := time.Now()
	if !t.lastAccount.IsZero() {
		d := now.Sub(t.lastAccount) - t.blockedSince
		if d > 0 {
			t.stime.Add(int64(d))
			t.tg.stime.Add(int64(d))
		}
	}
	t.blockedSince = 0
	t.lastAccount = now
}

// accountUser charges the time in Switch to user time.
func (t *Task) accountUser() {
	now := time.Now()
	d := now.Sub(t.lastAccount)
	t.utime.Add(int64(d))
	t.tg.utime.Add(int64(d))
	t.lastAccount = now
}

// CPUTime returns the task's user and system CPU time.
func (t *Task) CPUTime() (user, sys time.Duration) {
	return time.Duration(t.utime.Load()), time.Duration(t.stime.Load())
}

// CPUTime returns the process's user and system CPU time (its threads,
// live and dead).
func (tg *ThreadGroup) CPUTime() (user, sys time.Duration) {
	return time.Duration(tg.utime.Load()), time.Duration(tg.stime.Load())
}

// pfErrorCode is the page-fault error code of a fault event: the CPU's
// when the platform has it, else rebuilt from the access (a user-mode
// fault, as every fault the kernel handles is).
func pfErrorCode(ev platform.Event) uint64 {
	if ev.ErrorCode != 0 {
		return ev.ErrorCode
	}
	code := uint64(arch.PFUser)
	if !ev.NotPresent {
		code |= arch.PFPresent
	}
	if ev.Access&platform.Write != 0 {
		code |= arch.PFWrite
	}
	if ev.Access&platform.Execute != 0 {
		code |= arch.PFInstr
	}
	return code
}
