package vmm

import (
	"golang.org/x/sys/unix"
)

// kickSignal is the signal that knocks a thread out of KVM_RUN. SIGURG is
// the signal the Go runtime itself uses for asynchronous preemption: its
// handler is installed on every thread, tolerates spurious deliveries and
// is not restarted into KVM_RUN (KVM returns EINTR, which SA_RESTART does
// not restart). Any other signal would need a handler of ringbox's own
// installed with care not to disturb the runtime's.
const kickSignal = unix.SIGURG

// enter records that the holder of v, on OS thread tid, runs ctx in a.
// From now on kicks (Interrupt, TLB shootdowns) reach it.
func (v *vcpu) enter(ctx *context, a *addressSpace, tid int) {
	v.kickMu.Lock()
	v.kickCtx, v.kickAS, v.tid = ctx, a, tid
	v.kickMu.Unlock()
}

// leave ends what enter began and wakes shootdowns waiting for v.
func (v *vcpu) leave() {
	v.kickMu.Lock()
	v.kickCtx, v.kickAS, v.tid = nil, nil, 0
	v.run.setImmediateExit(false)
	v.kickCond.Broadcast()
	v.kickMu.Unlock()
}

// ranOnce is called each time KVM_RUN returns: it clears immediate_exit
// (a kick that lands after this is seen by the caller's checks before the
// next KVM_RUN: Interrupt's pending flag, the address space generation)
// and wakes shootdowns waiting for the vCPU to leave the guest.
func (v *vcpu) ranOnce() {
	v.kickMu.Lock()
	v.run.setImmediateExit(false)
	v.runSeq++
	v.kickCond.Broadcast()
	v.kickMu.Unlock()
}

// kickLocked makes the vCPU's current or next KVM_RUN return EINTR at once.
//
// Preconditions: v.kickMu is held and v.tid is a thread in Switch.
func (v *vcpu) kickLocked() {
	v.run.setImmediateExit(true)
	// ESRCH cannot happen: the thread is locked in Switch (LockOSThread)
	// until leave, which needs kickMu. Any other error is a bug.
	if err := unix.Tgkill(unix.Getpid(), v.tid, kickSignal); err != nil {
		panic("vmm: tgkill of a vCPU thread: " + err.Error())
	}
	v.stats.kicks.Add(1)
}

// kick interrupts ctx if it runs on v.
func (v *vcpu) kick(ctx *context) {
	v.kickMu.Lock()
	if v.kickCtx == ctx {
		v.kickLocked()
	}
	v.kickMu.Unlock()
}

// kickAndWait kicks v out of the guest if it runs a, and waits until it
// has left KVM_RUN (or stopped running a). Its next entry then sees a's new
// generation and flushes.
func (v *vcpu) kickAndWait(a *addressSpace) {
	v.kickMu.Lock()
	defer v.kickMu.Unlock()
	if v.kickAS != a {
		return
	}
	seq := v.runSeq
	v.kickLocked()
	v.stats.shootdowns.Add(1)
	for v.kickAS == a && v.runSeq == seq {
		v.kickCond.Wait()
	}
}

// kickASLoaded returns the address space v runs now, or nil; for tests.
func (v *vcpu) kickASLoaded() *addressSpace {
	v.kickMu.Lock()
	defer v.kickMu.Unlock()
	return v.kickAS
}

// neverRan reports whether the vCPU has not run yet (its state is KVM's
// reset state).
func (v *vcpu) neverRan() bool {
	v.kickMu.Lock()
	defer v.kickMu.Unlock()
	return v.runSeq == 0
}
