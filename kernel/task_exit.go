package kernel

import (
	"encoding/binary"

	"go.uber.org/zap"
)

// exitGroup starts the exit of the whole thread group with status (Linux:
// kernel/exit.c:do_group_exit()). The first caller's status wins.
func (tg *ThreadGroup) exitGroup(st ExitStatus) {
	tg.mu.Lock()
	if tg.exiting {
		tg.mu.Unlock()
		return
	}
	tg.exiting = true
	tg.status = st
	others := make([]*Task, 0, len(tg.tasks))
	for _, t := range tg.tasks {
		others = append(others, t)
	}
	tg.mu.Unlock()
	for _, o := range others {
		o.sendKill()
	}
}

// exit ends the task (Linux: kernel/exit.c:do_exit()).
func (t *Task) exit() {
	// CLONE_CHILD_CLEARTID / set_tid_address: zero the word and wake a
	// futex waiter (Linux: kernel/fork.c:mm_release()).
	if t.clearChildTID != 0 && t.mm != nil {
		var zero [4]byte
		binary.LittleEndian.PutUint32(zero[:], 0)
		if err := t.CopyOut(t.clearChildTID, zero[:]); err == nil {
			t.k.futexWake(t, t.clearChildTID, 1)
		}
	}
	if c := t.k.cpu(t.lastCPU); c != nil {
		c.leave(t, CPUIdle)
	}
	tg := t.tg
	t.release()

	k := t.k
	k.mu.Lock()
	delete(k.tasks, t.tid)
	k.mu.Unlock()

	tg.mu.Lock()
	delete(tg.tasks, t.tid)
	last := len(tg.tasks) == 0
	if !tg.exiting && last {
		// The last thread left with exit(2).
		tg.exiting = true
		tg.status = t.exitStatus
	}
	st := tg.status
	tg.mu.Unlock()
	t.log.Debug("task exited", zap.Stringer("status", st), zap.Bool("last", last))
	if last {
		k.mu.Lock()
		isInit := k.init == tg
		k.mu.Unlock()
		if isInit {
			k.initExited(st)
		}
	}
}
