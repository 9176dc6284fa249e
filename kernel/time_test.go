package kernel

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

func TestResolveClock(t *testing.T) {
	t1, t2 := newThreadPair(t)
	tests := []struct {
		name    string
		id      int32
		gettime bool
		wantErr error
		wantCPU bool
		task    *Task
		tg      *ThreadGroup
		which   int32
	}{
		{"REALTIME", unix.CLOCK_REALTIME, true, nil, false, nil, nil, 0},
		{"TAI", unix.CLOCK_TAI, true, nil, false, nil, nil, 0},
		{"unknown", 12, true, unix.EINVAL, false, nil, nil, 0},
		{"unknown large", 99, true, unix.EINVAL, false, nil, nil, 0},
		{"PROCESS_CPUTIME_ID", unix.CLOCK_PROCESS_CPUTIME_ID, true, nil, true, nil, t1.tg, cpuClockSched},
		{"THREAD_CPUTIME_ID", unix.CLOCK_THREAD_CPUTIME_ID, true, nil, true, t1, nil, cpuClockSched},
		{"own process by pid", makeProcessCPUClock(1, cpuClockProf), true, nil, true, nil, t1.tg, cpuClockProf},
		{"self process, pid 0", makeProcessCPUClock(0, cpuClockVirt), true, nil, true, nil, t1.tg, cpuClockVirt},
		{"other thread", makeThreadCPUClock(2, cpuClockSched), true, nil, true, t2, nil, cpuClockSched},
		{"self thread, tid 0", makeThreadCPUClock(0, cpuClockSched), true, nil, true, t1, nil, cpuClockSched},
		{"bad CPU clock type", makeProcessCPUClock(1, 3), true, unix.EINVAL, false, nil, nil, 0},
		{"no such process", makeProcessCPUClock(4242, cpuClockSched), true, unix.EINVAL, false, nil, nil, 0},
		{"no such thread", makeThreadCPUClock(4242, cpuClockSched), true, unix.EINVAL, false, nil, nil, 0},
		{"thread's pid for the process clock", makeProcessCPUClock(2, cpuClockSched), true, unix.EINVAL, false, nil, nil, 0},
	}
	for _, tc := range tests {
		c, err := t1.resolveClock(tc.id, tc.gettime)
		if err != tc.wantErr {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if c.cpu != tc.wantCPU || c.task != tc.task || c.tg != tc.tg || (c.cpu && c.which != tc.which) {
			t.Errorf("%s: got %+v, want cpu %v task %p tg %p which %d", tc.name, c, tc.wantCPU, tc.task, tc.tg, tc.which)
		}
	}
	// Only the calling thread's own PID names its process when it is not
	// the leader (clock_gettime's exception in pid_for_clock()).
	if c, err := t2.resolveClock(makeProcessCPUClock(2, cpuClockSched), true); err != nil || c.tg != t2.tg {
		t.Errorf("process clock by the caller's own TID: %+v, %v", c, err)
	}
	if _, err := t2.resolveClock(makeProcessCPUClock(2, cpuClockSched), false); err != unix.EINVAL {
		t.Errorf("timer on a process clock named by a TID: %v, want EINVAL", err)
	}
}

func TestCPUClocksFollowAccounting(t *testing.T) {
	t1, _ := newThreadPair(t)
	t1.utime.Add(int64(3 * time.Millisecond))
	t1.stime.Add(int64(2 * time.Millisecond))
	t1.tg.utime.Add(int64(7 * time.Millisecond))
	t1.tg.stime.Add(int64(4 * time.Millisecond))
	tests := []struct {
		c    kclock
		want time.Duration
	}{
		{kclock{cpu: true, which: cpuClockSched, task: t1}, 5 * time.Millisecond},
		{kclock{cpu: true, which: cpuClockVirt, task: t1}, 3 * time.Millisecond},
		{kclock{cpu: true, which: cpuClockProf, tg: t1.tg}, 11 * time.Millisecond},
		{kclock{cpu: true, which: cpuClockVirt, tg: t1.tg}, 7 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := time.Duration(tc.c.now()); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.c, got, tc.want)
		}
	}
	// The caller's system time in the current call counts for itself.
	t1.lastAccount = time.Now().Add(-time.Second)
	c := kclock{cpu: true, which: cpuClockSched, task: t1}
	if got := time.Duration(c.cpuNow(t1)); got < time.Second {
		t.Errorf("own thread clock during a call: got %v, want at least 1s", got)
	}
	if got := time.Duration(c.cpuNow(nil)); got != 5*time.Millisecond {
		t.Errorf("thread clock read by the timer engine: got %v, want 5ms", got)
	}
}

func TestTimespecConversions(t *testing.T) {
	valid := []struct {
		sec, nsec int64
		ok        bool
	}{
		{0, 0, true}, {1, 999999999, true}, {-1, 0, false}, {0, -1, false}, {0, 1e9, false},
	}
	for _, tc := range valid {
		if got := timespecValid(tc.sec, tc.nsec); got != tc.ok {
			t.Errorf("timespecValid(%d, %d) = %v, want %v", tc.sec, tc.nsec, got, tc.ok)
		}
	}
	if got := timespecNS(math.MaxInt64, 0); got != math.MaxInt64 {
		t.Errorf("timespecNS of a huge time = %d, want saturation", got)
	}
	if got := addSafe(math.MaxInt64-1, 5); got != math.MaxInt64 {
		t.Errorf("addSafe overflow = %d, want saturation", got)
	}
	var b [16]byte
	putTimeval(b[:], 3*nsPerSec+456789)
	if sec, usec := binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:]); sec != 3 || usec != 456 {
		t.Errorf("putTimeval = %d s %d us, want 3 s 456 us", sec, usec)
	}
	binary.LittleEndian.PutUint64(b[8:], 1000000)
	if _, err := timevalNS(b[:]); err != unix.EINVAL {
		t.Errorf("timeval with tv_usec 1e6: %v, want EINVAL", err)
	}
	if got := nsToClockT(2*nsPerSec + 15*nsPerSec/1000); got != 201 {
		t.Errorf("nsToClockT(2.015 s) = %d, want 201", got)
	}
}

func TestTimeSyscallErrnos(t *testing.T) {
	const kernelHalf = 0xffff800000000000
	bad := uint64(dataAddr + 16) // a timespec with tv_nsec = 1e9
	neg := uint64(dataAddr + 32) // tv_sec = -1
	zero := uint64(dataAddr + 48)
	self := uint64(uint32(makeThreadCPUClock(0, cpuClockSched)))
	const anyTicks = math.MinInt64 // times: any non-negative tick count
	tests := []struct {
		name string
		call []uint64
		want int64
	}{
		{"clock_getres NULL", []uint64{unix.SYS_CLOCK_GETRES, unix.CLOCK_MONOTONIC, 0}, 0},
		{"clock_getres unknown", []uint64{unix.SYS_CLOCK_GETRES, 77, dataAddr}, errno(unix.EINVAL)},
		{"clock_gettime CPU clock", []uint64{unix.SYS_CLOCK_GETTIME, unix.CLOCK_PROCESS_CPUTIME_ID, dataAddr}, 0},
		{"clock_gettime fault", []uint64{unix.SYS_CLOCK_GETTIME, unix.CLOCK_REALTIME, 8}, errno(unix.EFAULT)},
		{"clock_settime", []uint64{unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, zero}, errno(unix.EPERM)},
		{"clock_settime MONOTONIC", []uint64{unix.SYS_CLOCK_SETTIME, unix.CLOCK_MONOTONIC, zero}, errno(unix.EINVAL)},
		{"clock_settime invalid", []uint64{unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, bad}, errno(unix.EINVAL)},
		{"gettimeofday", []uint64{unix.SYS_GETTIMEOFDAY, dataAddr, dataAddr + 64}, 0},
		{"gettimeofday fault", []uint64{unix.SYS_GETTIMEOFDAY, kernelHalf, 0}, errno(unix.EFAULT)},
		{"settimeofday", []uint64{unix.SYS_SETTIMEOFDAY, zero, 0}, errno(unix.EPERM)},
		{"time fault", []uint64{unix.SYS_TIME, kernelHalf}, errno(unix.EFAULT)},
		{"nanosleep zero", []uint64{unix.SYS_NANOSLEEP, zero, 0}, 0},
		{"nanosleep tv_nsec 1e9", []uint64{unix.SYS_NANOSLEEP, bad, 0}, errno(unix.EINVAL)},
		{"nanosleep negative", []uint64{unix.SYS_NANOSLEEP, neg, 0}, errno(unix.EINVAL)},
		{"nanosleep fault", []uint64{unix.SYS_NANOSLEEP, 8, 0}, errno(unix.EFAULT)},
		{"clock_nanosleep unknown clock", []uint64{unix.SYS_CLOCK_NANOSLEEP, 77, 0, zero, 0}, errno(unix.EINVAL)},
		{"clock_nanosleep MONOTONIC_RAW", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC_RAW, 0, zero, 0}, errno(unix.EOPNOTSUPP)},
		{"clock_nanosleep THREAD_CPUTIME_ID", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_THREAD_CPUTIME_ID, 0, zero, 0}, errno(unix.EOPNOTSUPP)},
		{"clock_nanosleep own thread clock", []uint64{unix.SYS_CLOCK_NANOSLEEP, self, 0, zero, 0}, errno(unix.EINVAL)},
		{"clock_nanosleep process CPU clock", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_PROCESS_CPUTIME_ID, 0, zero, 0}, 0},
		{"clock_nanosleep BOOTTIME_ALARM", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_BOOTTIME_ALARM, 0, zero, 0}, errno(unix.EOPNOTSUPP)},
		{"clock_gettime REALTIME_ALARM", []uint64{unix.SYS_CLOCK_GETTIME, unix.CLOCK_REALTIME_ALARM, dataAddr}, errno(unix.EINVAL)},
		{"clock_getres BOOTTIME_ALARM", []uint64{unix.SYS_CLOCK_GETRES, unix.CLOCK_BOOTTIME_ALARM, dataAddr}, errno(unix.EINVAL)},
		{"timer_create REALTIME_ALARM", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_REALTIME_ALARM, 0, dataAddr}, errno(unix.EOPNOTSUPP)},
		{"clock_nanosleep abs past", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_REALTIME, unix.TIMER_ABSTIME, zero, 0}, 0},
		{"clock_nanosleep invalid", []uint64{unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, 0, bad, 0}, errno(unix.EINVAL)},
		{"times NULL", []uint64{unix.SYS_TIMES, 0}, anyTicks},
		{"times fault", []uint64{unix.SYS_TIMES, kernelHalf}, errno(unix.EFAULT)},
		{"getrusage bad who", []uint64{unix.SYS_GETRUSAGE, 7, dataAddr}, errno(unix.EINVAL)},
		{"getrusage fault", []uint64{unix.SYS_GETRUSAGE, unix.RUSAGE_SELF, kernelHalf}, errno(unix.EFAULT)},
		{"getrusage children", []uint64{unix.SYS_GETRUSAGE, ^uint64(0), dataAddr}, 0},
		{"getrusage thread", []uint64{unix.SYS_GETRUSAGE, unix.RUSAGE_THREAD, dataAddr}, 0},
	}
	calls := make([][]uint64, len(tests))
	for i, tc := range tests {
		calls[i] = tc.call
	}
	got := runSyscalls(t, func(task *Task) {
		var b [64]byte
		putTimespec(b[0:], 0)
		binary.LittleEndian.PutUint64(b[16+8:], uint64(nsPerSec))
		binary.LittleEndian.PutUint64(b[32:], ^uint64(0))
		task.CopyOut(dataAddr, b[:])
	}, calls)
	if len(got) != len(tests) {
		t.Fatalf("got %d results, want %d", len(got), len(tests))
	}
	for i, tc := range tests {
		if tc.want == anyTicks {
			if got[i] < 0 {
				t.Errorf("%s: got %d, want a tick count", tc.name, got[i])
			}
			continue
		}
		if got[i] != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got[i], tc.want)
		}
	}
}

// interruptSoon sends SIGUSR1 to t a little later, while it sleeps. Were
// the signal to come first, the sleep would see it pending and return at
// once, with the same result.
func interruptSoon(t *Task) {
	go func() {
		time.Sleep(20 * time.Millisecond)
		t.SendSignal(&arch.SignalInfo{Signo: int32(unix.SIGUSR1), Code: arch.SI_USER})
	}()
}

// takeSignal dequeues the task's pending signal, as delivery would.
func takeSignal(t *Task) *arch.SignalInfo {
	h := t.sigLock()
	defer h.mu.Unlock()
	return t.dequeueSignalLocked(0)
}

func TestNanosleepRestart(t *testing.T) {
	t1, _ := newThreadPair(t)
	const req = 10 * time.Second
	start := monotonicNow()
	interruptSoon(t1)
	_, err := t1.sleepRelative(kclock{id: unix.CLOCK_MONOTONIC}, start+int64(req), dataAddr)
	if err != ERESTART_RESTARTBLOCK {
		t.Fatalf("interrupted nanosleep: %v, want ERESTART_RESTARTBLOCK", err)
	}
	var b [16]byte
	t1.CopyIn(dataAddr, b[:])
	left := time.Duration(binary.LittleEndian.Uint64(b[0:]))*time.Second + time.Duration(binary.LittleEndian.Uint64(b[8:]))
	if left <= 0 || left >= req {
		t.Errorf("remaining time %v, want in (0, %v)", left, req)
	}
	if t1.restart == nil {
		t.Fatal("no restart block set")
	}
	takeSignal(t1)
	// restart_syscall resumes towards the same deadline: interrupted
	// again, it reports the time left again.
	interruptSoon(t1)
	if _, err := t1.restart(t1); err != ERESTART_RESTARTBLOCK {
		t.Errorf("restarted sleep interrupted: %v, want ERESTART_RESTARTBLOCK", err)
	}
	takeSignal(t1)
	t1.restart = nil

	// An absolute sleep is restarted by the call itself.
	interruptSoon(t1)
	var a [16]byte
	putTimespec(a[:], monotonicNow()+int64(req))
	t1.CopyOut(dataAddr+16, a[:])
	args := syscallArgs{a: [6]uint64{unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, dataAddr + 16, 0}}
	if _, err := sysClockNanosleep(t1, &args); err != ERESTARTNOHAND {
		t.Errorf("interrupted absolute sleep: %v, want ERESTARTNOHAND", err)
	}
	if t1.restart != nil {
		t.Errorf("absolute sleep set a restart block")
	}
	takeSignal(t1)
}

func TestTimesAndGetrusageEncoding(t *testing.T) {
	t1, _ := newThreadPair(t)
	t1.tg.utime.Add(int64(2500 * time.Millisecond))
	t1.tg.stime.Add(int64(1 * time.Second))
	t1.tg.cutime.Add(int64(300 * time.Millisecond))
	t1.tg.cstime.Add(int64(20 * time.Millisecond))
	if _, err := sysTimes(t1, &syscallArgs{a: [6]uint64{dataAddr}}); err != nil {
		t.Fatal(err)
	}
	var b [32]byte
	t1.CopyIn(dataAddr, b[:])
	want := []uint64{250, 100, 30, 2}
	for i, w := range want {
		if got := binary.LittleEndian.Uint64(b[8*i:]); got != w {
			t.Errorf("tms field %d = %d, want %d", i, got, w)
		}
	}
	t1.mm.StoreU32(dataAddr+4096, 1) // make a page resident
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		if _, err := sysGetrusage(t1, &syscallArgs{a: [6]uint64{uint64(who), dataAddr}}); err != nil {
			t.Fatal(err)
		}
		var r [rusageSize]byte
		t1.CopyIn(dataAddr, r[:])
		usec := binary.LittleEndian.Uint64(r[8:])
		sec := binary.LittleEndian.Uint64(r[0:])
		maxRSS := binary.LittleEndian.Uint64(r[32:])
		switch who {
		case unix.RUSAGE_SELF:
			if sec != 2 || usec != 500000 || maxRSS == 0 {
				t.Errorf("RUSAGE_SELF: utime %d s %d us, maxrss %d; want 2 s 500000 us, maxrss > 0", sec, usec, maxRSS)
			}
		case unix.RUSAGE_CHILDREN:
			if sec != 0 || usec != 300000 {
				t.Errorf("RUSAGE_CHILDREN: utime %d s %d us, want 0 s 300000 us", sec, usec)
			}
		}
	}
}

// TestSleepOnProcessCPUClock sleeps on the process's CPU clock while
// another party charges CPU time to it.
func TestSleepOnProcessCPUClock(t *testing.T) {
	t1, _ := newThreadPair(t)
	c := kclock{cpu: true, which: cpuClockSched, tg: t1.tg}
	at := c.now() + int64(5*time.Millisecond)
	go func() {
		time.Sleep(10 * time.Millisecond)
		t1.tg.utime.Add(int64(6 * time.Millisecond))
	}()
	if err := t1.sleepUntil(c, at); err != nil {
		t.Fatalf("sleep on the process CPU clock: %v", err)
	}
	if now := c.now(); now < at {
		t.Errorf("woke at CPU time %d, before the deadline %d", now, at)
	}
}
