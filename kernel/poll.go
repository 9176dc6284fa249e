package kernel

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

// poll(2) and ppoll(2) (Linux: fs/select.c).

func init() {
	register(unix.SYS_POLL, "poll", sysPoll, argHex, argInt, argInt)
	register(unix.SYS_PPOLL, "ppoll", sysPpoll, argHex, argInt, argHex, argHex, argInt)
}

// pollFDSize is sizeof(struct pollfd).
const pollFDSize = 8

// pollFD is struct pollfd.
type pollFD struct {
	fd      int32
	events  uint16
	revents uint16
	// sel: select(2)'s rules: events are exactly what counts (no
	// implicit POLLERR|POLLHUP), and a closed fd is not reported.
	sel bool
}

// sysPoll implements poll(2). A negative timeout waits forever. A signal
// handler makes it EINTR; without one it resumes through
// restart_syscall(2) with the time that was left (Linux: sys_poll() and
// do_restart_poll()).
func sysPoll(t *Task, a *syscallArgs) (uint64, error) {
	addr, nfds, ms := a.u(0), uint32(a.u(1)), a.int(2)
	var deadline time.Time
	if ms >= 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	return pollRestartable(t, addr, nfds, ms >= 0, deadline)
}

// pollRestartable polls, arranging for restart_syscall(2) to go on until
// the same deadline when a signal interrupts with no handler to run.
func pollRestartable(t *Task, addr uint64, nfds uint32, timed bool, deadline time.Time) (uint64, error) {
	n, err := doPoll(t, addr, nfds, timed, deadline)
	if err == ERESTARTNOHAND {
		t.restart = func(t *Task) (uint64, error) {
			return pollRestartable(t, addr, nfds, timed, deadline)
		}
		return 0, ERESTART_RESTARTBLOCK
	}
	return n, err
}

// sysPpoll implements ppoll(2): a timespec timeout (NULL waits forever)
// that is updated with the time left, Linux-style, and a signal mask in
// force during the wait. Interrupted, it returns ERESTARTNOHAND: without
// a handler it restarts with the updated timeout (Linux: sys_ppoll(),
// poll_select_finish()).
func sysPpoll(t *Task, a *syscallArgs) (uint64, error) {
	addr, nfds := a.u(0), uint32(a.u(1))
	return waitTimespecMasked(t, a.u(2), a.u(3), a.u(4), func(timed bool, deadline time.Time) (uint64, error) {
		return doPoll(t, addr, nfds, timed, deadline)
	})
}

// waitTimespecMasked is the part ppoll(2) and pselect6(2) share: the
// timespec timeout at tsAddr (0: wait forever; EINVAL when malformed),
// the signal mask at maskAddr (0: none) in force during wait, and the
// time left written back unless the timeout was zero. A restart whose
// time left cannot be stored would wait the whole time again, so it
// becomes EINTR (Linux: poll_select_finish()).
func waitTimespecMasked(t *Task, tsAddr, maskAddr, maskSize uint64, wait func(timed bool, deadline time.Time) (uint64, error)) (uint64, error) {
	timed := tsAddr != 0
	var deadline time.Time
	// A zero timeout is not written back (Linux: poll_select_finish()).
	zeroTimeout := false
	if timed {
		ts, err := t.copyInTimespec(tsAddr)
		if err != nil {
			return 0, err
		}
		if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
			return 0, unix.EINVAL
		}
		deadline = timespecDeadline(ts)
		zeroTimeout = ts.Sec == 0 && ts.Nsec == 0
	}
	if maskAddr != 0 {
		mask, err := t.copyInSigset(maskAddr, maskSize)
		if err != nil {
			return 0, err
		}
		t.setWaitSigMask(mask)
	}
	n, err := wait(timed, deadline)
	if maskAddr != 0 {
		t.endWaitSigMask(err == ERESTARTNOHAND)
	}
	if timed && !zeroTimeout {
		if cerr := t.copyOutTimeLeft(tsAddr, deadline); cerr != nil && err == ERESTARTNOHAND {
			return 0, unix.EINTR
		}
	}
	return n, err
}

// timespecDeadline returns now + ts, saturating far in the future.
func timespecDeadline(ts unix.Timespec) time.Time {
	const maxSec = 1 << 33 // about 272 years: a wait no program sees end
	if ts.Sec > maxSec {
		ts.Sec = maxSec
	}
	return time.Now().Add(time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec))
}

// copyOutTimeLeft stores the time until deadline, 0 once passed.
func (t *Task) copyOutTimeLeft(addr uint64, deadline time.Time) error {
	left := max(time.Until(deadline), 0)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(left/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(left%time.Second))
	return t.CopyOut(addr, b[:])
}

// setWaitSigMask puts mask in force for a wait (ppoll, pselect6, epoll_pwait)
// and arranges for the old one to come back after it (Linux:
// kernel/signal.c:set_user_sigmask()).
func (t *Task) setWaitSigMask(mask SignalSet) {
	h := t.sigLock()
	t.savedMask = t.sigMask
	t.restoreMask = true
	t.setSigMaskLocked(mask)
	h.mu.Unlock()
}

// endWaitSigMask restores the mask saved by setWaitSigMask, except after
// an interruption: the mask stays until signal delivery, so that a signal
// that only the wait's mask unblocked runs its handler, whose frame saves
// the old mask (Linux: restore_saved_sigmask_unless()).
func (t *Task) endWaitSigMask(interrupted bool) {
	if interrupted {
		return
	}
	h := t.sigLock()
	if t.restoreMask {
		t.restoreMask = false
		t.setSigMaskLocked(t.savedMask)
	}
	h.mu.Unlock()
}

// doPoll implements the common part of poll(2) and ppoll(2) (Linux:
// fs/select.c:do_sys_poll()): with timed, it waits until deadline at
// most. A signal is ERESTARTNOHAND, reported only when no descriptor is
// ready.
func doPoll(t *Task, addr uint64, nfds uint32, timed bool, deadline time.Time) (uint64, error) {
	if uint64(nfds) > t.tg.limits.Get(unix.RLIMIT_NOFILE).Cur {
		return 0, unix.EINVAL
	}
	raw := make([]byte, int(nfds)*pollFDSize)
	if nfds > 0 {
		if err := t.CopyIn(addr, raw); err != nil {
			return 0, err
		}
	}
	pfds := make([]pollFD, nfds)
	for i := range pfds {
		b := raw[i*pollFDSize:]
		pfds[i] = pollFD{
			fd:     int32(binary.LittleEndian.Uint32(b[0:])),
			events: binary.LittleEndian.Uint16(b[4:]),
		}
	}
	n, err := pollWait(t, pfds, timed, deadline)
	if err != nil {
		return 0, err
	}
	for i := range pfds {
		binary.LittleEndian.PutUint16(raw[i*pollFDSize+6:], pfds[i].revents)
	}
	if nfds > 0 {
		if err := t.CopyOut(addr, raw); err != nil {
			return 0, err
		}
	}
	return uint64(n), nil
}

// pollWait fills in the revents of pfds and returns how many are
// non-zero, waiting until one is, the deadline passes (timed), or a
// signal comes (ERESTARTNOHAND). After the deadline it looks once more,
// as Linux's do_poll() does.
func pollWait(t *Task, pfds []pollFD, timed bool, deadline time.Time) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	timedOut := timed && !time.Now().Before(deadline)
	files := make([]File, len(pfds))
	for {
		// Look first without registering: a ready descriptor costs no
		// registration (a host file's is a goroutine and an eventfd).
		n := pollScan(t, pfds, files, nil)
		pollRelease(files, nil)
		if n > 0 || timedOut {
			return n, nil
		}
		// Register, then look again: a change between the first look
		// and the registration must not be missed.
		w := NewWaiter()
		if n = pollScan(t, pfds, files, w); n > 0 {
			pollRelease(files, w)
			return n, nil
		}
		var tc <-chan time.Time
		if timed {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			}
			tc = timer.C
		}
		err := t.BlockUntil(w.C, tc)
		pollRelease(files, w)
		switch err {
		case ErrInterrupted:
			return 0, ERESTARTNOHAND
		case ErrTimedOut:
			timedOut = true
		}
	}
}

// pollScan computes every revents, registering w (when not nil) with each
// file, whose reference it keeps in files (Linux: do_pollfd()). A
// negative fd is skipped; a closed one is POLLNVAL.
func pollScan(t *Task, pfds []pollFD, files []File, w *Waiter) int {
	n := 0
	for i := range pfds {
		p := &pfds[i]
		p.revents = 0
		if p.fd < 0 {
			continue
		}
		f := t.getFile(int(p.fd))
		if f == nil {
			if !p.sel {
				p.revents = unix.POLLNVAL
				n++
			}
			continue
		}
		files[i] = f
		mask := uint32(p.events)
		if !p.sel {
			// POLLERR and POLLHUP are reported whether asked for or
			// not.
			mask |= unix.POLLERR | unix.POLLHUP
		}
		if w != nil {
			f.EventRegister(w, mask)
		}
		if ev := f.Readiness(mask) & mask; ev != 0 {
			p.revents = uint16(ev)
			n++
		}
	}
	return n
}

// pollRelease undoes pollScan's registrations and references.
func pollRelease(files []File, w *Waiter) {
	for i, f := range files {
		if f == nil {
			continue
		}
		if w != nil {
			f.EventUnregister(w)
		}
		f.DecRef()
		files[i] = nil
	}
}
