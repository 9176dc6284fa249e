package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// sigLock locks and returns the signal handler table of the task's
// group, whose mutex protects all signal state (Linux: lock_task_sighand(),
// which retries when exec swaps the table).
func (t *Task) sigLock() *SignalHandlers {
	for {
		h := t.tg.handlers.Load()
		h.mu.Lock()
		if t.tg.handlers.Load() == h {
			return h
		}
		h.mu.Unlock()
	}
}

// setSigMaskLocked changes the blocked set; SIGKILL and SIGSTOP are never
// blocked. Unblocking a pending signal wakes the task.
//
// Preconditions: the siglock is held.
func (t *Task) setSigMaskLocked(m SignalSet) {
	m &^= unblockable
	old := t.sigMask
	t.sigMask = m
	if (t.pending.set|t.tg.pending.set)&old&^m != 0 {
		t.wakeInterrupt()
	}
}

// hasDeliverableSignal reports whether a signal the task does not block is
// pending for it or its group.
func (t *Task) hasDeliverableSignal() bool {
	h := t.sigLock()
	defer h.mu.Unlock()
	return t.hasDeliverableSignalLocked()
}

// Preconditions: the siglock is held.
func (t *Task) hasDeliverableSignalLocked() bool {
	if (t.pending.set|t.tg.pending.set)&^t.sigMask != 0 {
		return true
	}
	if t.ptInterrupt.Load() {
		return true
	}
	return t.tg.groupStopPending && !t.groupStopped
}

// discardPendingLocked drops pending instances of s from the group and
// each of its threads.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) discardPendingLocked(s SignalSet) {
	tg.pending.discard(s)
	tg.mu.Lock()
	for _, t := range tg.tasks {
		t.pending.discard(s)
	}
	tg.mu.Unlock()
}

// ignoredLocked reports whether sig would be ignored by the group: its
// action is SIG_IGN, or SIG_DFL with a default of ignoring (Linux:
// kernel/signal.c:sig_task_ignored()). Blocked signals are queued anyway
// by the caller.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) ignoredLocked(h *SignalHandlers, sig unix.Signal) bool {
	a := h.actions[sig-1]
	if a.Handler == sigIGN {
		return sig != unix.SIGKILL && sig != unix.SIGSTOP
	}
	return a.Handler == sigDFL && defaultActionOf(sig) == actIgnore
}

// SendSignal sends a thread-directed signal to t (tkill, tgkill, faults).
func (t *Task) SendSignal(info *arch.SignalInfo) error {
	return t.k.sendSignal(t, t.tg, info, false)
}

// SendSignal sends a process-directed signal to tg (kill).
func (tg *ThreadGroup) SendSignal(info *arch.SignalInfo) error {
	return tg.k.sendSignal(nil, tg, info, true)
}

// sendSignal queues info for target (thread-directed) or tg
// (process-directed) and wakes a thread to handle it (Linux:
// kernel/signal.c:__send_signal_locked() and complete_signal()).
func (k *Kernel) sendSignal(target *Task, tg *ThreadGroup, info *arch.SignalInfo, group bool) error {
	sig := unix.Signal(info.Signo)
	if sig < 1 || sig > numSignals {
		return unix.EINVAL
	}
	h := tg.lockSignals()
	if tg.exiting && sig != unix.SIGKILL {
		h.mu.Unlock()
		return nil
	}
	notifyCont := tg.prepareSignalLocked(sig)
	if sig == unix.SIGKILL {
		h.mu.Unlock()
		tg.exitGroup(ExitStatus{Signal: unix.SIGKILL})
		return nil
	}
	deliver := true
	var blocked bool
	if target != nil {
		blocked = (target.sigMask | target.realBlocked).Has(sig)
	} else {
		blocked = tg.allBlockLocked(sig)
	}
	if !blocked && tg.ignoredLocked(h, sig) && !tg.tracedLocked() {
		deliver = false
	}
	if deliver {
		var queued bool
		if group {
			queued = tg.pending.add(info)
		} else {
			queued = target.pending.add(info)
		}
		if queued {
			if w := tg.pickWakeeLocked(target, sig); w != nil {
				w.wakeInterrupt()
			}
		}
	}
	h.mu.Unlock()
	if notifyCont {
		tg.notifyParentContinued()
	}
	return nil
}

// lockSignals locks the group's siglock.
func (tg *ThreadGroup) lockSignals() *SignalHandlers {
	for {
		h := tg.handlers.Load()
		h.mu.Lock()
		if tg.handlers.Load() == h {
			return h
		}
		h.mu.Unlock()
	}
}

// allBlockLocked reports whether every thread blocks sig.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) allBlockLocked(sig unix.Signal) bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, t := range tg.tasks {
		if !(t.sigMask | t.realBlocked).Has(sig) {
			return false
		}
	}
	return len(tg.tasks) > 0
}

// pickWakeeLocked chooses the thread that will handle a new signal: the
// target of a thread-directed one, else the leader or any thread that does
// not block it (Linux: complete_signal()).
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) pickWakeeLocked(target *Task, sig unix.Signal) *Task {
	if target != nil {
		if target.sigMask.Has(sig) {
			return nil
		}
		return target
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if l := tg.tasks[tg.tgid]; l != nil && !l.sigMask.Has(sig) {
		return l
	}
	for _, t := range tg.tasks {
		if !t.sigMask.Has(sig) {
			return t
		}
	}
	return nil
}

// prepareSignalLocked applies the side effects of stop and continue
// signals at generation time (Linux: kernel/signal.c:prepare_signal()).
// It reports whether the parent must be told the group continued.
//
// Preconditions: the siglock is held.
func (tg *ThreadGroup) prepareSignalLocked(sig unix.Signal) bool {
	switch {
	case stopSignals.Has(sig):
		tg.discardPendingLocked(SignalSetOf(unix.SIGCONT))
	case sig == unix.SIGCONT:
		tg.discardPendingLocked(stopSignals)
		return tg.endGroupStopLocked()
	}
	return false
}

// forceSignal delivers a synchronous signal caused by the task's own
// instruction: if it is blocked or ignored it is unblocked and its action
// reset, so that it cannot be lost (Linux: kernel/signal.c:
// force_sig_info_to_task()).
func (t *Task) forceSignal(sig unix.Signal, code int32, addr uint64) taskRunState {
	info := &arch.SignalInfo{Signo: int32(sig), Code: code}
	switch sig {
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGILL, unix.SIGFPE, unix.SIGTRAP:
		if code != siKernel {
			info.SetAddr(addr)
		}
	}
	if sig == unix.SIGKILL {
		t.tg.exitGroup(ExitStatus{Signal: unix.SIGKILL})
		return exiting{}
	}
	t.forceSignalInfo(info)
	return deliverSignals{}
}

// forceSignalInfo queues info for the task as forceSignal does: the
// signal is unblocked, and its action reset to the default if it was
// ignored or blocked.
func (t *Task) forceSignalInfo(info *arch.SignalInfo) {
	sig := unix.Signal(info.Signo)
	h := t.sigLock()
	a := &h.actions[sig-1]
	if a.Handler == sigIGN || t.sigMask.Has(sig) {
		a.Handler = sigDFL
		t.sigMask &^= SignalSetOf(sig)
	}
	t.pending.add(info)
	h.mu.Unlock()
}

// dequeueSignalLocked takes the next deliverable signal, thread-directed
// ones first (Linux: kernel/signal.c:dequeue_signal()).
//
// Preconditions: the siglock is held.
func (t *Task) dequeueSignalLocked(mask SignalSet) *arch.SignalInfo {
	if sig := t.pending.next(mask); sig != 0 {
		return t.pending.take(sig)
	}
	if sig := t.tg.pending.next(mask); sig != 0 {
		return t.tg.pending.take(sig)
	}
	return nil
}

// deliverSignals acts on what is pending before the task returns to user
// code: SIGKILL, group stops, signal handlers and default actions, and
// the restart of an interrupted system call (Linux: arch/x86/kernel/
// signal.c:arch_do_signal_or_restart() and kernel/signal.c:get_signal()).
type deliverSignals struct{}

func (deliverSignals) execute(t *Task) taskRunState {
	for {
		if t.killed.Load() {
			return exiting{}
		}
		if t.takePtraceInterrupt() {
			// PTRACE_INTERRUPT or a new seized tracee's first stop.
			t.ptraceTrapStop()
			continue
		}
		h := t.sigLock()
		if t.tg.groupStopPending && !t.groupStopped {
			t.doGroupStopLocked(h) // unlocks
			continue
		}
		info := t.dequeueSignalLocked(t.sigMask)
		h.mu.Unlock()
		if info == nil {
			break
		}
		sig := unix.Signal(info.Signo)
		if sig != unix.SIGKILL {
			// The tracer sees every signal first (ptrace(2)
			// "Signal-delivery-stop").
			var ok bool
			if info, ok = t.ptraceSignalStop(info); !ok {
				return exiting{}
			}
			if info == nil {
				continue
			}
			sig = unix.Signal(info.Signo)
		}
		if c := t.k.cpu(t.lastCPU); c != nil {
			c.signals.Add(1)
		}
		h = t.sigLock()
		act := h.actions[sig-1]
		switch {
		case sig == unix.SIGKILL:
			h.mu.Unlock()
			t.tg.exitGroup(ExitStatus{Signal: unix.SIGKILL})
			return exiting{}
		case act.Handler == sigIGN:
			h.mu.Unlock()
			continue
		case act.Handler == sigDFL:
			switch defaultActionOf(sig) {
			case actIgnore, actCont:
				h.mu.Unlock()
				continue
			case actStop:
				// TODO(ringbox): Linux discards SIGTSTP, SIGTTIN and
				// SIGTTOU for an orphaned process group.
				t.tg.initiateGroupStopLocked(sig)
				h.mu.Unlock()
				continue
			}
			h.mu.Unlock()
			// Terminate or core: the whole group dies with the signal.
			// ringbox writes no core files, so WCOREDUMP stays clear.
			t.groupExit(ExitStatus{Signal: sig})
			return exiting{}
		}
		// A handler.
		t.handleRestartForHandler(act)
		frameMask := t.sigMask
		if t.restoreMask {
			frameMask = t.savedMask
			t.restoreMask = false
		}
		newMask := t.sigMask | act.Mask
		if act.Flags&saNoDefer == 0 {
			newMask |= SignalSetOf(sig)
		}
		if act.Flags&saResetHand != 0 {
			h.actions[sig-1].Handler = sigDFL
			h.actions[sig-1].Flags &^= saSigInfo
		}
		h.mu.Unlock()
		if err := t.setupSignalFrame(info, act, frameMask); err != nil {
			t.log.Debug("cannot write signal frame; SIGSEGV", zapSignal(sig))
			return t.forceSigsegv(sig)
		}
		h = t.sigLock()
		t.setSigMaskLocked(newMask)
		h.mu.Unlock()
		// A handler entered while single-stepping stops at its first
		// instruction (Linux: signal_setup_done() -> ptrace_notify()).
		if t.stepping() {
			if r, ok := t.ptraceStop(StopSingleStep, int(unix.SIGTRAP), &arch.SignalInfo{Signo: int32(unix.SIGTRAP), Code: int32(unix.SIGTRAP)}); ok {
				t.applyResume(r)
			}
		}
	}
	t.finishRestart()
	h := t.sigLock()
	if t.restoreMask {
		t.restoreMask = false
		t.setSigMaskLocked(t.savedMask)
	}
	h.mu.Unlock()
	return runApp{}
}

// restartErrno returns the ERESTART* errno in RAX after a system call, or
// 0.
func (t *Task) restartErrno() unix.Errno {
	if !t.syscallReturned {
		return 0
	}
	switch e := unix.Errno(-int64(t.st.Regs.Rax)); e {
	case ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK:
		return e
	}
	return 0
}

// handleRestartForHandler applies the restart rules when a handler is
// about to run after an interrupted system call (Linux: arch/x86/kernel/
// signal.c:handle_signal()).
func (t *Task) handleRestartForHandler(act SigAction) {
	e := t.restartErrno()
	t.syscallReturned = false
	r := &t.st.Regs
	switch e {
	case ERESTART_RESTARTBLOCK, ERESTARTNOHAND:
		r.Rax = negErrno(unix.EINTR)
	case ERESTARTSYS:
		if act.Flags&saRestart == 0 {
			r.Rax = negErrno(unix.EINTR)
			return
		}
		fallthrough
	case ERESTARTNOINTR:
		r.Rax = r.OrigRax
		r.Rip -= 2
	}
}

// finishRestart restarts an interrupted system call when no handler ran
// (Linux: arch_do_signal_or_restart()'s tail).
func (t *Task) finishRestart() {
	e := t.restartErrno()
	t.syscallReturned = false
	r := &t.st.Regs
	switch e {
	case ERESTARTNOHAND, ERESTARTSYS, ERESTARTNOINTR:
		r.Rax = r.OrigRax
		r.Rip -= 2
	case ERESTART_RESTARTBLOCK:
		r.Rax = unix.SYS_RESTART_SYSCALL
		r.Rip -= 2
	}
}

// setupSignalFrame writes the signal frame and points the registers at
// the handler (Linux: arch/x86/kernel/signal_64.c:x64_setup_rt_frame()).
func (t *Task) setupSignalFrame(info *arch.SignalInfo, act SigAction, mask SignalSet) error {
	if act.Flags&saRestorer == 0 {
		// x86-64 has no kernel-provided return trampoline: Linux fails
		// the delivery with SIGSEGV.
		return unix.EFAULT
	}
	// A handler never starts inside an rseq critical section (Linux:
	// rseq_signal_deliver()).
	if t.rseq.addr != 0 && !t.rseqFixup() {
		return unix.EFAULT
	}
	sp := t.st.Regs.Rsp
	onAlt := false
	if act.Flags&saOnStack != 0 && t.altStack.Flags&arch.SS_DISABLE == 0 && t.altStack.Size != 0 && !t.altStack.Contains(sp) {
		sp = t.altStack.Sp + t.altStack.Size
		onAlt = true
	}
	if !t.st.FPValid {
		if err := t.ctx.PullFPState(&t.st); err != nil {
			return err
		}
	}
	f := arch.SigFrame{
		Regs:      t.st.Regs,
		FP:        t.st.FP,
		XFeatures: xfeatures(),
		Mask:      uint64(mask),
		Stack:     t.altStack,
		Info:      *info,
		Trapno:    t.trapNo,
		Err:       t.trapErr,
		Cr2:       t.trapCR2,
	}
	if onAlt || t.altStack.Contains(t.st.Regs.Rsp) {
		f.Stack.Flags |= arch.SS_ONSTACK
	}
	layout, regs := arch.BuildSigFrame(sp, onAlt, &f, act.Handler, act.Restorer, int(info.Signo))
	if err := t.CopyOut(layout.Bottom, layout.Data); err != nil {
		return err
	}
	t.st.Regs = regs
	// The handler starts with a clean FP state (Linux:
	// fpu__clear_user_states()).
	t.st.SetFP(arch.NewFPState(t.k.platform.FPStateSize()))
	if onAlt && t.altStack.Flags&arch.SS_AUTODISARM != 0 {
		t.altStack = arch.SignalStack{Flags: arch.SS_DISABLE}
	}
	return nil
}

// xfeatures is the XSAVE feature mask reported in signal frames: the user
// state components the host enabled (XCR0).
func xfeatures() uint64 { return arch.XCR0() }

// forceSigsegv handles a signal frame that cannot be written: SIGSEGV,
// with its handler reset first if SIGSEGV itself was being delivered, so
// that the task dies instead of faulting forever (Linux: kernel/signal.c:
// force_sigsegv()).
func (t *Task) forceSigsegv(sig unix.Signal) taskRunState {
	if sig == unix.SIGSEGV {
		h := t.sigLock()
		h.actions[unix.SIGSEGV-1].Handler = sigDFL
		h.mu.Unlock()
	}
	return t.forceSignal(unix.SIGSEGV, siKernel, 0)
}
