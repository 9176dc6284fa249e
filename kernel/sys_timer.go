package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// Interval timers and POSIX timers (Linux: kernel/time/itimer.c,
// posix-timers.c; setitimer(2), alarm(2), timer_create(2),
// timer_settime(2), timer_getoverrun(2), timer_delete(2)).

func init() {
	register(unix.SYS_GETITIMER, "getitimer", sysGetitimer, argInt, argHex)
	register(unix.SYS_SETITIMER, "setitimer", sysSetitimer, argInt, argHex, argHex)
	register(unix.SYS_ALARM, "alarm", sysAlarm, argInt)
	register(unix.SYS_TIMER_CREATE, "timer_create", sysTimerCreate, argInt, argHex, argHex)
	register(unix.SYS_TIMER_SETTIME, "timer_settime", sysTimerSettime, argInt, argInt, argHex, argHex)
	register(unix.SYS_TIMER_GETTIME, "timer_gettime", sysTimerGettime, argInt, argHex)
	register(unix.SYS_TIMER_GETOVERRUN, "timer_getoverrun", sysTimerGetoverrun, argInt)
	register(unix.SYS_TIMER_DELETE, "timer_delete", sysTimerDelete, argInt)
}

// sigevent notification types (Linux: include/uapi/asm-generic/siginfo.h).
const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThread   = 2
	sigevThreadID = 4
)

// sigeventSize is sizeof(struct sigevent); sigev_value, sigev_signo,
// sigev_notify, then the union whose first int is sigev_notify_thread_id.
const sigeventSize = 64

// itimer returns interval timer which (ITIMER_REAL, ITIMER_VIRTUAL,
// ITIMER_PROF), creating it on first use, or nil once the process is dead.
func (tg *ThreadGroup) itimer(which int) *ktimer {
	ts := tg.timers()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.dead {
		return nil
	}
	if kt := ts.itimers[which]; kt != nil {
		return kt
	}
	// ITIMER_REAL counts CLOCK_MONOTONIC and sends SIGALRM; the others
	// count the process's user time (VIRTUAL) or user and system time
	// (PROF). All send SI_KERNEL signals to the process (Linux:
	// it_real_fn() and check_cpu_itimer(), with SEND_SIG_PRIV).
	var c kclock
	var sig unix.Signal
	switch which {
	case unix.ITIMER_REAL:
		c, sig = kclock{id: unix.CLOCK_MONOTONIC}, unix.SIGALRM
	case unix.ITIMER_VIRTUAL:
		c, sig = kclock{cpu: true, which: cpuClockVirt, tg: tg}, unix.SIGVTALRM
	default:
		c, sig = kclock{cpu: true, which: cpuClockProf, tg: tg}, unix.SIGPROF
	}
	kt := &ktimer{clock: c}
	kt.fire = func(int64) {
		if !tg.alive() {
			kt.setLocked(0, 0)
			go tg.stopTimers()
			return
		}
		tg.SendSignal(&arch.SignalInfo{Signo: int32(sig), Code: arch.SI_KERNEL})
	}
	ts.itimers[which] = kt
	return kt
}

// getItimer returns the time left and the interval of an interval timer
// (Linux: do_getitimer()).
func (tg *ThreadGroup) getItimer(which int) (value, interval int64) {
	kt := tg.itimer(which)
	if kt == nil {
		return 0, 0
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	return kt.itimerRemainingLocked()
}

// itimerRemainingLocked is remainingLocked for an interval timer: an
// expiry that has passed but not fired yet reads as 1 us (ITIMER_REAL) or
// one tick (CPU timers).
//
// Preconditions: kt.mu is held.
func (kt *ktimer) itimerRemainingLocked() (value, interval int64) {
	almostDue := nsPerUsec
	if kt.clock.cpu {
		almostDue = tickNsec
	}
	return kt.remainingLocked(almostDue)
}

// setItimer arms interval timer which to fire after value (0 disarms) and
// then every interval, and returns its previous setting (Linux:
// do_setitimer()).
func (tg *ThreadGroup) setItimer(which int, value, interval int64) (oldValue, oldInterval int64) {
	kt := tg.itimer(which)
	if kt == nil {
		return 0, 0
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	oldValue, oldInterval = kt.itimerRemainingLocked()
	if value == 0 {
		kt.setLocked(0, 0)
	} else {
		kt.setLocked(addSafe(kt.clock.now(), value), interval)
	}
	return oldValue, oldInterval
}

// putItimerval encodes a struct itimerval: it_interval, then it_value.
func putItimerval(value, interval int64) []byte {
	b := make([]byte, 32)
	putTimeval(b[0:], interval)
	putTimeval(b[16:], value)
	return b
}

// sysGetitimer implements getitimer(2).
func sysGetitimer(t *Task, a *syscallArgs) (uint64, error) {
	which := a.int(0)
	if which < unix.ITIMER_REAL || which > unix.ITIMER_PROF {
		return 0, unix.EINVAL
	}
	v, i := t.tg.getItimer(which)
	return 0, t.CopyOut(a.u(1), putItimerval(v, i))
}

// sysSetitimer implements setitimer(2). A NULL new value disarms the
// timer, a misfeature Linux keeps.
func sysSetitimer(t *Task, a *syscallArgs) (uint64, error) {
	var value, interval int64
	if p := a.u(1); p != 0 {
		var b [32]byte
		if err := t.CopyIn(p, b[:]); err != nil {
			return 0, err
		}
		var err error
		if interval, err = timevalNS(b[0:]); err != nil {
			return 0, err
		}
		if value, err = timevalNS(b[16:]); err != nil {
			return 0, err
		}
	}
	which := a.int(0)
	if which < unix.ITIMER_REAL || which > unix.ITIMER_PROF {
		return 0, unix.EINVAL
	}
	ov, oi := t.tg.setItimer(which, value, interval)
	if p := a.u(2); p != 0 {
		if err := t.CopyOut(p, putItimerval(ov, oi)); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// sysAlarm implements alarm(2): ITIMER_REAL in whole seconds. It returns
// the seconds left of the previous alarm, rounded to the nearest and never
// 0 while one was pending (Linux: alarm_setitimer()).
func sysAlarm(t *Task, a *syscallArgs) (uint64, error) {
	secs := int64(uint32(a.u(0)))
	old, _ := t.tg.setItimer(unix.ITIMER_REAL, secs*nsPerSec, 0)
	sec, nsec := old/nsPerSec, old%nsPerSec
	if (sec == 0 && nsec != 0) || nsec >= nsPerSec/2 {
		sec++
	}
	return uint64(sec), nil
}

// lookupTimer returns the process's POSIX timer id, or nil.
func (tg *ThreadGroup) lookupTimer(id int32) *posixTimer {
	ts := tg.timers()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.posix[id]
}

// sysTimerCreate implements timer_create(2).
func sysTimerCreate(t *Task, a *syscallArgs) (uint64, error) {
	c, err := t.resolveClock(int32(a.int(0)), false)
	if err != nil {
		return 0, err
	}
	if !c.canSleep() {
		return 0, unix.EOPNOTSUPP
	}
	pt := &posixTimer{tg: t.tg, notify: sigevSignal, signo: int32(unix.SIGALRM)}
	defaultValue := true
	if p := a.u(1); p != 0 {
		var b [sigeventSize]byte
		if err := t.CopyIn(p, b[:]); err != nil {
			return 0, err
		}
		pt.value = binary.LittleEndian.Uint64(b[0:])
		pt.signo = int32(binary.LittleEndian.Uint32(b[8:]))
		pt.notify = int32(binary.LittleEndian.Uint32(b[12:]))
		defaultValue = false
		// Linux: good_sigevent().
		switch pt.notify {
		case sigevSignal | sigevThreadID:
			tid := int32(binary.LittleEndian.Uint32(b[16:]))
			o := t.k.taskByTID(tid)
			if o == nil || o.tg != t.tg {
				return 0, unix.EINVAL
			}
			pt.target = o
			fallthrough
		case sigevSignal, sigevThread:
			// SIGEV_THREAD is the C library's business: the kernel
			// sends the signal it names.
			if pt.signo <= 0 || pt.signo > numSignals {
				return 0, unix.EINVAL
			}
		case sigevNone:
		default:
			return 0, unix.EINVAL
		}
	}
	pt.kt = &ktimer{clock: c, passive: pt.notify == sigevNone}
	pt.kt.fire = pt.fire

	ts := t.tg.timers()
	ts.mu.Lock()
	if ts.dead {
		ts.mu.Unlock()
		return 0, unix.EINVAL
	}
	id, ok := ts.allocIDLocked()
	if !ok {
		ts.mu.Unlock()
		return 0, unix.EAGAIN
	}
	pt.id = id
	if defaultValue {
		pt.value = uint64(id)
	}
	ts.posix[id] = pt
	ts.mu.Unlock()

	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	if err := t.CopyOut(a.u(2), b[:]); err != nil {
		ts.mu.Lock()
		delete(ts.posix, id)
		ts.mu.Unlock()
		return 0, err
	}
	return 0, nil
}

// allocIDLocked returns a free timer ID, the next after the last one
// handed out (Linux: posix_timer_add()).
//
// Preconditions: ts.mu is held.
func (ts *tgTimers) allocIDLocked() (int32, bool) {
	for range 1 << 16 {
		id := ts.nextID
		ts.nextID++
		if ts.nextID < 0 {
			ts.nextID = 0
		}
		if _, used := ts.posix[id]; !used {
			return id, true
		}
	}
	return 0, false
}

// putItimerspec encodes a struct itimerspec: it_interval, then it_value.
func putItimerspec(value, interval int64) []byte {
	b := make([]byte, 32)
	putTimespec(b[0:], interval)
	putTimespec(b[16:], value)
	return b
}

// getLocked returns the POSIX timer's time left and interval (Linux:
// common_timer_get()): a signalling timer past its expiry but not yet
// fired reads 1 ns; a SIGEV_NONE timer is moved forward as it is read.
//
// Preconditions: pt.kt.mu is held.
func (pt *posixTimer) getLocked() (value, interval int64) {
	kt := pt.kt
	if kt.passive && kt.expiry != 0 {
		if now := kt.clock.now(); now >= kt.expiry {
			if kt.interval > 0 {
				kt.forwardLocked(now)
			} else {
				return 0, kt.interval
			}
		}
	}
	return kt.remainingLocked(1)
}

// sysTimerSettime implements timer_settime(2).
func sysTimerSettime(t *Task, a *syscallArgs) (uint64, error) {
	p := a.u(2)
	if p == 0 {
		return 0, unix.EINVAL
	}
	var b [32]byte
	if err := t.CopyIn(p, b[:]); err != nil {
		return 0, err
	}
	interval, value := int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[16:]))
	iNsec, vNsec := int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[24:]))
	if !timespecValid(interval, iNsec) || !timespecValid(value, vNsec) {
		return 0, unix.EINVAL
	}
	interval, value = timespecNS(interval, iNsec), timespecNS(value, vNsec)
	pt := t.tg.lookupTimer(int32(a.int(0)))
	if pt == nil {
		return 0, unix.EINVAL
	}
	kt := pt.kt
	kt.mu.Lock()
	ov, oi := pt.getLocked()
	// A new setting starts a new count of overruns; a signal of the old
	// one that is still pending stays so.
	pt.info, pt.lastOverrun = nil, 0
	switch {
	case value == 0:
		kt.setLocked(0, 0)
	case a.int(1)&unix.TIMER_ABSTIME != 0:
		kt.setLocked(value, interval)
	default:
		kt.setLocked(addSafe(kt.clock.now(), value), interval)
	}
	kt.mu.Unlock()
	if old := a.u(3); old != 0 {
		if err := t.CopyOut(old, putItimerspec(ov, oi)); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// sysTimerGettime implements timer_gettime(2).
func sysTimerGettime(t *Task, a *syscallArgs) (uint64, error) {
	pt := t.tg.lookupTimer(int32(a.int(0)))
	if pt == nil {
		return 0, unix.EINVAL
	}
	pt.kt.mu.Lock()
	v, i := pt.getLocked()
	pt.kt.mu.Unlock()
	return 0, t.CopyOut(a.u(1), putItimerspec(v, i))
}

// sysTimerGetoverrun implements timer_getoverrun(2): the overruns of the
// timer's last signal delivered.
func sysTimerGetoverrun(t *Task, a *syscallArgs) (uint64, error) {
	pt := t.tg.lookupTimer(int32(a.int(0)))
	if pt == nil {
		return 0, unix.EINVAL
	}
	pt.kt.mu.Lock()
	defer pt.kt.mu.Unlock()
	return uint64(pt.overrunLocked()), nil
}

// sysTimerDelete implements timer_delete(2).
//
// TODO(ringbox): a signal of the timer that is still pending stays
// pending; recent Linux drops it.
func sysTimerDelete(t *Task, a *syscallArgs) (uint64, error) {
	id := int32(a.int(0))
	ts := t.tg.timers()
	ts.mu.Lock()
	pt := ts.posix[id]
	delete(ts.posix, id)
	ts.mu.Unlock()
	if pt == nil {
		return 0, unix.EINVAL
	}
	pt.stop()
	return 0, nil
}
