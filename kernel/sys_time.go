package kernel

import (
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// System calls that read clocks, sleep and report CPU usage (Linux:
// kernel/time/posix-timers.c, posix-stubs.c, hrtimer.c, time.c,
// kernel/sys.c).

func init() {
	register(unix.SYS_CLOCK_GETTIME, "clock_gettime", sysClockGettime, argInt, argHex)
	register(unix.SYS_CLOCK_GETRES, "clock_getres", sysClockGetres, argInt, argHex)
	register(unix.SYS_CLOCK_SETTIME, "clock_settime", sysClockSettime, argInt, argHex)
	register(unix.SYS_GETTIMEOFDAY, "gettimeofday", sysGettimeofday, argHex, argHex)
	register(unix.SYS_SETTIMEOFDAY, "settimeofday", sysSettimeofday, argHex, argHex)
	register(unix.SYS_TIME, "time", sysTime, argHex)
	register(unix.SYS_NANOSLEEP, "nanosleep", sysNanosleep, argHex, argHex)
	register(unix.SYS_CLOCK_NANOSLEEP, "clock_nanosleep", sysClockNanosleep, argInt, argHex, argHex, argHex)
	register(unix.SYS_TIMES, "times", sysTimes, argHex)
	register(unix.SYS_GETRUSAGE, "getrusage", sysGetrusage, argInt, argHex)
}

// sysClockGettime implements clock_gettime(2).
func sysClockGettime(t *Task, a *syscallArgs) (uint64, error) {
	c, err := t.resolveClock(int32(a.int(0)), true)
	if err != nil {
		return 0, err
	}
	if c.alarm {
		// Linux: alarm_clock_get_timespec() without an RTC.
		return 0, unix.EINVAL
	}
	var ns int64
	if c.cpu {
		ns = c.cpuNow(t)
	} else {
		ns = wallClockNow(c.id)
	}
	return 0, t.writeTimespec(a.u(1), ns)
}

// sysClockGetres implements clock_getres(2); a NULL res only validates
// the clock.
func sysClockGetres(t *Task, a *syscallArgs) (uint64, error) {
	c, err := t.resolveClock(int32(a.int(0)), true)
	if err != nil {
		return 0, err
	}
	if c.alarm {
		return 0, unix.EINVAL
	}
	if a.u(1) == 0 {
		return 0, nil
	}
	return 0, t.writeTimespec(a.u(1), c.res())
}

// sysClockSettime implements clock_settime(2). Only CLOCK_REALTIME (and
// the CPU clocks, which refuse) can be set, and only with CAP_SYS_TIME,
// which the sandbox never grants: the host's clock is not the program's
// to change.
func sysClockSettime(t *Task, a *syscallArgs) (uint64, error) {
	c, err := t.resolveClock(int32(a.int(0)), false)
	if err != nil {
		return 0, err
	}
	if !c.cpu && c.id != unix.CLOCK_REALTIME {
		return 0, unix.EINVAL
	}
	if _, err := t.readTimespec(a.u(1)); err != nil {
		return 0, err
	}
	return 0, unix.EPERM
}

// sysGettimeofday implements gettimeofday(2).
func sysGettimeofday(t *Task, a *syscallArgs) (uint64, error) {
	if tv := a.u(0); tv != 0 {
		if err := t.writeTimeval(tv, realtimeNow()); err != nil {
			return 0, err
		}
	}
	if tz := a.u(1); tz != 0 {
		// struct timezone: the kernel's sys_tz, which only
		// settimeofday sets; UTC with no DST correction, as on a host
		// whose clock runs in UTC.
		var b [8]byte
		if err := t.CopyOut(tz, b[:]); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// sysSettimeofday implements settimeofday(2): validated, then refused
// for want of CAP_SYS_TIME (Linux: do_sys_settimeofday64()).
func sysSettimeofday(t *Task, a *syscallArgs) (uint64, error) {
	if tv := a.u(0); tv != 0 {
		if _, err := t.readTimeval(tv); err != nil {
			return 0, err
		}
	}
	return 0, unix.EPERM
}

// sysTime implements time(2).
func sysTime(t *Task, a *syscallArgs) (uint64, error) {
	sec := realtimeNow() / nsPerSec
	if p := a.u(0); p != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(sec))
		if err := t.CopyOut(p, b[:]); err != nil {
			return 0, err
		}
	}
	return uint64(sec), nil
}

// sysNanosleep implements nanosleep(2): a relative sleep on
// CLOCK_MONOTONIC.
func sysNanosleep(t *Task, a *syscallArgs) (uint64, error) {
	ns, err := t.readTimespec(a.u(0))
	if err != nil {
		return 0, err
	}
	return t.sleepRelative(kclock{id: unix.CLOCK_MONOTONIC}, addSafe(monotonicNow(), ns), a.u(1))
}

// sysClockNanosleep implements clock_nanosleep(2). Like the system call
// (and unlike the glibc function) it returns errors as -errno.
func sysClockNanosleep(t *Task, a *syscallArgs) (uint64, error) {
	id := int32(a.int(0))
	c, err := t.resolveClock(id, false)
	if err != nil {
		return 0, err
	}
	if c.cpu {
		// posix_cpu_nsleep(): a thread cannot sleep on its own CPU
		// clock; CLOCK_THREAD_CPUTIME_ID has no nsleep at all.
		if id == unix.CLOCK_THREAD_CPUTIME_ID {
			return 0, unix.EOPNOTSUPP
		}
		if c.task == t {
			return 0, unix.EINVAL
		}
	} else if !c.canSleep() {
		return 0, unix.EOPNOTSUPP
	}
	ns, err := t.readTimespec(a.u(2))
	if err != nil {
		return 0, err
	}
	if a.int(1)&unix.TIMER_ABSTIME != 0 {
		if err := t.sleepUntil(c, ns); err != nil {
			// An absolute sleep needs no restart block: restarting
			// the call itself sleeps to the same time.
			return 0, ERESTARTNOHAND
		}
		return 0, nil
	}
	return t.sleepRelative(c, addSafe(c.now(), ns), a.u(3))
}

// sleepRelative sleeps until clock c reaches at for a relative sleep of
// nanosleep or clock_nanosleep. Interrupted, it stores the time left at
// rmtp (if not 0) and restarts through restart_syscall(2) towards the
// same deadline, unless a handler runs: then the call fails with EINTR
// (Linux: kernel/time/hrtimer.c:do_nanosleep() and
// hrtimer_nanosleep_restart(); posix-cpu-timers.c:do_cpu_nanosleep()).
func (t *Task) sleepRelative(c kclock, at int64, rmtp uint64) (uint64, error) {
	if err := t.sleepUntil(c, at); err == nil {
		return 0, nil
	}
	left := at - c.now()
	if left <= 0 {
		return 0, nil
	}
	if rmtp != 0 {
		if err := t.writeTimespec(rmtp, left); err != nil {
			return 0, unix.EFAULT
		}
	}
	t.restart = func(t *Task) (uint64, error) { return t.sleepRelative(c, at, rmtp) }
	return 0, ERESTART_RESTARTBLOCK
}

// sleepUntil blocks until clock c reaches at. It returns ErrInterrupted
// when a signal must be handled; a wake-up with nothing to handle goes
// back to sleep.
func (t *Task) sleepUntil(c kclock, at int64) error {
	if c.cpu {
		return t.sleepUntilCPU(c, at)
	}
	for {
		d := untilWall(c.id, at)
		if d <= 0 {
			return nil
		}
		tm := time.NewTimer(d)
		err := t.BlockUntil(nil, tm.C)
		tm.Stop()
		if errors.Is(err, ErrInterrupted) && t.interrupted() {
			return ErrInterrupted
		}
		// Timed out (Go's timers run on the monotonic clock, so a
		// CLOCK_REALTIME deadline is checked again) or a stale wake-up.
	}
}

// sleepUntilCPU is sleepUntil on a CPU-time clock of another thread or a
// process, which a kernel timer watches (see timers.go).
func (t *Task) sleepUntilCPU(c kclock, at int64) error {
	done := make(chan struct{})
	kt := &ktimer{clock: c}
	kt.fire = func(int64) { close(done) }
	kt.mu.Lock()
	kt.setLocked(at, 0)
	kt.mu.Unlock()
	defer func() {
		kt.mu.Lock()
		kt.setLocked(0, 0)
		kt.mu.Unlock()
	}()
	for {
		err := t.Block(done)
		if err == nil {
			return nil
		}
		if t.interrupted() {
			return ErrInterrupted
		}
	}
}

// groupCPUTime returns the user and system time of t's process,
// including the caller's system time in the current system call (see
// kclock.cpuNow).
func (t *Task) groupCPUTime() (user, sys int64) {
	c := kclock{cpu: true, which: cpuClockVirt, tg: t.tg}
	user = c.cpuNow(t)
	c.which = cpuClockProf
	return user, c.cpuNow(t) - user
}

// threadCPUTime is groupCPUTime for the calling thread alone.
func (t *Task) threadCPUTime() (user, sys int64) {
	c := kclock{cpu: true, which: cpuClockVirt, task: t}
	user = c.cpuNow(t)
	c.which = cpuClockProf
	return user, c.cpuNow(t) - user
}

// sysTimes implements times(2). The return value counts clock ticks of
// CLOCK_MONOTONIC.
//
// TODO(ringbox): Linux counts jiffies from INITIAL_JIFFIES (five minutes
// before wrap-around) rather than from boot; both are arbitrary origins.
func sysTimes(t *Task, a *syscallArgs) (uint64, error) {
	if p := a.u(0); p != 0 {
		u, s := t.groupCPUTime()
		var b [32]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(nsToClockT(u)))
		binary.LittleEndian.PutUint64(b[8:], uint64(nsToClockT(s)))
		binary.LittleEndian.PutUint64(b[16:], uint64(nsToClockT(t.tg.cutime.Load())))
		binary.LittleEndian.PutUint64(b[24:], uint64(nsToClockT(t.tg.cstime.Load())))
		if err := t.CopyOut(p, b[:]); err != nil {
			return 0, err
		}
	}
	return uint64(nsToClockT(monotonicNow())), nil
}

// sysGetrusage implements getrusage(2) (Linux: kernel/sys.c:getrusage()).
//
// TODO(ringbox): only the CPU times and ru_maxrss are reported; page
// fault, I/O, signal and context-switch counters are 0. ru_maxrss is the
// current resident size rather than its peak, and 0 for RUSAGE_CHILDREN.
func sysGetrusage(t *Task, a *syscallArgs) (uint64, error) {
	var u, s, maxRSS int64
	switch a.int(0) {
	case unix.RUSAGE_SELF:
		u, s = t.groupCPUTime()
		maxRSS = t.mm.residentKiB()
	case unix.RUSAGE_THREAD:
		u, s = t.threadCPUTime()
		maxRSS = t.mm.residentKiB()
	case unix.RUSAGE_CHILDREN:
		u, s = t.tg.cutime.Load(), t.tg.cstime.Load()
	default:
		return 0, unix.EINVAL
	}
	var b [rusageSize]byte
	putRusage(b[:], u, s, maxRSS)
	return 0, t.CopyOut(a.u(1), b[:])
}

// putRusage encodes a struct rusage (x86-64: two timevals, then 14
// longs starting with ru_maxrss) with the given CPU times in nanoseconds
// and maximum resident size in KiB; the other counters are 0.
func putRusage(b []byte, user, sys, maxRSSKiB int64) {
	clear(b[:rusageSize])
	putTimeval(b[0:], user)
	putTimeval(b[16:], sys)
	binary.LittleEndian.PutUint64(b[32:], uint64(maxRSSKiB))
}

// residentKiB returns the resident size of the address space in KiB.
func (mm *MemoryManager) residentKiB() int64 {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return int64(len(mm.pages)) * pageSize / 1024
}
