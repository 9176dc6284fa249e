package kernel

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// ptraceStop stops the task for its tracer and waits for a resume request
// (Linux: kernel/signal.c:ptrace_stop()). It reports false when the task
// is not traced (nothing happened). A killed task does not stop, and a
// SIGKILL ends the stop at once; callers check t.killed.
func (t *Task) ptraceStop(kind StopKind, code int, info *arch.SignalInfo) (ptraceResume, bool) {
	k := t.k
	k.mu.Lock()
	traced := t.pt.tracer != nil
	k.mu.Unlock()
	if !traced {
		return ptraceResume{}, false
	}
	if t.killed.Load() {
		return ptraceResume{}, true
	}
	// The tracer reads and writes the FP state while the task is stopped;
	// only the task's own thread can fetch it from the platform.
	if !t.st.FPValid {
		if err := t.ctx.PullFPState(&t.st); err != nil {
			t.log.Debug("cannot fetch FP state for a ptrace-stop")
		}
	}
	k.mu.Lock()
	tracer := t.pt.tracer
	if tracer == nil {
		k.mu.Unlock()
		return ptraceResume{}, false
	}
	select {
	case <-t.pt.resumeCh:
	default:
	}
	t.pt.stop = &ptraceStopState{kind: kind, code: code, info: info}
	t.pt.report = &waitReport{wstat: stopWaitStatus(code), code: arch.CLD_TRAPPED, status: int32(code)}
	t.pt.stopStart = time.Now().UnixNano()
	t.pt.stopCPU = t.lastCPU
	k.mu.Unlock()

	if c := k.cpu(t.lastCPU); c != nil {
		c.stops[kind].Add(1)
		c.leave(t, CPUIdle)
	}
	why := int32(arch.CLD_TRAPPED)
	if code>>8 == unix.PTRACE_EVENT_STOP {
		// Linux: do_jobctl_trap() notifies with CLD_STOPPED.
		why = arch.CLD_STOPPED
	}
	t.notifyTracerStop(tracer, code, why)

	for {
		select {
		case r := <-t.pt.resumeCh:
			t.noteStopLatency()
			return r, true
		case <-t.interruptCh:
			if !t.killed.Load() {
				continue
			}
			k.mu.Lock()
			t.pt.stop = nil
			if t.pt.report != nil && !t.pt.report.exited {
				t.pt.report = nil
			}
			k.mu.Unlock()
			t.noteStopLatency()
			return ptraceResume{}, true
		}
	}
}

// noteStopLatency adds the time from stop to resume to the vCPU record.
func (t *Task) noteStopLatency() {
	k := t.k
	k.mu.Lock()
	start, cpu := t.pt.stopStart, t.pt.stopCPU
	k.mu.Unlock()
	if c := k.cpu(cpu); c != nil && start != 0 {
		c.stopNanos.Add(uint64(time.Now().UnixNano() - start))
	}
}

// notifyTracerStop wakes the tracer's waits and sends it SIGCHLD with
// CLD_TRAPPED (Linux: do_notify_parent_cldstop(tsk, true, CLD_TRAPPED)).
func (t *Task) notifyTracerStop(tracer *Task, code int, why int32) {
	tg := tracer.tg
	h := tg.lockSignals()
	a := h.actions[unix.SIGCHLD-1]
	h.mu.Unlock()
	if a.Flags&saNoCldStop == 0 {
		info := &arch.SignalInfo{Signo: int32(unix.SIGCHLD), Code: why}
		info.SetPid(t.tid)
		info.SetUid(t.creds.RealUID)
		info.SetStatus(int32(code & 0x7f))
		tg.SendSignal(info)
	}
	tg.childWaiters.Notify()
}

// applyResume takes the tracer's resume request into the task's run
// state.
func (t *Task) applyResume(r ptraceResume) {
	if r.detach {
		t.ptr.mode = ptraceModeCont
		return
	}
	t.ptr.mode = r.mode
}

// ptraceEvent stops the task at a PTRACE_EVENT_* if the tracer asked for
// it with option, after storing msg for PTRACE_GETEVENTMSG (Linux:
// include/linux/ptrace.h:ptrace_event()). It reports whether the tracer
// asked for the event.
func (t *Task) ptraceEvent(event int, option uint32, msg uint64) bool {
	k := t.k
	k.mu.Lock()
	enabled := t.pt.tracer != nil && t.pt.options&option != 0
	if enabled {
		t.pt.eventMsg = msg
	}
	k.mu.Unlock()
	if !enabled {
		return false
	}
	r, ok := t.ptraceStop(StopEvent, int(unix.SIGTRAP)|event<<8, nil)
	if ok {
		t.applyResume(r)
	}
	return true
}

// ptraceTrapStop is the PTRACE_EVENT_STOP a seized tracee enters for
// PTRACE_INTERRUPT or when it starts (Linux: kernel/signal.c:
// do_jobctl_trap()).
func (t *Task) ptraceTrapStop() {
	r, ok := t.ptraceStop(StopEvent, int(unix.SIGTRAP)|unix.PTRACE_EVENT_STOP<<8, nil)
	if ok {
		t.applyResume(r)
	}
}

// takePtraceInterrupt consumes a pending PTRACE_INTERRUPT.
func (t *Task) takePtraceInterrupt() bool {
	if !t.ptInterrupt.Load() {
		return false
	}
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	pending := t.pt.interrupt && t.pt.tracer != nil
	t.pt.interrupt = false
	t.ptInterrupt.Store(false)
	return pending
}

// ptraceSignalStop is the signal-delivery-stop: the tracer sees sig and
// may deliver it, change it or suppress it (ptrace(2) "Signal-delivery-
// stop"). It returns the signal to deliver (0: none) and its siginfo.
func (t *Task) ptraceSignalStop(info *arch.SignalInfo) (*arch.SignalInfo, bool) {
	sig := unix.Signal(info.Signo)
	r, ok := t.ptraceStop(StopSignalDelivery, int(sig), info)
	if !ok {
		return info, true
	}
	if t.killed.Load() {
		return nil, false
	}
	t.applyResume(r)
	nsig := r.sig
	if nsig == 0 {
		return nil, true
	}
	if nsig != sig {
		// Linux: a changed signal gets a fresh SI_USER siginfo from the
		// tracer (kernel/signal.c:ptrace_signal()).
		n := &arch.SignalInfo{Signo: int32(nsig), Code: arch.SI_USER}
		t.k.mu.Lock()
		if tr := t.pt.tracer; tr != nil {
			n.SetPid(tr.tg.tgid)
			n.SetUid(tr.creds.RealUID)
		}
		t.k.mu.Unlock()
		info = n
	}
	// A signal the task now blocks is queued again.
	h := t.sigLock()
	if t.sigMask.Has(nsig) {
		t.pending.add(info)
		h.mu.Unlock()
		return nil, true
	}
	h.mu.Unlock()
	return info, true
}

// ptraceGroupStop reports a group stop to the tracer of a traced thread
// and waits for it to resume the thread (or, after PTRACE_LISTEN, for the
// stop to end). It reports false when the thread is not traced.
func (t *Task) ptraceGroupStop(sig unix.Signal, cont <-chan struct{}) bool {
	k := t.k
	k.mu.Lock()
	seized := t.pt.seized
	traced := t.pt.tracer != nil
	k.mu.Unlock()
	if !traced {
		return false
	}
	code := int(sig)
	if seized {
		code |= unix.PTRACE_EVENT_STOP << 8
	}
	r, ok := t.ptraceStop(StopGroup, code, nil)
	if !ok || t.killed.Load() {
		return ok
	}
	if r.detach && t.groupStopInEffect() {
		// "If the tracee was in group-stop, it stays stopped" after
		// the tracer detaches or exits: back to the plain group stop.
		return false
	}
	for r.listen {
		// PTRACE_LISTEN: stay stopped, outside any ptrace-stop, until
		// the group stop ends (SIGCONT) or PTRACE_INTERRUPT, then trap
		// again so that the tracer learns of it (ptrace(2)).
		code := 0
		select {
		case <-cont:
			code = int(unix.SIGTRAP) | unix.PTRACE_EVENT_STOP<<8
			cont = nil
		case <-t.interruptCh:
			if t.killed.Load() {
				t.setListening(false)
				return true
			}
			if t.takePtraceInterrupt() {
				code = int(sig) | unix.PTRACE_EVENT_STOP<<8
			}
		}
		if code == 0 {
			continue
		}
		t.setListening(false)
		nr, ok := t.ptraceStop(StopEvent, code, nil)
		if !ok {
			return true
		}
		r = nr
	}
	t.applyResume(r)
	return true
}

// setListening records PTRACE_LISTEN's state for /proc.
func (t *Task) setListening(v bool) {
	t.k.mu.Lock()
	t.pt.listening = v
	t.k.mu.Unlock()
}

// stepping reports whether the tracer asked for a single step.
func (t *Task) stepping() bool {
	return t.ptr.mode == ptraceModeStep || t.ptr.mode == ptraceModeSysemuStep
}

// prepareStep sets TF before user code runs when single-stepping.
func (t *Task) prepareStep() {
	if t.stepping() && t.st.Regs.Eflags&arch.FlagTF == 0 {
		t.st.Regs.Eflags |= arch.FlagTF
		t.ptr.forcedTF = true
	}
}

// finishStep hides the TF the kernel set (Linux: TIF_FORCED_TF).
func (t *Task) finishStep() {
	if t.ptr.forcedTF {
		t.st.Regs.Eflags &^= arch.FlagTF
		t.ptr.forcedTF = false
	}
}

// groupStopInEffect reports whether the task's group is (being) stopped.
func (t *Task) groupStopInEffect() bool {
	h := t.sigLock()
	defer h.mu.Unlock()
	return t.tg.groupStopped || t.tg.groupStopPending
}
