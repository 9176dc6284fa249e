package kernel

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Priority-inheritance futexes: FUTEX_LOCK_PI, FUTEX_LOCK_PI2,
// FUTEX_TRYLOCK_PI and FUTEX_UNLOCK_PI (Linux: kernel/futex/pi.c;
// futex(2) "Priority-inheritance futexes").
//
// The futex word holds the owner's TID, FUTEX_WAITERS when the owner must
// enter the kernel to unlock, and FUTEX_OWNER_DIED. User space takes and
// releases an uncontended lock with a compare-and-swap; the kernel queues
// the contenders, marks the word FUTEX_WAITERS, and on unlock hands the
// lock straight to the first waiter by writing its TID into the word.
//
// TODO(ringbox): ringbox has no thread priorities, so nothing is inherited:
// waiters are served in arrival order rather than by priority, and the
// owner's priority never changes.

// PI futex operations besides those of futex.go.
const (
	futexOpUnlockPI     = 7
	futexOpTrylockPI    = 8
	futexOpCmpRequeuePI = 12
)

// topPIWaiterLocked returns the first waiter of PI futex key, or nil.
//
// Preconditions: b.mu is held; b is key's bucket.
func (b *futexBucket) topPIWaiterLocked(key futexKey) *futexWaiter {
	for w := b.head; w != nil; w = w.next {
		if w.key == key && w.pi {
			return w
		}
	}
	return nil
}

// handOverPILocked gives PI futex key, whose word is at addr, to its
// first waiter w: the word becomes w's TID with FUTEX_WAITERS (and keep,
// the bits of the old word to preserve), the other waiters now wait for
// w, and w wakes up owning the lock (Linux: wake_futex_pi() and
// fixup_pi_owner()). It returns errUserU32Retry if the page is not
// ready, or false if the word no longer holds old.
//
// Preconditions: b.mu is held; b is key's bucket; w is its top PI waiter.
func (b *futexBucket) handOverPILocked(mm *MemoryManager, addr uint64, key futexKey, w *futexWaiter, old, keep uint32) (bool, error) {
	nval := old&keep | robustFutexWaiters | uint32(w.task.tid)
	prev, err := mm.compareAndSwapU32(addr, old, nval, false)
	if err != nil || prev != old {
		return false, err
	}
	b.wakeLocked(w)
	for o := b.head; o != nil; o = o.next {
		if o.key == key && o.pi {
			o.owner = w.task
		}
	}
	return true, nil
}

// futexLockPI takes the PI futex at addr for t, waiting for its owner to
// release it unless trylock (Linux: futex_lock_pi()). It returns
// ErrInterrupted when a signal must be handled.
func futexLockPI(t *Task, addr uint64, private bool, deadline *futexDeadline, trylock bool) error {
	for {
		key, err := futexKeyFor(t.mm, addr, private)
		if err != nil {
			return err
		}
		b := futexBucketOf(key)
		b.mu.Lock()
		w, err := lockPIAtomicLocked(t, b, key, addr, trylock)
		b.mu.Unlock()
		switch {
		case errors.Is(err, errUserU32Retry):
			// Fault the page in for writing, outside the lock.
			if _, err := t.mm.ReadModifyWriteU32(addr, func(v uint32) uint32 { return v }); err != nil {
				return err
			}
			continue
		case errors.Is(err, unix.EAGAIN) && !trylock:
			// The word changed under us: look again.
			continue
		case err != nil:
			return err
		case w == nil:
			// Taken.
			return nil
		}
		err = blockFutexWaiter(t, w, deadline)
		if !w.unqueue() {
			// Handed over by the owner's unlock or exit.
			return nil
		}
		switch {
		case errors.Is(err, ErrTimedOut):
			return unix.ETIMEDOUT
		case errors.Is(err, ErrInterrupted) && t.interrupted():
			return ErrInterrupted
		}
	}
}

// lockPIAtomicLocked tries to take the PI futex, or queues t as its
// waiter (Linux: futex_lock_pi_atomic()). It returns nil when t took the
// lock, the queued waiter when t must wait, EAGAIN when the word changed
// meanwhile (or, with trylock, the lock is held), and errUserU32Retry when
// the page must be faulted in.
//
// Preconditions: b.mu is held; b is key's bucket.
func lockPIAtomicLocked(t *Task, b *futexBucket, key futexKey, addr uint64, trylock bool) (*futexWaiter, error) {
	uval, err := t.mm.loadU32(addr, false)
	if err != nil {
		return nil, err
	}
	owner := int32(uval & robustFutexTIDMask)
	if owner == t.tid {
		return nil, unix.EDEADLK
	}
	top := b.topPIWaiterLocked(key)
	if owner == 0 {
		if top != nil {
			// Waiters queued for a lock the word says is free: user
			// space broke the protocol (Linux: attach_to_pi_state()).
			return nil, unix.EINVAL
		}
		// Free: take it, keeping FUTEX_OWNER_DIED for the new owner to
		// see.
		prev, err := t.mm.compareAndSwapU32(addr, uval, uval&robustFutexOwnerDied|uint32(t.tid), false)
		if err != nil {
			return nil, err
		}
		if prev != uval {
			return nil, unix.EAGAIN
		}
		return nil, nil
	}
	ownerTask := t.k.taskByTID(owner)
	if ownerTask == nil {
		// The owner is gone without releasing it (Linux:
		// handle_exit_race()).
		return nil, unix.ESRCH
	}
	if trylock {
		return nil, unix.EAGAIN
	}
	if uval&robustFutexWaiters == 0 {
		// Make the owner's unlock come to the kernel.
		prev, err := t.mm.compareAndSwapU32(addr, uval, uval|robustFutexWaiters, false)
		if err != nil {
			return nil, err
		}
		if prev != uval {
			return nil, unix.EAGAIN
		}
	}
	w := &futexWaiter{key: key, bitset: futexBitsetMatchAny, woken: make(chan struct{}, 1), pi: true, task: t, owner: ownerTask}
	b.enqueueLocked(w)
	return w, nil
}

// futexUnlockPI releases the PI futex at addr, which t must own, handing
// it to its first waiter if any (Linux: futex_unlock_pi()).
func futexUnlockPI(t *Task, addr uint64, private bool) error {
	for try := 0; try < userU32MaxTries; try++ {
		uval, err := t.mm.LoadU32(addr)
		if err != nil {
			return err
		}
		if int32(uval&robustFutexTIDMask) != t.tid {
			return unix.EPERM
		}
		key, err := futexKeyFor(t.mm, addr, private)
		if err != nil {
			return err
		}
		b := futexBucketOf(key)
		b.mu.Lock()
		var done bool
		if w := b.topPIWaiterLocked(key); w != nil {
			done, err = b.handOverPILocked(t.mm, addr, key, w, uval, 0)
		} else {
			// No waiter: the lock is free, FUTEX_WAITERS and
			// FUTEX_OWNER_DIED go with the owner.
			var prev uint32
			prev, err = t.mm.compareAndSwapU32(addr, uval, 0, false)
			done = prev == uval
			if err == nil && !done {
				// Changed in user space: let it sort that out.
				err = unix.EAGAIN
			}
		}
		b.mu.Unlock()
		if errors.Is(err, errUserU32Retry) {
			if _, err := t.mm.ReadModifyWriteU32(addr, func(v uint32) uint32 { return v }); err != nil {
				return err
			}
			continue
		}
		if err != nil || done {
			return err
		}
	}
	return unix.EAGAIN
}

// exitPIFutexes hands each PI futex that the exiting task t owns and
// others wait for to its first waiter, keeping FUTEX_OWNER_DIED if the
// robust list walk set it (Linux: kernel/futex/core.c:
// exit_pi_state_list()). The exit path calls it after the robust list.
func (t *Task) exitPIFutexes() {
	for i := range futexTable {
		b := &futexTable[i]
		for try := 0; try < userU32MaxTries; {
			b.mu.Lock()
			var w *futexWaiter
			for o := b.head; o != nil; o = o.next {
				if o.pi && o.owner == t {
					w = b.topPIWaiterLocked(o.key)
					break
				}
			}
			if w == nil {
				b.mu.Unlock()
				break
			}
			mm, addr := w.task.mm, w.key.off
			if w.key.kind == futexKeyShared {
				// The word's address is the waiter's, not the key's.
				addr = w.addr
			}
			uval, err := mm.loadU32(addr, false)
			var done bool
			if err == nil {
				done, err = b.handOverPILocked(mm, addr, w.key, w, uval, robustFutexOwnerDied)
			}
			b.mu.Unlock()
			switch {
			case errors.Is(err, errUserU32Retry):
				mm.ReadModifyWriteU32(addr, func(v uint32) uint32 { return v })
				try++
			case err != nil:
				// The word is gone: wake the waiter, which finds the
				// owner dead (ESRCH) when it tries again.
				b.mu.Lock()
				if w.queued {
					b.wakeLocked(w)
				}
				b.mu.Unlock()
			case !done:
				try++
			}
		}
	}
}
