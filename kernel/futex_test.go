package kernel

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// newThreadPair returns two tasks of one process sharing an address space
// with a read-write vma at dataAddr; neither runs a program, so the test
// calls kernel functions on their behalf from its own goroutines.
func newThreadPair(t *testing.T) (*Task, *Task) {
	t.Helper()
	k, t1, _ := newTestKernel(t, func(c *fakeContext, st *arch.State) platform.Event {
		panic("idle task ran")
	})
	ctx, err := k.platform.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t2 := k.newTaskStruct(2, t1.tg, ctx)
	t2.mm = t1.mm
	t1.mm.incUsers()
	t1.tg.tasks[2] = t2
	k.tasks[2] = t2
	// A handler makes SIGUSR1 interrupt waits rather than be ignored.
	h := t1.tg.handlers.Load()
	h.mu.Lock()
	h.actions[unix.SIGUSR1-1].Handler = 0x1000
	h.mu.Unlock()
	return t1, t2
}

// futexWaitAsync runs futexWait for t in a goroutine and returns its
// result channel.
func futexWaitAsync(t *Task, addr uint64, private bool, val, bitset uint32, dl *futexDeadline) <-chan error {
	done := make(chan error, 1)
	go func() { done <- futexWait(t, addr, private, val, bitset, dl) }()
	return done
}

// waitFutexWaiters spins until n waiters are queued on the futex at addr:
// the other goroutines are blocked (or about to), so a wake-up now tests
// the wake path.
func waitFutexWaiters(t *testing.T, mm *MemoryManager, addr uint64, private bool, n int) {
	t.Helper()
	key, err := futexKeyFor(mm, addr, private)
	if err != nil {
		t.Fatal(err)
	}
	b := futexBucketOf(key)
	for {
		b.mu.Lock()
		got := 0
		for w := b.head; w != nil; w = w.next {
			if w.key == key {
				got++
			}
		}
		b.mu.Unlock()
		if got >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestFutexWaitWake(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	done := futexWaitAsync(t2, dataAddr, true, 0, futexBitsetMatchAny, nil)
	waitFutexWaiters(t, mm, dataAddr, true, 1)
	// A shared wake does not reach a private waiter (distinct keys).
	if n, err := futexWakeAddr(mm, dataAddr, false, 1, futexBitsetMatchAny); n != 0 || err != nil {
		t.Errorf("shared wake of a private waiter: got %d, %v, want 0, nil", n, err)
	}
	if n, err := futexWakeAddr(mm, dataAddr, true, 1, futexBitsetMatchAny); n != 1 || err != nil {
		t.Errorf("wake: got %d, %v, want 1, nil", n, err)
	}
	if err := <-done; err != nil {
		t.Errorf("woken waiter returned %v, want nil", err)
	}
	if n, _ := futexWakeAddr(mm, dataAddr, true, 1, futexBitsetMatchAny); n != 0 {
		t.Errorf("wake with no waiter: got %d, want 0", n)
	}
}

func TestFutexWaitErrors(t *testing.T) {
	t1, _ := newThreadPair(t)
	if err := t1.mm.StoreU32(dataAddr, 1); err != nil {
		t.Fatal(err)
	}
	soon := &futexDeadline{clock: unix.CLOCK_MONOTONIC, at: monotonicNow() + int64(5*time.Millisecond)}
	past := &futexDeadline{clock: unix.CLOCK_REALTIME, at: realtimeNow() - int64(time.Second)}
	tests := []struct {
		name    string
		addr    uint64
		private bool
		val     uint32
		bitset  uint32
		dl      *futexDeadline
		want    error
	}{
		{"value mismatch", dataAddr, true, 0, futexBitsetMatchAny, nil, unix.EAGAIN},
		{"mismatch before an expired timeout", dataAddr, true, 0, futexBitsetMatchAny, past, unix.EAGAIN},
		{"relative timeout", dataAddr, true, 1, futexBitsetMatchAny, soon, unix.ETIMEDOUT},
		{"realtime deadline in the past", dataAddr, false, 1, futexBitsetMatchAny, past, unix.ETIMEDOUT},
		{"bitset 0", dataAddr, true, 1, 0, nil, unix.EINVAL},
		{"unaligned", dataAddr + 2, true, 1, futexBitsetMatchAny, nil, unix.EINVAL},
		{"unmapped private", 0x10000, true, 0, futexBitsetMatchAny, nil, unix.EFAULT},
		{"unmapped shared", 0x10000, false, 0, futexBitsetMatchAny, nil, unix.EFAULT},
		{"kernel half", 0xffff800000000000, false, 0, futexBitsetMatchAny, nil, unix.EFAULT},
	}
	for _, tc := range tests {
		if got := futexWait(t1, tc.addr, tc.private, tc.val, tc.bitset, tc.dl); !errors.Is(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if n, err := futexWakeAddr(t1.mm, 0x10000, true, 1, futexBitsetMatchAny); n != 0 || err != nil {
		t.Errorf("private wake of an unmapped word: got %d, %v, want 0, nil (no page needed)", n, err)
	}
	if _, err := futexWakeAddr(t1.mm, 0x10000, false, 1, futexBitsetMatchAny); err != unix.EFAULT {
		t.Errorf("shared wake of an unmapped word: got %v, want EFAULT", err)
	}
}

func TestFutexWaitInterrupted(t *testing.T) {
	t1, t2 := newThreadPair(t)
	for _, withTimeout := range []bool{false, true} {
		var dl *futexDeadline
		if withTimeout {
			dl = &futexDeadline{clock: unix.CLOCK_MONOTONIC, at: monotonicNow() + int64(time.Hour)}
		}
		done := make(chan error, 1)
		go func() {
			_, err := t2.futexWaitSyscall(dataAddr, true, 0, futexBitsetMatchAny, dl)
			done <- err
		}()
		waitFutexWaiters(t, t1.mm, dataAddr, true, 1)
		t2.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
		want := ERESTARTSYS
		if withTimeout {
			// Linux: futex_wait() sets up futex_wait_restart().
			want = ERESTART_RESTARTBLOCK
		}
		if err := <-done; err != want {
			t.Errorf("timeout %v: interrupted wait returned %v, want %v", withTimeout, err, want)
		}
		if got := t2.restart != nil; got != withTimeout {
			t.Errorf("timeout %v: restart block set = %v", withTimeout, got)
		}
		h := t2.sigLock()
		t2.dequeueSignalLocked(0)
		h.mu.Unlock()
		t2.restart = nil
	}
}

func TestFutexBitset(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	done := futexWaitAsync(t2, dataAddr, true, 0, 0x1, nil)
	waitFutexWaiters(t, mm, dataAddr, true, 1)
	if n, _ := futexWakeAddr(mm, dataAddr, true, 10, 0x2); n != 0 {
		t.Errorf("wake with a disjoint bitset: got %d, want 0", n)
	}
	if _, err := futexWakeAddr(mm, dataAddr, true, 10, 0); err != unix.EINVAL {
		t.Errorf("wake with bitset 0: got %v, want EINVAL", err)
	}
	if n, _ := futexWakeAddr(mm, dataAddr, true, 10, 0x3); n != 1 {
		t.Errorf("wake with an intersecting bitset: got %d, want 1", n)
	}
	if err := <-done; err != nil {
		t.Errorf("waiter returned %v", err)
	}
}

func TestFutexRequeue(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	a, b := uint64(dataAddr), uint64(dataAddr+64)
	d1 := futexWaitAsync(t1, a, true, 0, futexBitsetMatchAny, nil)
	d2 := futexWaitAsync(t2, a, true, 0, futexBitsetMatchAny, nil)
	waitFutexWaiters(t, mm, a, true, 2)

	bad := uint32(7)
	if _, err := futexRequeue(mm, a, b, true, 0, 1, &bad); err != unix.EAGAIN {
		t.Errorf("CMP_REQUEUE with a stale value: got %v, want EAGAIN", err)
	}
	if _, err := futexRequeue(mm, a, b, true, -1, 1, nil); err != unix.EINVAL {
		t.Errorf("REQUEUE with a negative count: got %v, want EINVAL", err)
	}
	zero := uint32(0)
	// Move both to b without waking: the result counts moved waiters.
	if n, err := futexRequeue(mm, a, b, true, 0, 10, &zero); n != 2 || err != nil {
		t.Fatalf("CMP_REQUEUE 0+10: got %d, %v, want 2, nil", n, err)
	}
	if n, _ := futexWakeAddr(mm, a, true, 10, futexBitsetMatchAny); n != 0 {
		t.Errorf("wake at the old address after requeue: got %d, want 0", n)
	}
	// Back to a: wake one, move one.
	if n, err := futexRequeue(mm, b, a, true, 1, 1, nil); n != 2 || err != nil {
		t.Errorf("REQUEUE 1+1: got %d, %v, want 2, nil", n, err)
	}
	if n, _ := futexWakeAddr(mm, a, true, 10, futexBitsetMatchAny); n != 1 {
		t.Errorf("wake of the requeued waiter: got %d, want 1", n)
	}
	for _, d := range []<-chan error{d1, d2} {
		if err := <-d; err != nil {
			t.Errorf("waiter returned %v", err)
		}
	}
}

func TestFutexWakeOp(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm := t1.mm
	op := func(op, oparg, cmp, cmparg uint32) uint32 {
		return (op&0xf)<<28 | (cmp&0xf)<<24 | (oparg&0xfff)<<12 | cmparg&0xfff
	}
	tests := []struct {
		name     string
		old      uint32
		encoded  uint32
		wantWord uint32
		wantCond bool
		wantErr  error
	}{
		{"set, eq true", 5, op(futexWakeOpSet, 7, futexWakeCmpEq, 5), 7, true, nil},
		{"add, gt false", 5, op(futexWakeOpAdd, 3, futexWakeCmpGt, 5), 8, false, nil},
		{"add negative", 5, op(futexWakeOpAdd, 0xfff, futexWakeCmpLt, 6), 4, true, nil},
		{"or, ne", 1, op(futexWakeOpOr, 6, futexWakeCmpNe, 1), 7, false, nil},
		{"andn, le", 7, op(futexWakeOpAndn, 2, futexWakeCmpLe, 7), 5, true, nil},
		{"xor, ge", 6, op(futexWakeOpXor, 3, futexWakeCmpGe, 7), 5, false, nil},
		{"signed compare", 0xffffffff, op(futexWakeOpSet, 0, futexWakeCmpLt, 0), 0, true, nil},
		{"oparg shift", 0, op(futexWakeOpSet|futexWakeOpOpargShift, 4, futexWakeCmpEq, 0), 16, true, nil},
		{"unknown op", 3, op(6, 1, futexWakeCmpEq, 0), 3, false, unix.ENOSYS},
		{"unknown cmp after the op", 3, op(futexWakeOpSet, 1, 9, 0), 1, false, unix.ENOSYS},
	}
	for _, tc := range tests {
		if err := mm.StoreU32(dataAddr, tc.old); err != nil {
			t.Fatal(err)
		}
		cond, err := futexAtomicOp(mm, dataAddr, tc.encoded, true)
		word, _ := mm.LoadU32(dataAddr)
		if cond != tc.wantCond || err != tc.wantErr || word != tc.wantWord {
			t.Errorf("%s: got cond %v, err %v, word %#x; want %v, %v, %#x", tc.name, cond, err, word, tc.wantCond, tc.wantErr, tc.wantWord)
		}
	}
}

func TestFutexWakeOpWakesSecondWhenCondHolds(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	a, b := uint64(dataAddr), uint64(dataAddr+4)
	mm.StoreU32(b, 0)
	done := futexWaitAsync(t2, b, true, 0, futexBitsetMatchAny, nil)
	waitFutexWaiters(t, mm, b, true, 1)
	// cond false: nobody at b is woken.
	if n, err := futexWakeOp(mm, a, b, true, 1, 1, futexWakeOpSet<<28|futexWakeCmpNe<<24); n != 0 || err != nil {
		t.Errorf("WAKE_OP with a false comparison: got %d, %v, want 0, nil", n, err)
	}
	if n, err := futexWakeOp(mm, a, b, true, 1, 1, futexWakeOpSet<<28|futexWakeCmpEq<<24|1<<12); n != 1 || err != nil {
		t.Errorf("WAKE_OP with a true comparison: got %d, %v, want 1, nil", n, err)
	}
	if err := <-done; err != nil {
		t.Errorf("waiter returned %v", err)
	}
}

// TestFutexSharedKeyAcrossAddressSpaces maps one page shared into two
// address spaces at different addresses: their shared futex keys meet,
// their private ones do not.
func TestFutexSharedKeyAcrossAddressSpaces(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm1 := t1.mm
	mm2, err := t1.k.newMM()
	if err != nil {
		t.Fatal(err)
	}
	const addr1, addr2 = 0x800000, 0x900000
	mm1.insertLocked(&vma{start: addr1, end: addr1 + pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess, shared: true})
	mm2.insertLocked(&vma{start: addr2, end: addr2 + pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess, shared: true})
	if err := mm1.StoreU32(addr1+8, 42); err != nil {
		t.Fatal(err)
	}
	p := mm1.pages[addr1]
	mm1.mf.IncRef(memfileRange(p.off))
	mm2.pages[addr2] = p
	if v, _ := mm2.LoadU32(addr2 + 8); v != 42 {
		t.Fatalf("shared page reads %d in the second address space, want 42", v)
	}
	k1, err1 := futexKeyFor(mm1, addr1+8, false)
	k2, err2 := futexKeyFor(mm2, addr2+8, false)
	if err1 != nil || err2 != nil || k1 != k2 {
		t.Errorf("shared keys: %+v (%v) and %+v (%v), want equal", k1, err1, k2, err2)
	}
	p1, _ := futexKeyFor(mm1, addr1+8, true)
	p2, _ := futexKeyFor(mm2, addr2+8, true)
	if p1 == p2 || p1 == k1 {
		t.Errorf("private keys %+v and %+v must differ from each other and from the shared key", p1, p2)
	}
	// A shared futex in a private mapping is keyed by address space.
	m, _ := futexKeyFor(mm1, dataAddr, false)
	if m.kind != futexKeyMMShared || m.mm != mm1 {
		t.Errorf("shared key in a private mapping: %+v, want kind MMShared of mm1", m)
	}
}

func TestFutexSyscallErrnos(t *testing.T) {
	const futexWaitPrivate = futexOpWait | futexPrivateFlag
	tests := []struct {
		name string
		call []uint64
		want int64
	}{
		{"unknown op", []uint64{unix.SYS_FUTEX, dataAddr, 99, 0, 0, 0, 0}, errno(unix.ENOSYS)},
		{"WAIT_REQUEUE_PI unimplemented", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWaitRequeuePI, 0, 0, dataAddr + 4, 0}, errno(unix.ENOSYS)},
		{"LOCK_PI", []uint64{unix.SYS_FUTEX, dataAddr + 128, futexOpLockPI, 0, 0, 0, 0}, 0},
		{"LOCK_PI again", []uint64{unix.SYS_FUTEX, dataAddr + 128, futexOpLockPI, 0, 0, 0, 0}, errno(unix.EDEADLK)},
		{"UNLOCK_PI", []uint64{unix.SYS_FUTEX, dataAddr + 128, futexOpUnlockPI, 0, 0, 0, 0}, 0},
		{"UNLOCK_PI not owner", []uint64{unix.SYS_FUTEX, dataAddr + 128, futexOpUnlockPI, 0, 0, 0, 0}, errno(unix.EPERM)},
		{"LOCK_PI2 unaligned", []uint64{unix.SYS_FUTEX, dataAddr + 129, futexOpLockPI2, 0, 0, 0, 0}, errno(unix.EINVAL)},
		{"CLOCK_REALTIME with WAKE", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWake | futexClockRealtime, 1, 0, 0, 0}, errno(unix.ENOSYS)},
		{"CLOCK_REALTIME with WAIT", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWait | futexClockRealtime, 0, 0, 0, 0}, errno(unix.ENOSYS)},
		{"WAIT mismatch", []uint64{unix.SYS_FUTEX, dataAddr, futexWaitPrivate, 1, 0, 0, 0}, errno(unix.EAGAIN)},
		{"WAIT timeout fault", []uint64{unix.SYS_FUTEX, dataAddr, futexWaitPrivate, 0, 0x10000, 0, 0}, errno(unix.EFAULT)},
		{"WAIT negative timeout", []uint64{unix.SYS_FUTEX, dataAddr, futexWaitPrivate, 0, dataAddr + 16, 0, 0}, errno(unix.EINVAL)},
		{"WAIT tv_nsec too big", []uint64{unix.SYS_FUTEX, dataAddr, futexWaitPrivate, 0, dataAddr + 32, 0, 0}, errno(unix.EINVAL)},
		{"WAIT zero timeout", []uint64{unix.SYS_FUTEX, dataAddr, futexWaitPrivate, 0, dataAddr + 48, 0, 0}, errno(unix.ETIMEDOUT)},
		{"WAIT_BITSET past deadline", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWaitBitset, 0, dataAddr + 48, 0, 1}, errno(unix.ETIMEDOUT)},
		{"WAIT_BITSET bitset 0", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWaitBitset, 0, 0, 0, 0}, errno(unix.EINVAL)},
		{"WAKE", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWake, 1, 0, 0, 0}, 0},
		{"WAKE unaligned", []uint64{unix.SYS_FUTEX, dataAddr + 1, futexOpWake, 1, 0, 0, 0}, errno(unix.EINVAL)},
		{"WAKE_BITSET bitset 0", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWakeBitset, 1, 0, 0, 0}, errno(unix.EINVAL)},
		{"CMP_REQUEUE mismatch", []uint64{unix.SYS_FUTEX, dataAddr, futexOpCmpRequeue, 1, 1, dataAddr + 4, 5}, errno(unix.EAGAIN)},
		{"CMP_REQUEUE negative", []uint64{unix.SYS_FUTEX, dataAddr, futexOpCmpRequeue, ^uint64(0), 1, dataAddr + 4, 0}, errno(unix.EINVAL)},
		{"REQUEUE bad second address", []uint64{unix.SYS_FUTEX, dataAddr, futexOpRequeue, 1, 1, 0x10000, 0}, errno(unix.EFAULT)},
		{"WAKE_OP read-only target", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWakeOp, 1, 1, roAddr, 0}, errno(unix.EFAULT)},
		{"WAKE_OP", []uint64{unix.SYS_FUTEX, dataAddr, futexOpWakeOp, 1, 1, dataAddr + 4, 0}, 0},
	}
	calls := make([][]uint64, len(tests))
	for i, tc := range tests {
		calls[i] = tc.call
	}
	got := runSyscalls(t, func(task *Task) {
		var b [64]byte
		putTimespec(b[0:], 0)
		b[16+7] = 0x80 // tv_sec < 0
		putTimespec(b[32:], 0)
		b[32+8+3] = 0x40 // tv_nsec = 1<<30 > 999999999
		task.CopyOut(dataAddr, b[:])
		task.mm.mu.Lock()
		task.mm.insertLocked(&vma{start: roAddr, end: roAddr + pageSize, perms: platform.Read, maxPerms: platform.AnyAccess})
		task.mm.mu.Unlock()
	}, calls)
	if len(got) != len(tests) {
		t.Fatalf("got %d results, want %d", len(got), len(tests))
	}
	for i, tc := range tests {
		if got[i] != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got[i], tc.want)
		}
	}
}

// roAddr is a read-only page the futex syscall tests add.
const roAddr = 0x600000

func TestFutexWakeForThreadExit(t *testing.T) {
	t1, t2 := newThreadPair(t)
	// pthread_join waits with a shared futex on the TID word.
	done := futexWaitAsync(t2, dataAddr+8, false, 0, futexBitsetMatchAny, nil)
	waitFutexWaiters(t, t1.mm, dataAddr+8, false, 1)
	if n := t1.k.futexWake(t1, dataAddr+8, 1); n != 1 {
		t.Errorf("futexWake: got %d, want 1", n)
	}
	if err := <-done; err != nil {
		t.Errorf("waiter returned %v", err)
	}
	if n := t1.k.futexWake(t1, 0x10000, 1); n != 0 {
		t.Errorf("futexWake of an unmapped word: got %d, want 0", n)
	}
}

// TestFutexOnAbsentPages runs the operations that read or write the word
// with their buckets locked on pages not populated yet: they must fault
// the pages in outside the locks and succeed.
func TestFutexOnAbsentPages(t *testing.T) {
	t1, _ := newThreadPair(t)
	mm := t1.mm
	const base = 0xa00000
	fresh := func(i uint64) uint64 {
		a := uint64(base + i*pageSize)
		mm.mu.Lock()
		mm.insertLocked(&vma{start: a, end: a + pageSize, perms: platform.ReadWrite, maxPerms: platform.AnyAccess})
		mm.mu.Unlock()
		return a
	}
	if err := futexWait(t1, fresh(0), true, 1, futexBitsetMatchAny, nil); err != unix.EAGAIN {
		t.Errorf("WAIT on an absent page: got %v, want EAGAIN (it reads 0)", err)
	}
	one := uint32(1)
	if _, err := futexRequeue(mm, fresh(2), fresh(4), true, 1, 1, &one); err != unix.EAGAIN {
		t.Errorf("CMP_REQUEUE on an absent page: got %v, want EAGAIN", err)
	}
	a := fresh(6)
	if n, err := futexWakeOp(mm, fresh(8), a, true, 1, 1, futexWakeOpAdd<<28|5<<12); n != 0 || err != nil {
		t.Errorf("WAKE_OP on an absent page: got %d, %v, want 0, nil", n, err)
	}
	if v, _ := mm.LoadU32(a); v != 5 {
		t.Errorf("WAKE_OP ADD 5 on a fresh page left %d, want 5", v)
	}
}

func TestRobustFutexDeath(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	const w = robustFutexWaiters
	tests := []struct {
		name      string
		word      uint32
		pi, pend  bool
		wantWord  uint32
		wantWoken bool
	}{
		{"owned, waiters", 1 | w, false, false, robustFutexOwnerDied | w, true},
		{"owned, no waiters", 1, false, false, robustFutexOwnerDied, false},
		{"owned PI, waiters: woken by the PI code", 1 | w, true, false, robustFutexOwnerDied | w, false},
		{"owned by another thread", 2 | w, false, false, 2 | w, false},
		{"pending op, unowned", 0, false, true, 0, true},
		{"unowned, not pending", 0, false, false, 0, false},
	}
	for _, tc := range tests {
		mm.StoreU32(dataAddr+16, tc.word)
		done := futexWaitAsync(t2, dataAddr+16, false, tc.word, futexBitsetMatchAny, nil)
		waitFutexWaiters(t, mm, dataAddr+16, false, 1)
		t1.robustFutexDeath(dataAddr+16, tc.pi, tc.pend)
		if got, _ := mm.LoadU32(dataAddr + 16); got != tc.wantWord {
			t.Errorf("%s: word %#x, want %#x", tc.name, got, tc.wantWord)
		}
		woken := true
		if n, _ := futexWakeAddr(mm, dataAddr+16, false, 1, futexBitsetMatchAny); n == 1 {
			woken = false // still waiting: the test's own wake released it
		}
		if woken != tc.wantWoken {
			t.Errorf("%s: waiter woken %v, want %v", tc.name, woken, tc.wantWoken)
		}
		<-done
	}
}
