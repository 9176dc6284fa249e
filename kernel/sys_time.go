package kernel

import (
	"golang.org/x/sys/unix"
)

func init() {
	register(unix.SYS_CLOCK_GETTIME, "clock_gettime", sysClockGettime, argInt, argHex)
	register(unix.SYS_CLOCK_GETRES, "clock_getres", sysClockGetres, argInt, argHex)
}

// hostClock maps a clock ID to the host clock that implements it.
//
// TODO(ringbox): CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID read
// the host thread's CPU time, which covers the task's time in guest mode
// on KVM but not the stub's on ptrace; exact per-task CPU accounting comes
// with the process model.
func hostClock(id int) (int32, bool) {
	switch id {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_MONOTONIC_RAW,
		unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME,
		unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM, unix.CLOCK_TAI:
		return int32(id), true
	case unix.CLOCK_PROCESS_CPUTIME_ID, unix.CLOCK_THREAD_CPUTIME_ID:
		return unix.CLOCK_THREAD_CPUTIME_ID, true
	}
	return 0, false
}

func sysClockGettime(t *Task, a *syscallArgs) (uint64, error) {
	id, ok := hostClock(a.int(0))
	if !ok {
		return 0, unix.EINVAL
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, err
	}
	return 0, t.CopyOut(a.u(1), timespecBytes(&ts))
}

func sysClockGetres(t *Task, a *syscallArgs) (uint64, error) {
	id, ok := hostClock(a.int(0))
	if !ok {
		return 0, unix.EINVAL
	}
	if a.u(1) == 0 {
		return 0, nil
	}
	var ts unix.Timespec
	if err := unix.ClockGetres(id, &ts); err != nil {
		return 0, err
	}
	return 0, t.CopyOut(a.u(1), timespecBytes(&ts))
}
