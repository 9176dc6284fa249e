package kernel

import (
	"encoding/binary"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Clocks of the sandbox (Linux: kernel/time/posix-timers.c,
// posix-cpu-timers.c; clock_gettime(2)).
//
// The wall clocks are the host's: CLOCK_MONOTONIC inside the sandbox is
// the host's CLOCK_MONOTONIC, so that timestamps agree with anything a
// future vDSO reads from the host. It is computed from Go's monotonic
// clock (itself the host's CLOCK_MONOTONIC read through the vDSO) plus the
// offset captured at start-up, which keeps the hot clocks free of host
// system calls. The CPU-time clocks come from the kernel's own accounting
// (task_run.go): a task's time inside Platform.Switch is user time, its
// time in the kernel and not blocked is system time.

const (
	nsPerSec  = int64(time.Second)
	nsPerUsec = int64(time.Microsecond)

	// userHZ is USER_HZ, the unit of clock_t in times(2) and /proc
	// (Linux: include/asm-generic/param.h).
	userHZ = 100
	// tickNsec is the length of a scheduler tick, the resolution Linux
	// reports for tick-based clocks (TICK_NSEC with CONFIG_HZ=250,
	// Debian's and most distributions' choice).
	tickNsec = int64(time.Second / 250)
)

// CPU-time clock IDs encode a PID and a clock type (Linux:
// include/linux/posix-timers_types.h, MAKE_PROCESS_CPUCLOCK and
// MAKE_THREAD_CPUCLOCK): ~pid << 3 | perthread << 2 | which.
const (
	cpuClockProf          = 0 // user + system time
	cpuClockVirt          = 1 // user time
	cpuClockSched         = 2 // run time (user + system here)
	cpuClockMax           = 3
	cpuClockPerThreadMask = 4
	cpuClockClockMask     = 3
)

// makeProcessCPUClock is MAKE_PROCESS_CPUCLOCK.
func makeProcessCPUClock(pid int32, which int32) int32 { return ^pid<<3 | which }

// makeThreadCPUClock is MAKE_THREAD_CPUCLOCK.
func makeThreadCPUClock(tid int32, which int32) int32 {
	return makeProcessCPUClock(tid, which|cpuClockPerThreadMask)
}

// Host clock offsets captured at start-up, relative to Go's monotonic
// clock (see clockBase).
var (
	goBase = time.Now()
	// monoBase is the host's CLOCK_MONOTONIC at goBase.
	monoBase = hostClockNS(unix.CLOCK_MONOTONIC, goBase)
	// bootOffset is CLOCK_BOOTTIME - CLOCK_MONOTONIC: the time the host
	// spent suspended before start-up.
	bootOffset = hostClockNS(unix.CLOCK_BOOTTIME, goBase) - monoBase
	// taiOffset is CLOCK_TAI - CLOCK_REALTIME (whole seconds; 0 unless
	// the host's time daemon set it with adjtimex).
	taiOffset = (hostClockNS(unix.CLOCK_TAI, goBase) - hostClockNS(unix.CLOCK_REALTIME, goBase) + nsPerSec/2) / nsPerSec * nsPerSec
	// coarseRes is the resolution of the *_COARSE clocks: one tick.
	coarseRes = hostClockRes(unix.CLOCK_MONOTONIC_COARSE, tickNsec)
)

// hostClockNS reads a host clock; on failure it returns the value Go's
// clock gives for the same instant.
func hostClockNS(id int32, fallback time.Time) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return fallback.UnixNano()
	}
	return ts.Nano()
}

// hostClockRes returns a host clock's resolution, or def.
func hostClockRes(id int32, def int64) int64 {
	var ts unix.Timespec
	if err := unix.ClockGetres(id, &ts); err != nil || ts.Nano() <= 0 {
		return def
	}
	return ts.Nano()
}

// monotonicNow is CLOCK_MONOTONIC in nanoseconds.
func monotonicNow() int64 { return monoBase + int64(time.Since(goBase)) }

// realtimeNow is CLOCK_REALTIME in nanoseconds since the epoch.
func realtimeNow() int64 { return time.Now().UnixNano() }

// kclock is a clock ID resolved for a caller: a wall clock, or the CPU
// clock of a process or thread.
type kclock struct {
	// id is the wall clock's ID (unused for CPU clocks).
	id int32
	// alarm: CLOCK_REALTIME_ALARM or CLOCK_BOOTTIME_ALARM. They need an
	// RTC device to wake a suspended system, which the sandbox lacks:
	// like Linux without one, they can be named but not used.
	alarm bool
	// cpu: a CPU-time clock of tg (process) or task (thread).
	cpu   bool
	which int32
	tg    *ThreadGroup
	task  *Task
}

// Wall clock IDs the sandbox knows.
func isWallClock(id int32) bool {
	switch id {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_MONOTONIC_RAW,
		unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME,
		unix.CLOCK_TAI:
		return true
	}
	return false
}

// resolveClock turns a clock ID into a kclock, with EINVAL for an
// unknown clock or a CPU clock of a task that does not exist (Linux:
// clockid_to_kclock() and posix-cpu-timers.c:pid_for_clock()). gettime is
// set for clock_gettime and clock_getres, which also accept a process
// CPU clock named by the PID of a thread that is not the leader.
func (t *Task) resolveClock(id int32, gettime bool) (kclock, error) {
	switch {
	case isWallClock(id):
		return kclock{id: id}, nil
	case id == unix.CLOCK_REALTIME_ALARM || id == unix.CLOCK_BOOTTIME_ALARM:
		return kclock{id: id, alarm: true}, nil
	case id == unix.CLOCK_PROCESS_CPUTIME_ID:
		return kclock{cpu: true, which: cpuClockSched, tg: t.tg}, nil
	case id == unix.CLOCK_THREAD_CPUTIME_ID:
		return kclock{cpu: true, which: cpuClockSched, task: t}, nil
	case id >= 0:
		return kclock{}, unix.EINVAL
	}
	which := id & cpuClockClockMask
	if which >= cpuClockMax {
		return kclock{}, unix.EINVAL
	}
	pid := ^(id >> 3)
	thread := id&cpuClockPerThreadMask != 0
	if pid == 0 {
		if thread {
			return kclock{cpu: true, which: which, task: t}, nil
		}
		return kclock{cpu: true, which: which, tg: t.tg}, nil
	}
	if thread {
		o := t.k.taskByTID(pid)
		if o == nil || o.tg != t.tg {
			return kclock{}, unix.EINVAL
		}
		return kclock{cpu: true, which: which, task: o}, nil
	}
	t.k.mu.Lock()
	tg := t.k.groups[pid]
	t.k.mu.Unlock()
	if tg == nil && gettime && pid == t.tid {
		tg = t.tg
	}
	if tg == nil {
		return kclock{}, unix.EINVAL
	}
	return kclock{cpu: true, which: which, tg: tg}, nil
}

// cpuNow returns a CPU clock's value. The accounting charges a task's
// system time when it next enters user code; when caller (the task whose
// goroutine runs this) is counted by the clock, its system time of the
// current system call is added, so that a thread reading its own clock
// sees it advance smoothly and never go back.
func (c kclock) cpuNow(caller *Task) int64 {
	var u, s time.Duration
	if c.task != nil {
		u, s = c.task.CPUTime()
	} else {
		u, s = c.tg.CPUTime()
	}
	if caller != nil && (caller == c.task || (c.task == nil && caller.tg == c.tg)) && !caller.lastAccount.IsZero() {
		if d := time.Since(caller.lastAccount) - caller.blockedSince; d > 0 {
			s += d
		}
	}
	if c.which == cpuClockVirt {
		return int64(u)
	}
	return int64(u + s)
}

// res returns the clock's resolution (clock_getres(2)).
func (c kclock) res() int64 {
	if c.cpu {
		// posix_cpu_clock_getres(): the scheduler clock is exact, the
		// others count in ticks.
		if c.which == cpuClockSched {
			return 1
		}
		return tickNsec
	}
	switch c.id {
	case unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE:
		return coarseRes
	}
	// High-resolution timers.
	return 1
}

// canSleep reports whether clock_nanosleep and timer_create accept the
// clock: Linux's k_clocks for MONOTONIC_RAW and the coarse clocks have
// neither nsleep nor timer_create, and the alarm clocks refuse both
// without an RTC (EOPNOTSUPP).
func (c kclock) canSleep() bool {
	if c.cpu {
		return true
	}
	if c.alarm {
		return false
	}
	switch c.id {
	case unix.CLOCK_MONOTONIC_RAW, unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE:
		return false
	}
	return true
}

// wallClockNow reads a wall clock in nanoseconds.
func wallClockNow(id int32) int64 {
	switch id {
	case unix.CLOCK_REALTIME, unix.CLOCK_REALTIME_COARSE:
		return realtimeNow()
	case unix.CLOCK_TAI:
		return realtimeNow() + taiOffset
	case unix.CLOCK_BOOTTIME:
		return monotonicNow() + bootOffset
	case unix.CLOCK_MONOTONIC_RAW:
		// Rarely used, and only the host knows its NTP-free rate.
		return hostClockNS(unix.CLOCK_MONOTONIC_RAW, time.Now())
	}
	return monotonicNow()
}

// untilWall returns how long from now a wall clock takes to reach at.
func untilWall(id int32, at int64) time.Duration {
	d := at - wallClockNow(id)
	if d < 0 {
		return 0
	}
	return time.Duration(d)
}

// Encoding of struct timespec and struct timeval (x86-64: two 64-bit
// fields each).

// timespecValid is timespec64_valid(): a non-negative time with tv_nsec
// in [0, 1e9).
func timespecValid(sec, nsec int64) bool { return sec >= 0 && nsec >= 0 && nsec < nsPerSec }

// timespecNS converts a valid timespec to nanoseconds, saturating like
// timespec64_to_ktime().
func timespecNS(sec, nsec int64) int64 {
	if sec >= math.MaxInt64/nsPerSec {
		return math.MaxInt64
	}
	return sec*nsPerSec + nsec
}

// addSafe is ktime_add_safe(): a sum that saturates instead of wrapping.
func addSafe(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// readTimespec reads a struct timespec; it returns EINVAL if it is not
// valid and its value in nanoseconds otherwise.
func (t *Task) readTimespec(addr uint64) (int64, error) {
	var b [16]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return 0, err
	}
	sec, nsec := int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[8:]))
	if !timespecValid(sec, nsec) {
		return 0, unix.EINVAL
	}
	return timespecNS(sec, nsec), nil
}

// putTimespec encodes ns as a struct timespec into b.
func putTimespec(b []byte, ns int64) {
	binary.LittleEndian.PutUint64(b[0:], uint64(ns/nsPerSec))
	binary.LittleEndian.PutUint64(b[8:], uint64(ns%nsPerSec))
}

// writeTimespec writes ns as a struct timespec.
func (t *Task) writeTimespec(addr uint64, ns int64) error {
	var b [16]byte
	putTimespec(b[:], ns)
	return t.CopyOut(addr, b[:])
}

// readTimeval reads a struct timeval; it returns EINVAL if it is not
// valid (timeval_valid()) and its value in nanoseconds otherwise.
func (t *Task) readTimeval(addr uint64) (int64, error) {
	var b [16]byte
	if err := t.CopyIn(addr, b[:]); err != nil {
		return 0, err
	}
	return timevalNS(b[:])
}

// timevalNS decodes a struct timeval, with EINVAL if it is not valid.
func timevalNS(b []byte) (int64, error) {
	sec, usec := int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[8:]))
	if sec < 0 || usec < 0 || usec >= nsPerSec/nsPerUsec {
		return 0, unix.EINVAL
	}
	return timespecNS(sec, usec*nsPerUsec), nil
}

// putTimeval encodes ns as a struct timeval (microseconds truncated, as
// Linux's ns_to_kernel_old_timeval() does for non-negative times).
func putTimeval(b []byte, ns int64) {
	binary.LittleEndian.PutUint64(b[0:], uint64(ns/nsPerSec))
	binary.LittleEndian.PutUint64(b[8:], uint64(ns%nsPerSec/nsPerUsec))
}

// writeTimeval writes ns as a struct timeval.
func (t *Task) writeTimeval(addr uint64, ns int64) error {
	var b [16]byte
	putTimeval(b[:], ns)
	return t.CopyOut(addr, b[:])
}

// nsToClockT converts nanoseconds to clock ticks of USER_HZ.
func nsToClockT(ns int64) int64 { return ns / (nsPerSec / userHZ) }
