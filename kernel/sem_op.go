package kernel

import (
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// semop(2) and semtimedop(2), and the SEM_UNDO lists (Linux: ipc/sem.c).

// semBuf is struct sembuf.
type semBuf struct {
	num uint16
	op  int16
	flg int16
}

// semQueue is one semop call blocked on a set (Linux: struct sem_queue).
// Its fields are protected by semNamespace.mu.
type semQueue struct {
	// pid is the caller's TGID, recorded as the semaphores' pid when
	// the operations complete.
	pid   int32
	sops  []semBuf
	undo  *semUndoEntry
	alter bool
	// blocking is the index of the operation that last blocked, which
	// GETNCNT and GETZCNT count (Linux: sem_queue.blocking).
	blocking int
	// done is set when another party completed the call: err is its
	// result (nil, ERANGE, EAGAIN, EIDRM).
	done bool
	err  error
	w    *Waiter
}

// complete ends a queued call with err and wakes its caller.
//
// Preconditions: semNamespace.mu is held; q has left its set's queue.
func (q *semQueue) complete(err error) {
	q.done, q.err = true, err
	q.w.notify()
}

// semUndoList is a process's SEM_UNDO adjustments (Linux: struct
// sem_undo_list). Tasks cloned with CLONE_SYSVSEM share it; it is applied
// when the last of them exits. Its fields are protected by
// semNamespace.mu.
type semUndoList struct {
	refs    int
	entries map[*semSet]*semUndoEntry
}

// semUndoEntry is a list's adjustments for one set (Linux: struct
// sem_undo): adj[i] is added to semaphore i at exit.
type semUndoEntry struct {
	list *semUndoList
	adj  []int32
}

// performLocked tries q's operations in order, all or nothing (Linux:
// perform_atomic_semop_slow()). It returns blocked when an operation
// must wait (a value too small, or a wait for zero on a non-zero value),
// EAGAIN instead when that operation has IPC_NOWAIT, and ERANGE when a
// value would exceed SEMVMX or an adjustment SEMAEM. Nothing changes
// unless it succeeds.
//
// Preconditions: semNamespace.mu is held.
func (s *semSet) performLocked(q *semQueue) (blocked bool, err error) {
	i := 0
	for ; i < len(q.sops); i++ {
		sop := q.sops[i]
		cur := s.sems[sop.num].val
		if sop.op == 0 && cur != 0 {
			break
		}
		r := cur + int32(sop.op)
		if r < 0 {
			break
		}
		if r > semVMX {
			err = unix.ERANGE
			break
		}
		if sop.flg&semUndo != 0 {
			u := q.undo.adj[sop.num] - int32(sop.op)
			if u < -semAEM-1 || u > semAEM {
				err = unix.ERANGE
				break
			}
			q.undo.adj[sop.num] = u
		}
		s.sems[sop.num].val = r
	}
	if i == len(q.sops) {
		for _, sop := range q.sops {
			s.sems[sop.num].pid = q.pid
		}
		return false, nil
	}
	if err == nil {
		q.blocking = i
		if q.sops[i].flg&unix.IPC_NOWAIT != 0 {
			err = unix.EAGAIN
		} else {
			blocked = true
		}
	}
	// Roll back what went through.
	for i--; i >= 0; i-- {
		sop := q.sops[i]
		s.sems[sop.num].val -= int32(sop.op)
		if sop.flg&semUndo != 0 {
			q.undo.adj[sop.num] += int32(sop.op)
		}
	}
	return blocked, err
}

// updateQueueLocked retries the blocked calls after the values changed,
// oldest first, completing those that can go through; calls that only
// wait for zero are tried first, and after each completed call that
// changed values the scan starts again (Linux: do_smart_update(),
// wake_const_ops() and update_queue()).
//
// Preconditions: semNamespace.mu is held.
func (s *semSet) updateQueueLocked() {
	for again := true; again; {
		again = false
		for _, alter := range []bool{false, true} {
			for i := 0; i < len(s.pending); i++ {
				q := s.pending[i]
				if q.alter != alter {
					continue
				}
				blocked, err := s.performLocked(q)
				if blocked {
					continue
				}
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				i--
				if err == nil {
					s.otime = time.Now().Unix()
				}
				q.complete(err)
				if err == nil && alter {
					again = true
					break
				}
			}
			if again {
				break
			}
		}
	}
}

// countWaitersLocked is GETNCNT (zero false) or GETZCNT (zero true): the
// blocked calls whose blocking operation on semaphore num decrements it,
// or waits for zero (Linux: count_semcnt(), the SUS-conformant count).
//
// Preconditions: semNamespace.mu is held.
func (s *semSet) countWaitersLocked(num int, zero bool) int {
	n := 0
	for _, q := range s.pending {
		sop := q.sops[q.blocking]
		if int(sop.num) == num && (sop.op == 0) == zero && sop.op <= 0 {
			n++
		}
	}
	return n
}

// undoEntryLocked returns t's undo entry for s, creating the process's
// list and the entry as needed (Linux: find_alloc_undo()). Only t's own
// goroutine sets t.semUndo.
//
// Preconditions: semNamespace.mu is held.
func (t *Task) undoEntryLocked(s *semSet) *semUndoEntry {
	if t.semUndo == nil {
		t.semUndo = &semUndoList{refs: 1, entries: make(map[*semSet]*semUndoEntry)}
	}
	l := t.semUndo
	if u, ok := l.entries[s]; ok {
		return u
	}
	u := &semUndoEntry{list: l, adj: make([]int32, len(s.sems))}
	l.entries[s] = u
	s.undos[u] = struct{}{}
	return u
}

// semTimeout is semtimedop's timeout as read from user memory.
type semTimeout struct {
	// set: a timeout was given (semop and a NULL pointer wait forever).
	set bool
	// valid is timespec64_valid() of the value; an invalid one fails
	// with EINVAL, but only after the operations are read.
	valid bool
	d     time.Duration
}

func sysSemop(t *Task, a *syscallArgs) (uint64, error) {
	return t.semTimedOp(int32(a.int(0)), a.u(1), uint32(a.u(2)), semTimeout{})
}

func sysSemtimedop(t *Task, a *syscallArgs) (uint64, error) {
	var to semTimeout
	if addr := a.u(3); addr != 0 {
		// The copy fails before anything else is checked (Linux:
		// ksys_semtimedop()).
		var b [16]byte
		if err := t.CopyIn(addr, b[:]); err != nil {
			return 0, err
		}
		sec, nsec := int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[8:]))
		to = semTimeout{set: true, valid: timespecValid(sec, nsec)}
		if to.valid {
			to.d = time.Duration(timespecNS(sec, nsec))
		}
	}
	return t.semTimedOp(int32(a.int(0)), a.u(1), uint32(a.u(2)), to)
}

// semTimedOp performs nsops operations of the sembuf array at addr on set
// id atomically, waiting until they become possible or the timeout passes
// (Linux: do_semtimedop()).
//
// A wait ends with EAGAIN at the timeout, EIDRM if the set is removed and
// EINTR on a signal: semop is never restarted, whatever SA_RESTART says
// (signal(7)).
func (t *Task) semTimedOp(id int32, addr uint64, nsops uint32, timeout semTimeout) (uint64, error) {
	// The checks in Linux's order: the count, the copy, then the
	// identifier and the timeout (do_semtimedop(), __do_semtimedop()).
	if nsops > semOPM {
		return 0, unix.E2BIG
	}
	if nsops < 1 {
		return 0, unix.EINVAL
	}
	b := make([]byte, int(nsops)*sembufSize)
	if err := t.CopyIn(addr, b); err != nil {
		return 0, err
	}
	if id < 0 || (timeout.set && !timeout.valid) {
		return 0, unix.EINVAL
	}
	q := &semQueue{pid: t.tg.tgid, sops: make([]semBuf, nsops)}
	maxNum, undo := uint16(0), false
	for i := range q.sops {
		sop := semBuf{
			num: binary.LittleEndian.Uint16(b[6*i:]),
			op:  int16(binary.LittleEndian.Uint16(b[6*i+2:])),
			flg: int16(binary.LittleEndian.Uint16(b[6*i+4:])),
		}
		q.sops[i] = sop
		maxNum = max(maxNum, sop.num)
		undo = undo || sop.flg&semUndo != 0
		q.alter = q.alter || sop.op != 0
	}

	ns := t.k.sems()
	ns.mu.Lock()
	s, err := ns.lookupLocked(id)
	if err == nil && undo {
		// Linux allocates the entry before the other checks
		// (find_alloc_undo()): even a failed call leaves one, whose
		// application at exit stamps sem_otime.
		q.undo = t.undoEntryLocked(s)
	}
	if err == nil && int(maxNum) >= len(s.sems) {
		err = unix.EFBIG
	}
	if err == nil {
		// Changing a value needs write permission, waiting for zero
		// read permission.
		want := 0o444
		if q.alter {
			want = 0o222
		}
		if !s.perm.permitted(&t.creds, want) {
			err = unix.EACCES
		}
	}
	if err != nil {
		ns.mu.Unlock()
		return 0, err
	}
	blocked, err := s.performLocked(q)
	if !blocked {
		if err == nil {
			s.otime = time.Now().Unix()
			if q.alter {
				s.updateQueueLocked()
			}
		}
		ns.mu.Unlock()
		return 0, err
	}
	q.w = NewWaiter()
	s.pending = append(s.pending, q)
	ns.mu.Unlock()

	var timer <-chan time.Time
	if timeout.set {
		tm := time.NewTimer(timeout.d)
		defer tm.Stop()
		timer = tm.C
	}
	for {
		berr := t.BlockUntil(q.w.C, timer)
		ns.mu.Lock()
		if q.done {
			ns.mu.Unlock()
			return 0, q.err
		}
		switch {
		case errors.Is(berr, ErrTimedOut):
			berr = unix.EAGAIN
		case errors.Is(berr, ErrInterrupted) && t.interrupted():
			berr = unix.EINTR
		default:
			// A spurious wake-up: a stale token, or a signal already
			// dealt with.
			ns.mu.Unlock()
			continue
		}
		s.dequeueLocked(q)
		ns.mu.Unlock()
		return 0, berr
	}
}

// dequeueLocked removes a call that gives up waiting.
//
// Preconditions: semNamespace.mu is held.
func (s *semSet) dequeueLocked(q *semQueue) {
	for i, p := range s.pending {
		if p == q {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
	}
}

// cloneSemUndo returns the undo list of a child created with flags: the
// caller's, shared, with CLONE_SYSVSEM (created now if the caller has
// none, so that both see the same list); none otherwise (Linux:
// ipc/sem.c:copy_semundo()).
func (t *Task) cloneSemUndo(flags uint64) *semUndoList {
	if flags&unix.CLONE_SYSVSEM == 0 {
		return nil
	}
	ns := t.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if t.semUndo == nil {
		t.semUndo = &semUndoList{refs: 1, entries: make(map[*semSet]*semUndoEntry)}
	}
	t.semUndo.refs++
	return t.semUndo
}

// exitSem drops the task's reference to its undo list; the last task to
// drop it applies the adjustments to the sets that still exist, each
// value clamped to [0, SEMVMX], and wakes the calls that may now go
// through (Linux: ipc/sem.c:exit_sem()).
func (t *Task) exitSem() {
	l := t.semUndo
	if l == nil {
		return
	}
	t.semUndo = nil
	ns := t.k.sems()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if l.refs--; l.refs > 0 {
		return
	}
	now := time.Now().Unix()
	for s, u := range l.entries {
		delete(s.undos, u)
		for i, adj := range u.adj {
			if adj == 0 {
				continue
			}
			v := min(max(s.sems[i].val+adj, 0), semVMX)
			s.sems[i] = semaphore{val: v, pid: t.tg.tgid}
		}
		s.otime = now
		s.updateQueueLocked()
	}
	l.entries = nil
}
