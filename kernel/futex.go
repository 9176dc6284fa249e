package kernel

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
)

// futex(2) (Linux: kernel/futex/{core,waitwake,requeue,syscalls}.c).
//
// A waiter reads the futex word and queues itself in a hash bucket under
// the bucket's lock; a waker changes the word in user mode, then takes the
// same lock to dequeue waiters. Because the waiter checks the word with
// the lock held, a wake that follows the change of the word cannot miss it.
//
// Lock order: futexBucket.mu (two of them in table order, for requeue and
// WAKE_OP) before MemoryManager.mu (reading the word). No page fault is
// taken with a bucket locked: a word whose page is not ready makes the
// operation drop its locks, fault the page in and start again (Linux:
// get_futex_value_locked() and fault_in_user_writeable()).

func init() {
	register(unix.SYS_FUTEX, "futex", sysFutex, argHex, argHex, argInt, argHex, argHex, argHex)
}

// futex operations and flags (Linux: include/uapi/linux/futex.h).
const (
	futexOpWait          = 0
	futexOpWake          = 1
	futexOpRequeue       = 3
	futexOpCmpRequeue    = 4
	futexOpWakeOp        = 5
	futexOpLockPI        = 6
	futexOpWaitBitset    = 9
	futexOpWakeBitset    = 10
	futexOpWaitRequeuePI = 11
	futexOpLockPI2       = 13

	futexPrivateFlag   = 128
	futexClockRealtime = 256
	futexCmdMask       = ^(futexPrivateFlag | futexClockRealtime)

	futexBitsetMatchAny = 0xffffffff
)

// FUTEX_WAKE_OP's encoded operation (Linux: include/uapi/linux/futex.h
// FUTEX_OP()): op << 28 | cmp << 24 | oparg << 12 | cmparg.
const (
	futexWakeOpSet  = 0 // uaddr2 = oparg
	futexWakeOpAdd  = 1 // uaddr2 += oparg
	futexWakeOpOr   = 2 // uaddr2 |= oparg
	futexWakeOpAndn = 3 // uaddr2 &= ~oparg
	futexWakeOpXor  = 4 // uaddr2 ^= oparg
	// futexWakeOpOpargShift: oparg is a shift count (1 << oparg).
	futexWakeOpOpargShift = 8

	futexWakeCmpEq = 0
	futexWakeCmpNe = 1
	futexWakeCmpLt = 2
	futexWakeCmpLe = 3
	futexWakeCmpGt = 4
	futexWakeCmpGe = 5
)

// futexKeyKind tells what a futexKey names.
type futexKeyKind uint8

const (
	// futexKeyPrivate: a FUTEX_PRIVATE_FLAG futex, (mm, address).
	futexKeyPrivate futexKeyKind = iota
	// futexKeyMMShared: a shared futex in a private mapping. Linux keys
	// it by (mm, address) too, but with FUT_OFF_MMSHARED set, so it
	// never matches a private futex at the same address.
	futexKeyMMShared
	// futexKeyShared: a futex in a shared mapping, (memory file,
	// offset), so processes mapping the same page meet whatever its
	// address in each of them (Linux keys it by inode and page offset).
	futexKeyShared
)

// futexKey identifies a futex word (Linux: union futex_key). Keys name
// their address space or memory file, so one table serves every kernel.
type futexKey struct {
	kind futexKeyKind
	mm   *MemoryManager
	mf   *memfile.MemoryFile
	// off is the address, or the offset in the memory file.
	off uint64
}

// futexWaiter is a task blocked in FUTEX_WAIT (Linux: struct futex_q).
type futexWaiter struct {
	// bucket is where the waiter is queued; requeue moves it with both
	// buckets locked.
	bucket atomic.Pointer[futexBucket]
	// woken receives a token when a waker dequeues the waiter.
	woken chan struct{}

	// The fields below are protected by the lock of bucket.

	key        futexKey
	bitset     uint32
	queued     bool
	prev, next *futexWaiter

	// pi marks a waiter of FUTEX_LOCK_PI (futex_pi.go): task waits at
	// addr of its address space for owner to release the lock; granted
	// is set when the lock is handed to it.
	pi          bool
	task, owner *Task
	addr        uint64
	granted     bool
}

// futexBucket is one chain of the futex hash table, in FIFO order.
type futexBucket struct {
	// idx is the bucket's place in futexTable, its lock order.
	idx        int
	mu         sync.Mutex
	head, tail *futexWaiter // protected by mu
}

// futexTableSize is the number of buckets (Linux sizes its table by the
// number of CPUs; a sandbox has few).
const futexTableSize = 256

var (
	futexTable [futexTableSize]futexBucket
	futexSeed  = maphash.MakeSeed()
	// futexPIWaiters counts the queued PI waiters of every kernel, so
	// that thread exit skips the search for them when there are none.
	futexPIWaiters atomic.Int64
)

func init() {
	for i := range futexTable {
		futexTable[i].idx = i
	}
}

// futexBucketOf returns the bucket of key.
func futexBucketOf(key futexKey) *futexBucket {
	return &futexTable[maphash.Comparable(futexSeed, key)%futexTableSize]
}

// lockFutexBuckets locks b1 and b2 (once if equal) in table order (Linux:
// double_lock_hb()).
func lockFutexBuckets(b1, b2 *futexBucket) {
	switch {
	case b1 == b2:
		b1.mu.Lock()
	case b1.idx < b2.idx:
		b1.mu.Lock()
		b2.mu.Lock()
	default:
		b2.mu.Lock()
		b1.mu.Lock()
	}
}

func unlockFutexBuckets(b1, b2 *futexBucket) {
	b1.mu.Unlock()
	if b2 != b1 {
		b2.mu.Unlock()
	}
}

// enqueueLocked appends w.
//
// Preconditions: b.mu is held.
func (b *futexBucket) enqueueLocked(w *futexWaiter) {
	w.prev, w.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
	w.queued = true
	w.bucket.Store(b)
	if w.pi {
		futexPIWaiters.Add(1)
	}
}

// removeLocked unlinks w.
//
// Preconditions: b.mu is held; w is queued in b.
func (b *futexBucket) removeLocked(w *futexWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
	if w.pi {
		futexPIWaiters.Add(-1)
	}
}

// wakeLocked dequeues w and wakes its task (Linux: futex_wake_mark()).
//
// Preconditions: b.mu is held; w is queued in b.
func (b *futexBucket) wakeLocked(w *futexWaiter) {
	b.removeLocked(w)
	select {
	case w.woken <- struct{}{}:
	default:
	}
}

// wakeKeyLocked wakes up to n waiters of key whose bitset intersects
// bitset and returns how many it woke. Like Linux, it wakes one even when
// n <= 0. A waiter of a PI futex, which only FUTEX_UNLOCK_PI may wake,
// makes it stop with EINVAL.
//
// Preconditions: b.mu is held; b is key's bucket.
func (b *futexBucket) wakeKeyLocked(key futexKey, n int, bitset uint32) (int, error) {
	woken := 0
	for w := b.head; w != nil; {
		next := w.next
		if w.key == key && w.pi {
			return woken, unix.EINVAL
		}
		if w.key == key && w.bitset&bitset != 0 {
			b.wakeLocked(w)
			woken++
			if woken >= n {
				break
			}
		}
		w = next
	}
	return woken, nil
}

// unqueue removes w from its bucket if it is still queued and reports
// whether it was: false means a waker dequeued it (Linux: futex_unqueue()).
func (w *futexWaiter) unqueue() bool {
	for {
		b := w.bucket.Load()
		b.mu.Lock()
		if w.bucket.Load() != b {
			// Requeued meanwhile: try its new bucket.
			b.mu.Unlock()
			continue
		}
		was := w.queued
		if was {
			b.removeLocked(w)
		}
		b.mu.Unlock()
		return was
	}
}

// futexKeyFor computes the key of the futex word at addr of mm (Linux:
// get_futex_key()). Private keys need no page; shared ones in a shared
// mapping fault the page in, as the word's identity is its page.
func futexKeyFor(mm *MemoryManager, addr uint64, private bool) (futexKey, error) {
	if addr%4 != 0 {
		return futexKey{}, unix.EINVAL
	}
	if !userRangeOK(addr, 4) {
		return futexKey{}, unix.EFAULT
	}
	if private {
		return futexKey{kind: futexKeyPrivate, mm: mm, off: addr}, nil
	}
	for try := 0; try < userU32MaxTries; try++ {
		mm.mu.Lock()
		i := mm.findLocked(addr)
		if i < 0 || mm.vmas[i].perms&platform.Read == 0 {
			mm.mu.Unlock()
			return futexKey{}, unix.EFAULT
		}
		v := mm.vmas[i]
		if !v.shared {
			mm.mu.Unlock()
			return futexKey{kind: futexKeyMMShared, mm: mm, off: addr}, nil
		}
		pg := arch.PageRoundDown(addr)
		if p, ok := mm.pages[pg]; ok {
			mm.mu.Unlock()
			return futexKey{kind: futexKeyShared, mf: mm.mf, off: p.off + addr - pg}, nil
		}
		mm.mu.Unlock()
		if _, err := mm.HandleFault(addr, platform.Read); err != nil {
			return futexKey{}, unix.EFAULT
		}
	}
	return futexKey{}, unix.EFAULT
}

// futexDeadline is a FUTEX_WAIT timeout: an absolute time of a wall
// clock.
type futexDeadline struct {
	clock int32
	at    int64
}

// futexWait blocks until the futex word at addr is woken, with EAGAIN if
// it does not hold val (Linux: futex_wait()). A nil deadline waits
// forever. Interrupted, it returns ErrInterrupted.
func futexWait(t *Task, addr uint64, private bool, val, bitset uint32, deadline *futexDeadline) error {
	if bitset == 0 {
		return unix.EINVAL
	}
	for {
		key, err := futexKeyFor(t.mm, addr, private)
		if err != nil {
			return err
		}
		w := &futexWaiter{key: key, bitset: bitset, woken: make(chan struct{}, 1)}
		b := futexBucketOf(key)
		b.mu.Lock()
		cur, err := t.mm.loadU32(addr, false)
		if errors.Is(err, errUserU32Retry) {
			b.mu.Unlock()
			if _, err := t.mm.LoadU32(addr); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			b.mu.Unlock()
			return err
		}
		if cur != val {
			b.mu.Unlock()
			return unix.EAGAIN
		}
		b.enqueueLocked(w)
		b.mu.Unlock()

		err = blockFutexWaiter(t, w, deadline)
		if !w.unqueue() {
			// Woken, whatever else happened meanwhile.
			return nil
		}
		switch {
		case errors.Is(err, ErrTimedOut):
			return unix.ETIMEDOUT
		case errors.Is(err, ErrInterrupted) && t.interrupted():
			return ErrInterrupted
		}
		// A stale interruption with nothing to deliver: wait again,
		// checking the word anew (Linux: futex_wait()'s retry).
	}
}

// blockFutexWaiter blocks t until w is woken, the deadline (if any)
// passes or t is interrupted.
func blockFutexWaiter(t *Task, w *futexWaiter, deadline *futexDeadline) error {
	var timerC <-chan time.Time
	if deadline != nil {
		timer := time.NewTimer(untilWall(deadline.clock, deadline.at))
		defer timer.Stop()
		timerC = timer.C
	}
	return t.BlockUntil(w.woken, timerC)
}

// futexWakeAddr wakes up to n waiters of the futex at addr whose bitset
// intersects bitset (Linux: futex_wake()).
func futexWakeAddr(mm *MemoryManager, addr uint64, private bool, n int, bitset uint32) (int, error) {
	if bitset == 0 {
		return 0, unix.EINVAL
	}
	key, err := futexKeyFor(mm, addr, private)
	if err != nil {
		return 0, err
	}
	b := futexBucketOf(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wakeKeyLocked(key, n, bitset)
}

// futexWake wakes up to n waiters on the (shared) futex word at addr of
// t's address space, as thread exit does for CLONE_CHILD_CLEARTID and
// robust futexes (Linux: kernel/fork.c:mm_release() and
// kernel/futex/core.c:handle_futex_death()). It returns how many it woke.
func (k *Kernel) futexWake(t *Task, addr uint64, n int) int {
	woken, err := futexWakeAddr(t.mm, addr, false, n, futexBitsetMatchAny)
	if err != nil {
		return 0
	}
	return woken
}

// futexRequeue wakes up to nrWake waiters of addr1 and moves up to
// nrRequeue others to addr2; with cmp, only if the word at addr1 holds
// *cmp (Linux: futex_requeue()). It returns the number woken plus moved.
func futexRequeue(mm *MemoryManager, addr1, addr2 uint64, private bool, nrWake, nrRequeue int, cmp *uint32) (int, error) {
	if nrWake < 0 || nrRequeue < 0 {
		return 0, unix.EINVAL
	}
	key1, err := futexKeyFor(mm, addr1, private)
	if err != nil {
		return 0, err
	}
	key2, err := futexKeyFor(mm, addr2, private)
	if err != nil {
		return 0, err
	}
	b1, b2 := futexBucketOf(key1), futexBucketOf(key2)
	for {
		lockFutexBuckets(b1, b2)
		if cmp != nil {
			cur, err := mm.loadU32(addr1, false)
			if errors.Is(err, errUserU32Retry) {
				unlockFutexBuckets(b1, b2)
				if _, err := mm.LoadU32(addr1); err != nil {
					return 0, err
				}
				continue
			}
			if err == nil && cur != *cmp {
				err = unix.EAGAIN
			}
			if err != nil {
				unlockFutexBuckets(b1, b2)
				return 0, err
			}
		}
		n, err := requeueLocked(b1, b2, key1, key2, nrWake, nrRequeue)
		unlockFutexBuckets(b1, b2)
		return n, err
	}
}

// requeueLocked is futexRequeue's work once the word is checked. A
// waiter of a PI futex stops it with EINVAL, as in Linux without
// FUTEX_CMP_REQUEUE_PI.
//
// Preconditions: b1 and b2, the buckets of key1 and key2, are locked.
func requeueLocked(b1, b2 *futexBucket, key1, key2 futexKey, nrWake, nrRequeue int) (int, error) {
	count := 0
	for w := b1.head; w != nil; {
		next := w.next
		if count-nrWake >= nrRequeue {
			break
		}
		if w.key != key1 {
			w = next
			continue
		}
		if w.pi {
			return count, unix.EINVAL
		}
		count++
		if count <= nrWake {
			b1.wakeLocked(w)
			w = next
			continue
		}
		w.key = key2
		if b1 != b2 {
			b1.removeLocked(w)
			b2.enqueueLocked(w)
		}
		w = next
	}
	return count, nil
}

// futexWakeOp atomically applies the encoded operation to the word at
// addr2, wakes up to nrWake waiters of addr1 and, if the old value of the
// word at addr2 passes the encoded comparison, up to nrWake2 waiters of
// addr2 (Linux: futex_wake_op()). It returns the number woken.
func futexWakeOp(mm *MemoryManager, addr1, addr2 uint64, private bool, nrWake, nrWake2 int, encoded uint32) (int, error) {
	key1, err := futexKeyFor(mm, addr1, private)
	if err != nil {
		return 0, err
	}
	key2, err := futexKeyFor(mm, addr2, private)
	if err != nil {
		return 0, err
	}
	b1, b2 := futexBucketOf(key1), futexBucketOf(key2)
	for {
		lockFutexBuckets(b1, b2)
		cond, err := futexAtomicOp(mm, addr2, encoded, false)
		if errors.Is(err, errUserU32Retry) {
			unlockFutexBuckets(b1, b2)
			if _, err := mm.ReadModifyWriteU32(addr2, func(v uint32) uint32 { return v }); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			unlockFutexBuckets(b1, b2)
			return 0, err
		}
		woken, err := b1.wakeKeyLocked(key1, nrWake, futexBitsetMatchAny)
		if cond && err == nil {
			var n int
			n, err = b2.wakeKeyLocked(key2, nrWake2, futexBitsetMatchAny)
			woken += n
		}
		unlockFutexBuckets(b1, b2)
		if err != nil {
			return 0, err
		}
		return woken, nil
	}
}

// futexAtomicOp applies FUTEX_WAKE_OP's operation to the word at addr and
// evaluates its comparison on the old value (Linux:
// futex_atomic_op_inuser()). An unknown operation is ENOSYS and leaves the
// word alone; an unknown comparison is ENOSYS after the operation, as in
// Linux. Without fault, a page not ready for the write is errUserU32Retry.
func futexAtomicOp(mm *MemoryManager, addr uint64, encoded uint32, fault bool) (bool, error) {
	op := (encoded >> 28) & 0xf
	cmp := (encoded >> 24) & 0xf
	oparg := signExtend12(encoded >> 12)
	cmparg := signExtend12(encoded)
	if op&futexWakeOpOpargShift != 0 {
		op &^= futexWakeOpOpargShift
		// Linux logs and masks an out-of-range shift.
		oparg = 1 << (uint32(oparg) & 31)
	}
	var fn func(uint32) uint32
	arg := uint32(oparg)
	switch op {
	case futexWakeOpSet:
		fn = func(uint32) uint32 { return arg }
	case futexWakeOpAdd:
		fn = func(v uint32) uint32 { return v + arg }
	case futexWakeOpOr:
		fn = func(v uint32) uint32 { return v | arg }
	case futexWakeOpAndn:
		fn = func(v uint32) uint32 { return v &^ arg }
	case futexWakeOpXor:
		fn = func(v uint32) uint32 { return v ^ arg }
	default:
		return false, unix.ENOSYS
	}
	u, err := mm.readModifyWriteU32(addr, fault, fn)
	if err != nil {
		return false, err
	}
	old := int32(u)
	switch cmp {
	case futexWakeCmpEq:
		return old == cmparg, nil
	case futexWakeCmpNe:
		return old != cmparg, nil
	case futexWakeCmpLt:
		return old < cmparg, nil
	case futexWakeCmpLe:
		return old <= cmparg, nil
	case futexWakeCmpGt:
		return old > cmparg, nil
	case futexWakeCmpGe:
		return old >= cmparg, nil
	}
	return false, unix.ENOSYS
}

// signExtend12 returns the low 12 bits of v as a signed number.
func signExtend12(v uint32) int32 { return int32(v<<20) >> 20 }

// sysFutex implements futex(2) (Linux: kernel/futex/syscalls.c).
func sysFutex(t *Task, a *syscallArgs) (uint64, error) {
	addr, op, val := a.u(0), a.int(1), uint32(a.u(2))
	utime, addr2, val3 := a.u(3), a.u(4), uint32(a.u(5))
	cmd := op & futexCmdMask
	private := op&futexPrivateFlag != 0

	var deadline *futexDeadline
	switch cmd {
	case futexOpWait, futexOpWaitBitset, futexOpLockPI, futexOpLockPI2, futexOpWaitRequeuePI:
		if utime == 0 {
			break
		}
		ns, err := t.readTimespec(utime)
		if err != nil {
			return 0, err
		}
		// FUTEX_WAIT's timeout is relative; the others are absolute,
		// on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME, or always
		// CLOCK_REALTIME for FUTEX_LOCK_PI.
		deadline = &futexDeadline{clock: unix.CLOCK_MONOTONIC, at: ns}
		if cmd == futexOpWait {
			deadline.at = addSafe(monotonicNow(), ns)
		} else if op&futexClockRealtime != 0 || cmd == futexOpLockPI {
			deadline.clock = unix.CLOCK_REALTIME
		}
	}
	if op&futexClockRealtime != 0 && cmd != futexOpWaitBitset && cmd != futexOpWaitRequeuePI && cmd != futexOpLockPI2 {
		return 0, unix.ENOSYS
	}

	switch cmd {
	case futexOpWait:
		return t.futexWaitSyscall(addr, private, val, futexBitsetMatchAny, deadline)
	case futexOpWaitBitset:
		return t.futexWaitSyscall(addr, private, val, val3, deadline)
	case futexOpWake:
		n, err := futexWakeAddr(t.mm, addr, private, int(int32(val)), futexBitsetMatchAny)
		return uint64(n), err
	case futexOpWakeBitset:
		n, err := futexWakeAddr(t.mm, addr, private, int(int32(val)), val3)
		return uint64(n), err
	case futexOpRequeue:
		n, err := futexRequeue(t.mm, addr, addr2, private, int(int32(val)), int(int32(utime)), nil)
		return uint64(n), err
	case futexOpCmpRequeue:
		n, err := futexRequeue(t.mm, addr, addr2, private, int(int32(val)), int(int32(utime)), &val3)
		return uint64(n), err
	case futexOpWakeOp:
		n, err := futexWakeOp(t.mm, addr, addr2, private, int(int32(val)), int(int32(utime)), val3)
		return uint64(n), err
	case futexOpLockPI, futexOpLockPI2:
		err := futexLockPI(t, addr, private, deadline, false)
		if errors.Is(err, ErrInterrupted) {
			// Linux: futex_lock_pi() always restarts, handler or not;
			// its deadline is absolute.
			return 0, ERESTARTNOINTR
		}
		return 0, err
	case futexOpTrylockPI:
		return 0, futexLockPI(t, addr, private, nil, true)
	case futexOpUnlockPI:
		return 0, futexUnlockPI(t, addr, private)
	}
	// TODO(ringbox): FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI, which
	// glibc uses only for condition variables on PI mutexes before 2.25,
	// are not implemented.
	return 0, unix.ENOSYS
}

// futexWaitSyscall runs FUTEX_WAIT(_BITSET) for the system call. With a
// timeout, an interrupted wait restarts through restart_syscall(2) with
// the same absolute deadline (Linux: futex_wait_restart()); without one it
// restarts as ERESTARTSYS does.
func (t *Task) futexWaitSyscall(addr uint64, private bool, val, bitset uint32, deadline *futexDeadline) (uint64, error) {
	err := futexWait(t, addr, private, val, bitset, deadline)
	if !errors.Is(err, ErrInterrupted) {
		return 0, err
	}
	if deadline == nil {
		return 0, ERESTARTSYS
	}
	t.restart = func(t *Task) (uint64, error) {
		return t.futexWaitSyscall(addr, private, val, bitset, deadline)
	}
	return 0, ERESTART_RESTARTBLOCK
}

// robustFutexDeath releases a robust futex that the exiting task t may
// hold (Linux: kernel/futex/core.c:handle_futex_death()): if t owns the
// word at addr, FUTEX_OWNER_DIED is set with a compare-and-swap, which
// races safely with the other threads' lock operations, and a waiter is
// woken if the word says there are any. pendingOp marks the list's
// op_pending entry: a plain futex found unowned there may have been
// released by t between the unlock and the list update, with a waiter left
// asleep, so one is woken. pi marks a priority-inheritance futex, whose
// waiters exit_pi_state() would wake.
//
// The exit path calls it for each entry of the robust list, with pi from
// bit 0 of the entry.
func (t *Task) robustFutexDeath(addr uint64, pi, pendingOp bool) {
	for try := 0; try < userU32MaxTries; try++ {
		uval, err := t.mm.LoadU32(addr)
		if err != nil {
			return
		}
		owner := int32(uval & robustFutexTIDMask)
		if pendingOp && !pi && owner == 0 {
			t.k.futexWake(t, addr, 1)
			return
		}
		if owner != t.tid {
			return
		}
		mval := uval&robustFutexWaiters | robustFutexOwnerDied
		prev, err := t.mm.CompareAndSwapU32(addr, uval, mval)
		if err != nil {
			return
		}
		if prev != uval {
			// Another thread changed the word meanwhile (set
			// FUTEX_WAITERS): look again.
			continue
		}
		if !pi && uval&robustFutexWaiters != 0 {
			t.k.futexWake(t, addr, 1)
		}
		return
	}
}

// Robust futex word bits (Linux: include/uapi/linux/futex.h).
const (
	robustFutexWaiters   = 0x80000000
	robustFutexOwnerDied = 0x40000000
	robustFutexTIDMask   = 0x3fffffff
)
