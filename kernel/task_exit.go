package kernel

import (
	"encoding/binary"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// exitGroup starts the exit of the whole thread group with status (Linux:
// kernel/exit.c:do_group_exit() and zap_other_threads()). The first
// caller's status wins.
func (tg *ThreadGroup) exitGroup(st ExitStatus) {
	tg.exitGroupExcept(nil, st)
}

// groupExit is exit_group(2) or a fatal signal's default action taken by
// t itself: the other threads are killed, t goes on to exit (and may stop
// at PTRACE_EVENT_EXIT).
func (t *Task) groupExit(st ExitStatus) {
	t.tg.exitGroupExcept(t, st)
}

func (tg *ThreadGroup) exitGroupExcept(self *Task, st ExitStatus) {
	tg.mu.Lock()
	if tg.exiting {
		tg.mu.Unlock()
		return
	}
	tg.exiting = true
	tg.status = st
	others := make([]*Task, 0, len(tg.tasks))
	for _, t := range tg.tasks {
		if t != self {
			others = append(others, t)
		}
	}
	tg.mu.Unlock()
	for _, o := range others {
		o.sendKill()
	}
}

// exit ends the task (Linux: kernel/exit.c:do_exit()).
func (t *Task) exit() {
	k := t.k
	tg := t.tg
	if t.mm != nil {
		t.exitRobustList()
		t.exitPIFutexes()
		// CLONE_CHILD_CLEARTID / set_tid_address: zero the word and wake
		// a futex waiter (Linux: kernel/fork.c:mm_release()).
		if t.clearChildTID != 0 {
			var zero [4]byte
			if err := t.CopyOut(t.clearChildTID, zero[:]); err == nil {
				k.futexWake(t, t.clearChildTID, 1)
			}
		}
	}
	t.vforkRelease()
	t.groupStopLeave()
	t.ptraceExitTracer()
	if c := k.cpu(t.lastCPU); c != nil {
		c.leave(t, CPUIdle)
	}
	uid := t.creds.RealUID
	t.exitSem()
	t.release()

	tg.mu.Lock()
	delete(tg.tasks, t.tid)
	last := len(tg.tasks) == 0
	if !tg.exiting && last {
		// The last thread left with exit(2).
		tg.exiting = true
		tg.status = t.exitStatus
	}
	if last {
		tg.lastUID = uid
	}
	st := tg.status
	thr := t.exitStatus
	if tg.exiting {
		thr = st
	}
	tg.mu.Unlock()
	tg.threadsGone.Notify()

	k.mu.Lock()
	// A thread's TID is free at once; the leader's stays until the group
	// is reaped, since it is the group's PID.
	if t.tid != tg.tgid || last {
		delete(k.tasks, t.tid)
	}
	// A traced thread other than the leader reports its own exit to the
	// tracer; the leader's is reported when the whole group is dead
	// (Linux: kernel/exit.c:exit_notify(), delay_group_leader()).
	tracer := t.pt.tracer
	threadReport := tracer != nil && t.tid != tg.tgid
	if threadReport {
		t.pt.stop = nil
		t.pt.report = exitReport(thr)
		t.pt.exitZombie = true
	}
	k.mu.Unlock()
	if threadReport {
		t.notifyTracerExit(tracer, st)
	}
	t.log.Debug("task exited", zap.Stringer("status", st), zap.Bool("last", last))
	if last {
		tg.stopTimers()
		tg.exitNotify(st)
		// The group is a zombie, reaped, or waiting for its tracer:
		// its pidfds are readable.
		tg.notifyPidfds()
	}
}

// exitReport is the wait report of an exit.
func exitReport(st ExitStatus) *waitReport {
	return &waitReport{exited: true, st: st, wstat: waitStatus(st), code: cldCode(st), status: cldStatus(st)}
}

// notifyTracerExit sends the tracer SIGCHLD for a traced task's exit and
// wakes its waits.
func (t *Task) notifyTracerExit(tracer *Task, st ExitStatus) {
	info := &arch.SignalInfo{Signo: int32(unix.SIGCHLD), Code: cldCode(st)}
	info.SetPid(t.tid)
	info.SetUid(t.creds.RealUID)
	info.SetStatus(cldStatus(st))
	tracer.tg.SendSignal(info)
	tracer.tg.childWaiters.Notify()
}

// exitNotify makes the dead group a zombie, hands its children to a new
// parent and tells its own parent (Linux: kernel/exit.c:exit_notify(),
// forget_original_parent() and do_notify_parent()).
func (tg *ThreadGroup) exitNotify(st ExitStatus) {
	k := tg.k
	k.mu.Lock()
	if l := tg.leader; l != nil && l.pt.tracer != nil {
		// A traced leader: the tracer reaps the exit first; the parent
		// learns of it afterwards, unless the tracer is the parent.
		tracer := l.pt.tracer
		l.pt.stop = nil
		l.pt.report = exitReport(st)
		l.pt.exitZombie = true
		if tracer.tg != tg.parent {
			tg.exitDeferred = true
			k.mu.Unlock()
			l.notifyTracerExit(tracer, st)
			return
		}
		k.mu.Unlock()
		tracer.tg.childWaiters.Notify()
		tg.finishExitNotify(st)
		return
	}
	k.mu.Unlock()
	tg.finishExitNotify(st)
}

// finishExitNotify does the parent's part of a group's exit.
func (tg *ThreadGroup) finishExitNotify(st ExitStatus) {
	k := tg.k
	k.mu.Lock()
	isInit := k.init == tg
	k.clearPtracerExceptionsLocked(tg)
	tg.reparentChildrenLocked()
	parent := tg.parent
	var autoreap bool
	var sig unix.Signal
	if parent != nil {
		sig, autoreap = tg.exitSignalForParentLocked(parent)
	}
	if autoreap || parent == nil {
		tg.reapLocked()
	} else {
		tg.zombie = true
	}
	k.mu.Unlock()

	if parent != nil {
		if sig != 0 {
			info := &arch.SignalInfo{Signo: int32(sig)}
			info.Code = cldCode(st)
			info.SetPid(tg.tgid)
			info.SetUid(tg.lastUID)
			info.SetStatus(cldStatus(st))
			parent.SendSignal(info)
		}
		parent.childWaiters.Notify()
	}
	if isInit {
		k.initExited(st)
	}
}

// exitSignalForParentLocked decides which signal the parent gets and
// whether the child is reaped at once: a parent that ignores SIGCHLD or
// set SA_NOCLDWAIT never sees the zombie (Linux: do_notify_parent()).
//
// Preconditions: k.mu is held.
func (tg *ThreadGroup) exitSignalForParentLocked(parent *ThreadGroup) (unix.Signal, bool) {
	sig := tg.exitSignal
	if sig != unix.SIGCHLD {
		return sig, false
	}
	h := parent.lockSignals()
	a := h.actions[unix.SIGCHLD-1]
	h.mu.Unlock()
	if a.Handler == sigIGN {
		return 0, true
	}
	return sig, a.Flags&saNoCldWait != 0
}

// reparentChildrenLocked gives the group's children to the nearest
// subreaper ancestor, or to init (Linux: kernel/exit.c:find_new_reaper()).
// Children that are already zombies are announced to the new parent.
//
// Preconditions: k.mu is held.
func (tg *ThreadGroup) reparentChildrenLocked() {
	if len(tg.children) == 0 {
		return
	}
	k := tg.k
	reaper := k.init
	for a := tg.parent; a != nil; a = a.parent {
		if a.subreaper && !a.zombie && !a.reaped {
			reaper = a
			break
		}
	}
	if reaper == tg {
		reaper = nil
	}
	for c := range tg.children {
		delete(tg.children, c)
		// PR_SET_PDEATHSIG: the child learns its parent died.
		// TODO(ringbox): Linux sends it when the parent *thread* exits;
		// ringbox tracks the parent per process and sends it when the
		// parent process dies.
		c.sendPdeathSignal()
		c.parent = reaper
		if reaper == nil {
			continue
		}
		reaper.children[c] = struct{}{}
		if c.zombie {
			reaper.childWaiters.Notify()
		}
	}
	if reaper != nil {
		reaper.childWaiters.Notify()
	}
}

// sendPdeathSignal sends each thread's parent-death signal.
func (tg *ThreadGroup) sendPdeathSignal() {
	tg.mu.Lock()
	var targets []*Task
	for _, t := range tg.tasks {
		if t.pdeathSignal.Load() != 0 {
			targets = append(targets, t)
		}
	}
	tg.mu.Unlock()
	for _, t := range targets {
		info := &arch.SignalInfo{Signo: t.pdeathSignal.Load(), Code: arch.SI_USER}
		go t.SendSignal(info) // k.mu is held by the caller
	}
}

// reapLocked removes a dead group for good.
//
// Preconditions: k.mu is held.
func (tg *ThreadGroup) reapLocked() {
	k := tg.k
	tg.zombie = false
	tg.reaped = true
	if tg.parent != nil {
		delete(tg.parent.children, tg)
	}
	delete(k.tasks, tg.tgid)
	delete(k.groups, tg.tgid)
}

// cldCode is the si_code of SIGCHLD for an exit status.
func cldCode(st ExitStatus) int32 {
	switch {
	case st.Signal != 0 && st.CoreDump:
		return arch.CLD_DUMPED
	case st.Signal != 0:
		return arch.CLD_KILLED
	}
	return arch.CLD_EXITED
}

// cldStatus is si_status: the exit code or the signal.
func cldStatus(st ExitStatus) int32 {
	if st.Signal != 0 {
		return int32(st.Signal)
	}
	return int32(st.Code)
}

// waitStatus encodes st as wait(2)'s status word.
func waitStatus(st ExitStatus) uint32 {
	if st.Signal != 0 {
		s := uint32(st.Signal)
		if st.CoreDump {
			s |= 0x80
		}
		return s
	}
	return uint32(st.Code&0xff) << 8
}

// Robust futex list handling at thread exit (Linux: kernel/futex/core.c:
// exit_robust_list()). struct robust_list_head is {list.next,
// futex_offset, list_op_pending}.
const (
	robustListLimit = 2048
)

func (t *Task) exitRobustList() {
	head := t.robustList
	if head == 0 {
		return
	}
	var hb [24]byte
	if err := t.CopyIn(head, hb[:]); err != nil {
		return
	}
	next := binary.LittleEndian.Uint64(hb[0:])
	off := int64(binary.LittleEndian.Uint64(hb[8:]))
	pending := binary.LittleEndian.Uint64(hb[16:])
	for i := 0; next != head && i < robustListLimit; i++ {
		entry := next
		var nb [8]byte
		if err := t.CopyIn(entry, nb[:]); err != nil {
			return
		}
		next = binary.LittleEndian.Uint64(nb[:])
		if entry != pending {
			t.robustFutexDeath(uint64(int64(entry&^1)+off), entry&1 != 0, false)
		}
	}
	if pending != 0 {
		t.robustFutexDeath(uint64(int64(pending&^1)+off), pending&1 != 0, true)
	}
}

// vforkRelease wakes a vfork parent waiting for this child to exec or
// exit (Linux: kernel/fork.c:complete_vfork_done()).
func (t *Task) vforkRelease() {
	if t.vforkDone != nil {
		close(t.vforkDone)
		t.vforkDone = nil
	}
}
