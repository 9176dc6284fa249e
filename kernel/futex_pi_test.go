package kernel

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const piAddr = dataAddr + 256

// lockPIAsync runs FUTEX_LOCK_PI for t in a goroutine.
func lockPIAsync(t *Task, dl *futexDeadline) <-chan error {
	done := make(chan error, 1)
	go func() { done <- futexLockPI(t, piAddr, true, dl, false) }()
	return done
}

func TestFutexPIHandOver(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	word := func() uint32 { v, _ := mm.LoadU32(piAddr); return v }
	if err := futexLockPI(t1, piAddr, true, nil, false); err != nil || word() != 1 {
		t.Fatalf("LOCK_PI of a free word: %v, word %#x; want nil, 1", err, word())
	}
	if err := futexLockPI(t1, piAddr, true, nil, false); err != unix.EDEADLK {
		t.Errorf("LOCK_PI by the owner: %v, want EDEADLK", err)
	}
	if err := futexLockPI(t2, piAddr, true, nil, true); err != unix.EAGAIN || word() != 1 {
		t.Errorf("TRYLOCK_PI of a held lock: %v, word %#x; want EAGAIN, 1", err, word())
	}
	past := &futexDeadline{clock: unix.CLOCK_REALTIME, at: realtimeNow() - int64(time.Second)}
	if err := futexLockPI(t2, piAddr, true, past, false); err != unix.ETIMEDOUT {
		t.Errorf("LOCK_PI with an expired deadline: %v, want ETIMEDOUT", err)
	}
	if err := futexUnlockPI(t2, piAddr, true); err != unix.EPERM {
		t.Errorf("UNLOCK_PI by a non-owner: %v, want EPERM", err)
	}

	done := lockPIAsync(t2, nil)
	waitFutexWaiters(t, mm, piAddr, true, 1)
	if w := word(); w != robustFutexWaiters|1 {
		t.Errorf("word with a waiter: %#x, want FUTEX_WAITERS|1", w)
	}
	if _, err := futexWakeAddr(mm, piAddr, true, 1, futexBitsetMatchAny); err != unix.EINVAL {
		t.Errorf("FUTEX_WAKE of a PI waiter: %v, want EINVAL", err)
	}
	if err := futexUnlockPI(t1, piAddr, true); err != nil {
		t.Fatalf("UNLOCK_PI: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v, want the lock", err)
	}
	if w := word(); w != robustFutexWaiters|2 {
		t.Errorf("word after the hand-over: %#x, want FUTEX_WAITERS|2", w)
	}
	if err := futexUnlockPI(t2, piAddr, true); err != nil || word() != 0 {
		t.Errorf("UNLOCK_PI without waiters: %v, word %#x; want nil, 0", err, word())
	}
}

func TestFutexPIOwnerGone(t *testing.T) {
	t1, t2 := newThreadPair(t)
	mm := t1.mm
	mm.StoreU32(piAddr, 4242)
	if err := futexLockPI(t1, piAddr, true, nil, false); err != unix.ESRCH {
		t.Errorf("LOCK_PI of a dead owner's word: %v, want ESRCH", err)
	}
	// An owner dying with waiters hands the lock over, keeping the
	// OWNER_DIED mark that the robust list walk set.
	mm.StoreU32(piAddr, 0)
	if err := futexLockPI(t1, piAddr, true, nil, false); err != nil {
		t.Fatal(err)
	}
	done := lockPIAsync(t2, nil)
	waitFutexWaiters(t, mm, piAddr, true, 1)
	t1.robustFutexDeath(piAddr, true, false)
	t1.exitPIFutexes()
	if err := <-done; err != nil {
		t.Fatalf("waiter of a dead owner: %v, want the lock", err)
	}
	if w, _ := mm.LoadU32(piAddr); w != robustFutexOwnerDied|robustFutexWaiters|2 {
		t.Errorf("word after the owner's death: %#x, want OWNER_DIED|WAITERS|2", w)
	}
	if n := futexPIWaiters.Load(); n != 0 {
		t.Errorf("%d PI waiters still counted", n)
	}
}
