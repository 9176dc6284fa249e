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

// errFutexChanged: the futex word changed between its read and the
// compare-and-swap that depended on it; the operation starts again.
var errFutexChanged = errors.New("futex word changed")

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

// handOverPILocked gives PI futex key to its first waiter w, whose
// address space holds the word at w.addr: the word becomes w's TID with
// FUTEX_WAITERS (and the bits of keep that old has), the other waiters now
// wait for w, and w wakes up owning the lock (Linux: wake_futex_pi() and
// fixup_pi_owner()). It returns errFutexChanged if the word no longer
// holds old, errUserU32Retry if its page is not ready.
//
// Preconditions: b.mu is held; b is key's bucket; w is its top PI waiter.
func (b *futexBucket) handOverPILocked(key futexKey, w *futexWaiter, old, keep uint32) error {
	nval := old&keep | robustFutexWaiters | uint32(w.task.tid)
	prev, err := w.task.mm.compareAndSwapU32(w.addr, old, nval, false)
	if err != nil {
		return err
	}
	if prev != old {
		return errFutexChanged
	}
	w.granted = true
	b.wakeLocked(w)
	for o := b.head; o != nil; o = o.next {
		if o.key == key && o.pi {
			o.owner = w.task
		}
	}
	return nil
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
			if err := faultInWritable(t.mm, addr); err != nil {
				return err
			}
			continue
		case errors.Is(err, errFutexChanged):
			continue
		case err != nil:
			return err
		case w == nil:
			// Taken.
			return nil
		}
		err = blockFutexWaiter(t, w, deadline)
		if !w.unqueue() && w.granted {
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
// lock and the queued waiter when t must wait; errFutexChanged when the
// word changed meanwhile, EAGAIN (EWOULDBLOCK) when trylock finds the lock
// held, and errUserU32Retry when the page must be faulted in.
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
			return nil, errFutexChanged
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
			return nil, errFutexChanged
		}
	}
	w := &futexWaiter{key: key, bitset: futexBitsetMatchAny, woken: make(chan struct{}, 1), pi: true, task: t, owner: ownerTask, addr: addr}
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
		if w := b.topPIWaiterLocked(key); w != nil {
			err = b.handOverPILocked(key, w, uval, 0)
		} else {
			// No waiter: the lock is free; FUTEX_WAITERS and
			// FUTEX_OWNER_DIED go with the owner.
			var prev uint32
			prev, err = t.mm.compareAndSwapU32(addr, uval, 0, false)
			if err == nil && prev != uval {
				// Changed in user space: let it sort that out.
				err = unix.EAGAIN
			}
		}
		b.mu.Unlock()
		switch {
		case errors.Is(err, errUserU32Retry):
			if err := faultInWritable(t.mm, addr); err != nil {
				return err
			}
		case errors.Is(err, errFutexChanged):
		default:
			return err
		}
	}
	return unix.EAGAIN
}

// faultInWritable makes the page of the word at addr present and writable,
// as a write fault would (Linux: fault_in_user_writeable()).
func faultInWritable(mm *MemoryManager, addr uint64) error {
	_, err := mm.ReadModifyWriteU32(addr, func(v uint32) uint32 { return v })
	return err
}

// exitPIFutexes hands each PI futex that the exiting task t owns and
// others wait for to its first waiter, keeping FUTEX_OWNER_DIED if the
// robust list walk set it (Linux: kernel/futex/core.c:
// exit_pi_state_list()). A waiter whose word cannot be updated is woken
// without the lock, and finds the owner gone when it tries again. The exit
// path calls it after the robust list.
func (t *Task) exitPIFutexes() {
	if futexPIWaiters.Load() == 0 {
		return
	}
	for i := range futexTable {
		b := &futexTable[i]
		for {
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
			err := errFutexChanged
			for try := 0; try < userU32MaxTries && errors.Is(err, errFutexChanged); try++ {
				var uval uint32
				if uval, err = w.task.mm.loadU32(w.addr, false); err == nil {
					err = b.handOverPILocked(w.key, w, uval, robustFutexOwnerDied)
				}
			}
			if err != nil && w.queued {
				b.wakeLocked(w)
			}
			b.mu.Unlock()
		}
	}
}
