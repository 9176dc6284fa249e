package kernel

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel-internal errnos that ask for a system call to be restarted
// (Linux: include/linux/errno.h). They never reach the program: the
// signal-delivery step turns them into a restart or EINTR.
const (
	// ERESTARTSYS: restart if the handler has SA_RESTART (or no handler
	// runs), else EINTR.
	ERESTARTSYS = unix.Errno(512)
	// ERESTARTNOINTR: always restart.
	ERESTARTNOINTR = unix.Errno(513)
	// ERESTARTNOHAND: restart if no handler runs, else EINTR.
	ERESTARTNOHAND = unix.Errno(514)
	// ERESTART_RESTARTBLOCK: restart through restart_syscall(2) if no
	// handler runs, else EINTR.
	ERESTART_RESTARTBLOCK = unix.Errno(516)
)

// Errors of the blocking primitives.
var (
	// ErrInterrupted: a signal (or SIGKILL) arrived while blocked. The
	// syscall returns one of the ERESTART* errnos (or EINTR).
	ErrInterrupted = errors.New("interrupted by a signal")
	// ErrTimedOut: the deadline passed.
	ErrTimedOut = errors.New("timed out")
)

// Block waits until ch is readable or closed, or the task is interrupted
// (a signal it does not block, SIGKILL, the end of the sandbox). It holds
// no vCPU while it waits.
//
// Wakeups may be spurious (a signal already handled leaves a token):
// callers re-check their condition, and a syscall interrupted without a
// signal to deliver is restarted transparently.
func (t *Task) Block(ch <-chan struct{}) error {
	return t.BlockUntil(ch, nil)
}

// BlockUntil is Block with a timer; a nil timer never fires.
func (t *Task) BlockUntil(ch <-chan struct{}, timer <-chan time.Time) error {
	if t.interrupted() {
		return ErrInterrupted
	}
	defer t.beginBlocking()()
	select {
	case <-ch:
		return nil
	case <-t.interruptCh:
		return ErrInterrupted
	case <-timer:
		return ErrTimedOut
	}
}

// BlockTimeout is Block with a relative timeout; d <= 0 means forever.
func (t *Task) BlockTimeout(ch <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return t.Block(ch)
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	return t.BlockUntil(ch, tm.C)
}

// Sleep blocks for d, or until interrupted.
func (t *Task) Sleep(d time.Duration) error {
	if d <= 0 {
		if t.interrupted() {
			return ErrInterrupted
		}
		return nil
	}
	err := t.BlockTimeout(nil, d)
	if errors.Is(err, ErrTimedOut) {
		return nil
	}
	return err
}

// interrupted reports whether the task must leave a blocking wait now: it
// is being killed or has a pending signal it does not block.
func (t *Task) interrupted() bool {
	if t.killed.Load() {
		return true
	}
	return t.hasDeliverableSignal()
}

// wakeInterrupt posts a wake-up to a blocking wait of the task and makes
// user code (if running) return to the kernel.
func (t *Task) wakeInterrupt() {
	select {
	case t.interruptCh <- struct{}{}:
	default:
	}
	t.ctx.Interrupt()
}

// BlockKillable waits until ch is readable or closed, or the task is
// killed; other signals do not end the wait (Linux: TASK_KILLABLE).
func (t *Task) BlockKillable(ch <-chan struct{}) error {
	defer t.beginBlocking()()
	for {
		if t.killed.Load() {
			return ErrInterrupted
		}
		select {
		case <-ch:
			return nil
		case <-t.interruptCh:
		}
	}
}

// beginBlocking marks the task blocked and returns the function that ends
// the mark and charges the time to blockedSince (not system time).
func (t *Task) beginBlocking() func() {
	start := time.Now()
	t.blocking.Store(true)
	return func() {
		t.blocking.Store(false)
		t.blockedSince += time.Since(start)
	}
}
