package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// Group stop (Linux: kernel/signal.c:do_signal_stop()): a stop signal's
// default action stops every thread of the group; each thread stops when
// it next passes through signal delivery, and the last one to stop tells
// the parent (CLD_STOPPED). SIGCONT ends the stop and tells the parent
// (CLD_CONTINUED). A stopped thread is outside Switch: it holds no vCPU.

// initiateGroupStopLocked starts a group stop for sig.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) initiateGroupStopLocked(sig unix.Signal) {
	if tg.groupStopPending || tg.groupStopped {
		return
	}
	tg.mu.Lock()
	if tg.exiting {
		tg.mu.Unlock()
		return
	}
	tg.groupStopPending = true
	tg.groupStopSignal = sig
	tg.groupStopRemaining = len(tg.tasks)
	tg.contCh = make(chan struct{})
	for _, t := range tg.tasks {
		t.groupStopped = false
		t.wakeInterrupt()
	}
	tg.mu.Unlock()
}

// doGroupStopLocked stops the calling thread for the pending group stop
// and waits until the stop ends. It returns with the siglock released.
//
// Preconditions: the siglock (h) is held; tg.groupStopPending.
func (t *Task) doGroupStopLocked(h *SignalHandlers) {
	tg := t.tg
	t.groupStopped = true
	tg.groupStopRemaining--
	last := tg.groupStopRemaining <= 0
	if last {
		tg.groupStopPending = false
		tg.groupStopped = true
	}
	sig := tg.groupStopSignal
	cont := tg.contCh
	h.mu.Unlock()
	if last {
		tg.notifyParentStopped(sig)
	}
	counted := false
	for {
		// A traced thread reports the group stop to its tracer, which
		// decides when it runs again (ptrace(2) "Group-stop").
		if t.ptraceGroupStop(sig, cont) {
			return
		}
		if c := t.k.cpu(t.lastCPU); c != nil && !counted {
			c.stops[StopGroup].Add(1)
			c.leave(t, CPUIdle)
			counted = true
		}
		select {
		case <-cont:
			return
		case <-t.interruptCh:
			// Only SIGKILL ends a stopped thread's wait; other signals
			// stay pending until SIGCONT. A tracer attaching turns the
			// group stop into a ptrace-stop (Linux: ptrace_attach()
			// with JOBCTL_TRAP_STOP).
			if t.killed.Load() {
				return
			}
		}
	}
}

// endGroupStopLocked ends a group stop (SIGCONT). It reports whether the
// group had stopped completely, in which case the parent is told.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) endGroupStopLocked() bool {
	if !tg.groupStopPending && !tg.groupStopped {
		return false
	}
	wasStopped := tg.groupStopped
	tg.groupStopPending = false
	tg.groupStopped = false
	if tg.contCh != nil {
		close(tg.contCh)
		tg.contCh = nil
	}
	tg.mu.Lock()
	for _, t := range tg.tasks {
		t.groupStopped = false
	}
	tg.mu.Unlock()
	return wasStopped
}

// groupStopLeave accounts for a thread that exits during a pending group
// stop without having stopped.
func (t *Task) groupStopLeave() {
	h := t.sigLock()
	tg := t.tg
	var last bool
	var sig unix.Signal
	if tg.groupStopPending && !t.groupStopped {
		tg.groupStopRemaining--
		if tg.groupStopRemaining <= 0 {
			tg.groupStopPending = false
			tg.groupStopped = true
			last = true
			sig = tg.groupStopSignal
		}
	}
	h.mu.Unlock()
	if last {
		tg.notifyParentStopped(sig)
	}
}

// tracedLocked reports whether the group is traced, in which case ignored
// signals are still queued so that the tracer sees them (ptrace(2)).
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) tracedLocked() bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, t := range tg.tasks {
		if t.isTraced.Load() {
			return true
		}
	}
	return false
}

// notifyParentStopped records the stop for the parent's wait(WUNTRACED)
// and sends it SIGCHLD with CLD_STOPPED unless it set SA_NOCLDSTOP
// (Linux: kernel/signal.c:do_notify_parent_cldstop()).
func (tg *ThreadGroup) notifyParentStopped(sig unix.Signal) {
	k := tg.k
	k.mu.Lock()
	parent := tg.parent
	tg.stopReport = sig
	tg.contReport = false
	k.mu.Unlock()
	if parent == nil {
		return
	}
	tg.sendCldStop(parent, arch.CLD_STOPPED, int32(sig))
}

// notifyParentContinued records the continuation for wait(WCONTINUED) and
// sends SIGCHLD with CLD_CONTINUED.
func (tg *ThreadGroup) notifyParentContinued() {
	k := tg.k
	k.mu.Lock()
	parent := tg.parent
	tg.contReport = true
	tg.stopReport = 0
	k.mu.Unlock()
	if parent == nil {
		return
	}
	tg.sendCldStop(parent, arch.CLD_CONTINUED, int32(unix.SIGCONT))
}

func (tg *ThreadGroup) sendCldStop(parent *ThreadGroup, code int32, status int32) {
	h := parent.lockSignals()
	a := h.actions[unix.SIGCHLD-1]
	h.mu.Unlock()
	if a.Flags&saNoCldStop == 0 {
		info := &arch.SignalInfo{Signo: int32(unix.SIGCHLD), Code: code}
		info.SetPid(tg.tgid)
		info.SetUid(tg.uid())
		info.SetStatus(status)
		parent.SendSignal(info)
	}
	parent.childWaiters.Notify()
}

// uid returns the real UID of the group's leader (or any thread).
func (tg *ThreadGroup) uid() uint32 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if l := tg.tasks[tg.tgid]; l != nil {
		return l.creds.RealUID
	}
	for _, t := range tg.tasks {
		return t.creds.RealUID
	}
	return tg.lastUID
}
