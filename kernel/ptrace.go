package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// ptrace(2) inside the sandbox.
//
// A tracer is a thread; its tracees are threads. The links, the stop
// state and the reports for the tracer's wait are protected by Kernel.mu
// (Linux's tasklist_lock plays this part). A tracee in a ptrace-stop is
// blocked in ptraceStop, outside Switch: it holds no vCPU, and the tracer
// may read and write its registers (t.st) and memory until it resumes it.
//
//	           tracee                               tracer
//	  reaches a stop point
//	  (signal, syscall, event)
//	  ptraceStop: report  ---- SIGCHLD, wake ----> wait4() sees the stop
//	  blocks                                       PTRACE_GETREGS, POKE...
//	                      <--- resume request ---- PTRACE_CONT/SYSCALL/...
//	  continues with the
//	  request's mode and signal
//
// SIGKILL ends a ptrace-stop at once.

// ptraceMode is how a tracee was resumed: it decides the next stops.
type ptraceMode int

const (
	ptraceModeCont ptraceMode = iota
	ptraceModeSyscall
	ptraceModeSysemu
	ptraceModeSysemuStep
	ptraceModeStep
)

// ptraceResume is a tracer's resume request.
type ptraceResume struct {
	mode   ptraceMode
	sig    unix.Signal
	detach bool
	listen bool
}

// ptraceStopState describes a tracee's current ptrace-stop.
type ptraceStopState struct {
	kind StopKind
	// code is the stop's status byte(s): the signal, SIGTRAP|0x80 for a
	// syscall stop, SIGTRAP|event<<8 for an event stop.
	code int
	// info is the siginfo of a signal-delivery stop (GETSIGINFO).
	info *arch.SignalInfo
}

// waitReport is an event waiting for a wait(2) call.
type waitReport struct {
	// exited is an exit report; otherwise a stop.
	exited bool
	st     ExitStatus
	// wstat is the wait status word; code and status are waitid's
	// si_code and si_status.
	wstat  uint32
	code   int32
	status int32
}

// ptraceLinks are the ptrace fields of a Task, protected by Kernel.mu.
type ptraceLinks struct {
	tracer  *Task
	tracees map[*Task]struct{}
	seized  bool
	options uint32
	// stop is non-nil while the task is in a ptrace-stop.
	stop *ptraceStopState
	// report is the stop or exit the tracer has not waited for yet.
	report *waitReport
	// exitReported: the task exited while traced and the tracer has yet
	// to reap the exit.
	exitZombie bool
	// eventMsg is PTRACE_GETEVENTMSG's value.
	eventMsg uint64
	// interrupt is a pending PTRACE_INTERRUPT (seized tracees).
	interrupt bool
	// listening: resumed with PTRACE_LISTEN, still stopped.
	listening bool
	// resumeCh receives the tracer's resume request.
	resumeCh chan ptraceResume
	// stopStart is when the current stop began (UnixNano), for the
	// stop-to-resume latency.
	stopStart int64
	// stopCPU is the vCPU record the stop is counted on.
	stopCPU int
}

// ptraceRun is the tracee's own ptrace state, task goroutine only.
type ptraceRun struct {
	mode ptraceMode
	// forcedTF: the kernel set TF for single-stepping; the tracer does
	// not see it (Linux: TIF_FORCED_TF).
	forcedTF bool
}

// PTRACE options that ringbox accepts (all nine of ptrace(2)).
const ptraceOptionsMask = unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK |
	unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACEVFORKDONE |
	unix.PTRACE_O_TRACEEXIT | unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_EXITKILL |
	unix.PTRACE_O_SUSPEND_SECCOMP

// traced reports whether t has a tracer.
func (t *Task) traced() bool {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.pt.tracer != nil
}

// ptraceOptions returns the tracee's options.
func (t *Task) ptraceOptions() uint32 {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.pt.options
}

// attachLocked makes tracer trace t.
//
// Preconditions: k.mu is held; t is not traced.
func (t *Task) attachLocked(tracer *Task, seized bool, options uint32) {
	t.pt.tracer = tracer
	t.isTraced.Store(true)
	t.pt.seized = seized
	t.pt.options = options
	if tracer.pt.tracees == nil {
		tracer.pt.tracees = make(map[*Task]struct{})
	}
	tracer.pt.tracees[t] = struct{}{}
	if t.pt.resumeCh == nil {
		t.pt.resumeCh = make(chan ptraceResume, 1)
	}
}

// detachLocked ends the tracing of t. A tracee in a ptrace-stop is
// resumed with sig; one whose group is stopped goes back to the group
// stop (Linux: kernel/ptrace.c:__ptrace_detach() and ptrace_detach()).
//
// Preconditions: k.mu is held; t is traced.
func (t *Task) detachLocked(sig unix.Signal) {
	tracer := t.pt.tracer
	delete(tracer.pt.tracees, t)
	t.pt.tracer = nil
	t.isTraced.Store(false)
	t.pt.seized = false
	t.pt.options = 0
	t.pt.interrupt = false
	t.pt.report = nil
	if t.pt.stop != nil {
		t.pt.stop = nil
		t.pt.resumeCh <- ptraceResume{detach: true, sig: sig}
	}
}

// ptraceExitTracer detaches every tracee of an exiting tracer thread;
// those attached with PTRACE_O_EXITKILL get SIGKILL (Linux: kernel/
// ptrace.c:exit_ptrace()).
func (t *Task) ptraceExitTracer() {
	k := t.k
	k.mu.Lock()
	var kill []*Task
	var zombies []*Task
	for tr := range t.pt.tracees {
		if tr.pt.options&unix.PTRACE_O_EXITKILL != 0 {
			kill = append(kill, tr)
		}
		if tr.pt.exitZombie {
			zombies = append(zombies, tr)
		}
		tr.detachLocked(0)
	}
	k.mu.Unlock()
	for _, tr := range kill {
		tr.tg.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGKILL), Code: arch.SI_USER})
	}
	// A tracee that died while traced and was not reaped by the tracer
	// now goes to its real parent.
	for _, tr := range zombies {
		tr.ptraceReleaseZombie()
	}
}

// ptraceReleaseZombie finishes the exit of a traced task once the tracer
// no longer holds it: a group leader's exit is handed to the real parent.
func (t *Task) ptraceReleaseZombie() {
	k := t.k
	k.mu.Lock()
	t.pt.exitZombie = false
	tg := t.tg
	deferred := tg.exitDeferred && t.tid == tg.tgid
	if deferred {
		tg.exitDeferred = false
	}
	k.mu.Unlock()
	if deferred {
		tg.mu.Lock()
		st := tg.status
		tg.mu.Unlock()
		tg.finishExitNotify(st)
	}
}

// stopCode builds the wait status of a ptrace-stop.
func stopWaitStatus(code int) uint32 { return uint32(code)<<8 | 0x7f }
