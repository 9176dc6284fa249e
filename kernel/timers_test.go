package kernel

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
)

// waitFor polls cond for up to 10 s: the timers under test fire from Go
// timers, and the test checks what they did, not when.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// groupPending returns the process-directed pending signal sig, or nil.
func groupPending(tg *ThreadGroup, sig unix.Signal) *arch.SignalInfo {
	h := tg.lockSignals()
	defer h.mu.Unlock()
	if l := tg.pending.infos[sig-1]; len(l) > 0 {
		return l[0]
	}
	return nil
}

func TestKtimerWallClock(t *testing.T) {
	fired := make(chan int64, 16)
	kt := &ktimer{clock: kclock{id: unix.CLOCK_MONOTONIC}}
	kt.fire = func(overrun int64) { fired <- overrun }

	kt.mu.Lock()
	kt.setLocked(monotonicNow()+int64(time.Millisecond), 0)
	kt.mu.Unlock()
	<-fired
	kt.mu.Lock()
	if v, _ := kt.remainingLocked(1); v != 0 || kt.expiry != 0 {
		t.Errorf("one-shot timer after firing: remaining %d, expiry %d; want disarmed", v, kt.expiry)
	}
	// Periodic: it keeps firing.
	kt.setLocked(monotonicNow()+int64(time.Millisecond), int64(time.Millisecond))
	kt.mu.Unlock()
	for range 3 {
		<-fired
	}
	kt.mu.Lock()
	if v, i := kt.remainingLocked(1); v <= 0 || i != int64(time.Millisecond) {
		t.Errorf("periodic timer: remaining %d, interval %d; want armed, 1 ms", v, i)
	}
	kt.setLocked(0, 0)
	kt.mu.Unlock()
}

func TestKtimerForwardCountsOverruns(t *testing.T) {
	kt := &ktimer{expiry: 100, interval: 10}
	tests := []struct {
		now, wantOverrun, wantExpiry int64
	}{
		{100, 0, 110}, // exactly due: the next period starts
		{135, 2, 140}, // 110 expired, 120 and 130 missed
		{140, 0, 150},
	}
	for _, tc := range tests {
		if got := kt.forwardLocked(tc.now); got != tc.wantOverrun || kt.expiry != tc.wantExpiry {
			t.Errorf("forward at %d: overrun %d, next %d; want %d, %d", tc.now, got, kt.expiry, tc.wantOverrun, tc.wantExpiry)
		}
	}
	one := &ktimer{expiry: 100}
	if got := one.forwardLocked(500); got != 0 || one.expiry != 0 {
		t.Errorf("one-shot forward: overrun %d, expiry %d; want 0, disarmed", got, one.expiry)
	}
}

// TestITimerVirtualFollowsCPUTime arms ITIMER_VIRTUAL and charges user
// time to the process by hand: the timer fires once the charged time
// reaches it, however long the wall clock took.
func TestITimerVirtualFollowsCPUTime(t *testing.T) {
	t1, _ := newThreadPair(t)
	tg := t1.tg
	tg.setItimer(unix.ITIMER_VIRTUAL, int64(5*time.Millisecond), 0)
	if v, _ := tg.getItimer(unix.ITIMER_VIRTUAL); v <= 0 || v > int64(5*time.Millisecond) {
		t.Errorf("armed ITIMER_VIRTUAL shows %d ns left, want (0, 5ms]", v)
	}
	// Long enough for the timer to look and find the time short.
	time.Sleep(20 * time.Millisecond)
	if groupPending(tg, unix.SIGVTALRM) != nil {
		t.Fatal("SIGVTALRM sent before any CPU time was used")
	}
	tg.utime.Add(int64(6 * time.Millisecond))
	waitFor(t, "SIGVTALRM", func() bool { return groupPending(tg, unix.SIGVTALRM) != nil })
	if info := groupPending(tg, unix.SIGVTALRM); info.Code != arch.SI_KERNEL {
		t.Errorf("SIGVTALRM si_code %d, want SI_KERNEL", info.Code)
	}
	if v, i := tg.getItimer(unix.ITIMER_VIRTUAL); v != 0 || i != 0 {
		t.Errorf("expired one-shot ITIMER_VIRTUAL: %d, %d; want disarmed", v, i)
	}
	tg.stopTimers()
}

func TestITimerRealAndAlarm(t *testing.T) {
	t1, _ := newThreadPair(t)
	tg := t1.tg
	alarm := func(s uint64) uint64 {
		r, err := sysAlarm(t1, &syscallArgs{a: [6]uint64{s}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct{ arg, want uint64 }{
		{5, 0}, // nothing pending
		{0, 5}, // 4.99 s left rounds to 5
		{0, 0}, // disarmed
	}
	for _, s := range steps {
		if got := alarm(s.arg); got != s.want {
			t.Errorf("alarm(%d) = %d, want %d", s.arg, got, s.want)
		}
	}
	ov, oi := tg.setItimer(unix.ITIMER_REAL, int64(time.Millisecond), 0)
	if ov != 0 || oi != 0 {
		t.Errorf("setitimer on a disarmed timer returned %d, %d", ov, oi)
	}
	waitFor(t, "SIGALRM", func() bool { return groupPending(tg, unix.SIGALRM) != nil })
	tg.stopTimers()
}

// TestPosixTimerOverrun arms a 1 ms periodic timer whose signal is
// blocked: one signal stays queued and counts the expirations it stands
// for, and timer_getoverrun reports them once it is taken.
func TestPosixTimerOverrun(t *testing.T) {
	t1, _ := newThreadPair(t)
	const sig = 40
	h := t1.sigLock()
	t1.sigMask |= SignalSetOf(sig)
	h.mu.Unlock()
	t1.tg.mu.Lock()
	t2 := t1.tg.tasks[2]
	t1.tg.mu.Unlock()
	h = t1.sigLock()
	t2.sigMask |= SignalSetOf(sig)
	h.mu.Unlock()

	var ev [sigeventSize]byte
	binary.LittleEndian.PutUint64(ev[0:], 1234)
	binary.LittleEndian.PutUint32(ev[8:], sig)
	binary.LittleEndian.PutUint32(ev[12:], sigevSignal)
	t1.CopyOut(dataAddr, ev[:])
	if _, err := sysTimerCreate(t1, &syscallArgs{a: [6]uint64{unix.CLOCK_MONOTONIC, dataAddr, dataAddr + 128}}); err != nil {
		t.Fatal(err)
	}
	idb := make([]byte, 4)
	t1.CopyIn(dataAddr+128, idb)
	id := uint64(binary.LittleEndian.Uint32(idb))

	var its [32]byte
	putTimespec(its[0:], int64(time.Millisecond))
	putTimespec(its[16:], int64(time.Millisecond))
	t1.CopyOut(dataAddr+256, its[:])
	if _, err := sysTimerSettime(t1, &syscallArgs{a: [6]uint64{id, 0, dataAddr + 256, 0}}); err != nil {
		t.Fatal(err)
	}
	pt := t1.tg.lookupTimer(int32(id))
	waitFor(t, "three overruns", func() bool {
		pt.kt.mu.Lock()
		defer pt.kt.mu.Unlock()
		h := t1.sigLock()
		defer h.mu.Unlock()
		return pt.info != nil && pt.info.Overrun() >= 3
	})
	overrun := func() int64 {
		r, err := sysTimerGetoverrun(t1, &syscallArgs{a: [6]uint64{id}})
		if err != nil {
			t.Fatal(err)
		}
		return int64(r)
	}
	if got := overrun(); got != 0 {
		t.Errorf("timer_getoverrun while the signal is pending = %d, want 0 (none delivered yet)", got)
	}
	info := takeSignal(t1)
	if info == nil || info.Signo != sig || info.Code != arch.SI_TIMER || info.Value() != 1234 {
		t.Fatalf("dequeued %+v, want signal %d SI_TIMER with value 1234", info, sig)
	}
	if info.Overrun() < 3 {
		t.Errorf("si_overrun = %d, want >= 3", info.Overrun())
	}
	if got := overrun(); got != int64(info.Overrun()) {
		t.Errorf("timer_getoverrun after delivery = %d, want si_overrun %d", got, info.Overrun())
	}
	if _, err := sysTimerDelete(t1, &syscallArgs{a: [6]uint64{id}}); err != nil {
		t.Errorf("timer_delete: %v", err)
	}
	if _, err := sysTimerGettime(t1, &syscallArgs{a: [6]uint64{id, dataAddr}}); err != unix.EINVAL {
		t.Errorf("timer_gettime of a deleted timer: %v, want EINVAL", err)
	}
}

func TestPosixTimerSigevNone(t *testing.T) {
	t1, _ := newThreadPair(t)
	pt := &posixTimer{tg: t1.tg, notify: sigevNone}
	pt.kt = &ktimer{clock: kclock{id: unix.CLOCK_MONOTONIC}, passive: true, fire: pt.fire}
	pt.kt.mu.Lock()
	defer pt.kt.mu.Unlock()
	now := monotonicNow()
	pt.kt.setLocked(now-10, 0)
	if v, _ := pt.getLocked(); v != 0 {
		t.Errorf("expired SIGEV_NONE one-shot shows %d left, want 0", v)
	}
	if pt.kt.gt != nil {
		t.Errorf("a SIGEV_NONE timer started a Go timer")
	}
	pt.kt.setLocked(now-int64(25*time.Millisecond), int64(10*time.Millisecond))
	if v, i := pt.getLocked(); v <= 0 || v > i {
		t.Errorf("expired SIGEV_NONE periodic timer shows %d left of %d, want in (0, interval]", v, i)
	}
}

func TestStopAndExecTimers(t *testing.T) {
	t1, _ := newThreadPair(t)
	tg := t1.tg
	tg.setItimer(unix.ITIMER_REAL, int64(time.Hour), 0)
	if _, err := sysTimerCreate(t1, &syscallArgs{a: [6]uint64{unix.CLOCK_REALTIME, 0, dataAddr}}); err != nil {
		t.Fatal(err)
	}
	tg.execTimers()
	if n := len(tg.timers().posix); n != 0 {
		t.Errorf("%d POSIX timers survived exec", n)
	}
	if v, _ := tg.getItimer(unix.ITIMER_REAL); v == 0 {
		t.Errorf("ITIMER_REAL did not survive exec")
	}
	kt := tg.itimer(unix.ITIMER_REAL)
	tg.stopTimers()
	if _, ok := threadGroupTimers.Load(tg); ok {
		t.Errorf("stopTimers left the group's timers in the table")
	}
	kt.mu.Lock()
	if kt.expiry != 0 || kt.gt != nil {
		t.Errorf("ITIMER_REAL still armed after stopTimers")
	}
	kt.mu.Unlock()
}

func TestTimerSyscallErrnos(t *testing.T) {
	ev := func(notify, signo, tid uint32) []byte {
		var b [sigeventSize]byte
		binary.LittleEndian.PutUint32(b[8:], signo)
		binary.LittleEndian.PutUint32(b[12:], notify)
		binary.LittleEndian.PutUint32(b[16:], tid)
		return b[:]
	}
	const evBase = dataAddr + 1024
	events := [][]byte{
		ev(sigevSignal, 40, 0),                 // 0: good
		ev(sigevSignal, 99, 0),                 // 1: bad signal
		ev(77, 40, 0),                          // 2: bad notify
		ev(sigevSignal|sigevThreadID, 40, 1),   // 3: own thread
		ev(sigevSignal|sigevThreadID, 40, 999), // 4: no such thread
		ev(sigevNone, 0, 0),                    // 5: SIGEV_NONE ignores the signal
	}
	evAt := func(i int) uint64 { return evBase + uint64(i)*sigeventSize }
	idAt := uint64(dataAddr + 4096)
	its := uint64(dataAddr + 8192) // it_value 1 s
	badIts := uint64(its + 32)     // tv_nsec 1e9
	tests := []struct {
		name string
		call []uint64
		want int64
	}{
		{"create", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(0), idAt}, 0},
		{"create NULL sigevent", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_REALTIME, 0, idAt}, 0},
		{"create CPU clock", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_PROCESS_CPUTIME_ID, evAt(0), idAt}, 0},
		{"create unknown clock", []uint64{unix.SYS_TIMER_CREATE, 77, evAt(0), idAt}, errno(unix.EINVAL)},
		{"create MONOTONIC_RAW", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC_RAW, evAt(0), idAt}, errno(unix.EOPNOTSUPP)},
		{"create bad signal", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(1), idAt}, errno(unix.EINVAL)},
		{"create bad notify", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(2), idAt}, errno(unix.EINVAL)},
		{"create THREAD_ID", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(3), idAt}, 0},
		{"create THREAD_ID no such thread", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(4), idAt}, errno(unix.EINVAL)},
		{"create SIGEV_NONE", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(5), idAt}, 0},
		{"create sigevent fault", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, 8, idAt}, errno(unix.EFAULT)},
		{"create id fault", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(0), 8}, errno(unix.EFAULT)},
		{"settime", []uint64{unix.SYS_TIMER_SETTIME, 0, 0, its, idAt}, 0},
		{"settime NULL", []uint64{unix.SYS_TIMER_SETTIME, 0, 0, 0, 0}, errno(unix.EINVAL)},
		{"settime invalid", []uint64{unix.SYS_TIMER_SETTIME, 0, 0, badIts, 0}, errno(unix.EINVAL)},
		{"settime unknown id", []uint64{unix.SYS_TIMER_SETTIME, 12345, 0, its, 0}, errno(unix.EINVAL)},
		{"gettime", []uint64{unix.SYS_TIMER_GETTIME, 0, idAt}, 0},
		{"gettime fault", []uint64{unix.SYS_TIMER_GETTIME, 0, 8}, errno(unix.EFAULT)},
		{"getoverrun", []uint64{unix.SYS_TIMER_GETOVERRUN, 0}, 0},
		{"getoverrun unknown id", []uint64{unix.SYS_TIMER_GETOVERRUN, 12345}, errno(unix.EINVAL)},
		{"delete", []uint64{unix.SYS_TIMER_DELETE, 0}, 0},
		{"delete again", []uint64{unix.SYS_TIMER_DELETE, 0}, errno(unix.EINVAL)},
		{"IDs increase", []uint64{unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC, evAt(0), idAt}, 0},
		{"getitimer bad which", []uint64{unix.SYS_GETITIMER, 3, dataAddr}, errno(unix.EINVAL)},
		{"getitimer fault", []uint64{unix.SYS_GETITIMER, unix.ITIMER_REAL, 8}, errno(unix.EFAULT)},
		{"setitimer bad which", []uint64{unix.SYS_SETITIMER, 7, its, 0}, errno(unix.EINVAL)},
		{"setitimer tv_usec 1e6", []uint64{unix.SYS_SETITIMER, unix.ITIMER_REAL, badIts, 0}, errno(unix.EINVAL)},
		{"setitimer NULL disarms", []uint64{unix.SYS_SETITIMER, unix.ITIMER_REAL, 0, 0}, 0},
	}
	calls := make([][]uint64, len(tests))
	for i, tc := range tests {
		calls[i] = tc.call
	}
	got := runSyscalls(t, func(task *Task) {
		for i, e := range events {
			task.CopyOut(evAt(i), e)
		}
		var b [64]byte
		putTimespec(b[16:], nsPerSec)
		binary.LittleEndian.PutUint64(b[32+8:], 1000000)
		binary.LittleEndian.PutUint64(b[32+24:], uint64(nsPerSec))
		task.CopyOut(its, b[:])
		// Keep the tests' timers from outliving the run.
		t.Cleanup(task.tg.stopTimers)
	}, append(calls, []uint64{unix.SYS_TIMER_GETOVERRUN, 6}))
	if len(got) != len(tests)+1 {
		t.Fatalf("got %d results, want %d", len(got), len(tests)+1)
	}
	for i, tc := range tests {
		if got[i] != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got[i], tc.want)
		}
	}
	// IDs 0 to 4 went to the first five timers, 5 to the one whose ID
	// could not be stored, and 0, deleted, is not reused at once: the
	// last timer got 6.
	if got[len(tests)] != 0 {
		t.Errorf("timer 6 (the last created): getoverrun %d, want 0", got[len(tests)])
	}
}

// TestTimerOfDeadGroupCleansUp arms a timer of a group that is exiting,
// as if the exit path had not called stopTimers: the timer sends nothing
// and the group's timers are forgotten.
func TestTimerOfDeadGroupCleansUp(t *testing.T) {
	t1, _ := newThreadPair(t)
	tg := t1.tg
	tg.mu.Lock()
	tg.exiting = true
	tg.mu.Unlock()
	tg.setItimer(unix.ITIMER_REAL, int64(time.Millisecond), int64(time.Millisecond))
	waitFor(t, "the dead group's timers to go", func() bool {
		_, ok := threadGroupTimers.Load(tg)
		return !ok
	})
	if groupPending(tg, unix.SIGALRM) != nil {
		t.Errorf("SIGALRM queued for an exiting group")
	}
}
