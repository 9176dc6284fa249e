package kernel

import (
	"math"
	"sync"
	"time"

	"github.com/ringbox/ringbox/arch"
)

// Kernel timers: the engine under setitimer(2), alarm(2) and the POSIX
// timers of timer_create(2) (Linux: kernel/time/hrtimer.c,
// posix-cpu-timers.c). Each armed timer is one Go timer (time.AfterFunc)
// set for its next expiry, never a goroutine per tick.
//
// Timers on wall clocks fire from Go's timer. Timers on CPU-time clocks
// sleep for the least wall time in which the clock can reach their expiry
// (the CPU time left, divided among the threads that may consume it), then
// read the clock, counting the current stint in user mode of each thread
// (Task.userSince), and fire or sleep again. The kernel's preemption tick
// (sched.go) bounds how long a thread stays in user mode, so no stint goes
// uncounted for long. Linux instead checks CPU timers on every scheduler
// tick of a running task.
//
// Lock order: ktimer.mu before the siglock and ThreadGroup.mu (a timer
// sends its signal with its lock held).

// minTimerPeriod bounds how often one timer's Go timer fires: expiries of
// a shorter interval are counted as overruns rather than run one by one,
// so a 1 ns periodic timer cannot spin a host CPU.
const minTimerPeriod = 50 * time.Microsecond

// A CPU-clock timer that is not due yet looks again after at least
// cpuTimerRecheck, doubled each time the clock has not moved (its threads
// are blocked), up to cpuTimerRecheck << cpuTimerMaxBackoff: an idle
// process's timer costs a few wake-ups a second, and fires at most that
// late once the process runs again.
//
// TODO(ringbox): Linux checks CPU timers on each tick of a running
// thread, so they are never later than a tick.
const (
	cpuTimerRecheck    = time.Millisecond
	cpuTimerMaxBackoff = 7
)

// ktimer is a one-shot or periodic timer on a kclock (Linux: struct
// hrtimer, struct cpu_timer).
type ktimer struct {
	clock kclock
	// passive timers never fire: a SIGEV_NONE POSIX timer only counts
	// down, and is read by timer_gettime.
	passive bool
	// fire runs, with mu held, when the timer expires; overrun counts
	// the further intervals that elapsed unnoticed.
	fire func(overrun int64)

	mu sync.Mutex
	// expiry is the next expiry on the clock, 0 when disarmed.
	// Protected by mu.
	expiry int64
	// interval is the period, 0 for a one-shot timer. Protected by mu.
	interval int64
	// gen identifies the current Go timer: callbacks of stopped ones
	// see a different value and do nothing. Protected by mu.
	gen uint64
	// gt is the pending Go timer. Protected by mu.
	gt *time.Timer
	// lastCheck is the clock's value at the last early look, and
	// backoff how many looks in a row found it unchanged (CPU clocks).
	// Protected by mu.
	lastCheck int64
	backoff   int
}

// setLocked arms the timer for expiry (0 disarms) with interval.
//
// Preconditions: kt.mu is held.
func (kt *ktimer) setLocked(expiry, interval int64) {
	kt.stopLocked()
	kt.expiry, kt.interval = expiry, interval
	if expiry != 0 && !kt.passive {
		kt.startLocked(kt.delayLocked(kt.clock.now()))
	}
}

// stopLocked cancels the pending Go timer.
//
// Preconditions: kt.mu is held.
func (kt *ktimer) stopLocked() {
	if kt.gt != nil {
		kt.gt.Stop()
		kt.gt = nil
	}
	kt.gen++
}

// startLocked sets the Go timer to look at the timer after d.
//
// Preconditions: kt.mu is held.
func (kt *ktimer) startLocked(d time.Duration) {
	kt.gen++
	gen := kt.gen
	kt.gt = time.AfterFunc(d, func() { kt.expire(gen) })
}

// delayLocked returns the wall time after which the clock may have
// reached the expiry, now being its current value.
//
// Preconditions: kt.mu is held.
func (kt *ktimer) delayLocked(now int64) time.Duration {
	left := kt.expiry - now
	if left <= 0 {
		return 0
	}
	if kt.clock.cpu {
		left /= kt.clock.threads()
	}
	return time.Duration(left)
}

// expire is the Go timer's callback.
func (kt *ktimer) expire(gen uint64) {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	if gen != kt.gen || kt.expiry == 0 {
		return
	}
	kt.gt = nil
	now := kt.clock.now()
	if now < kt.expiry {
		// A CPU clock still short, or CLOCK_REALTIME behind Go's
		// monotonic timer: look again when it may be due.
		d := kt.delayLocked(now)
		if kt.clock.cpu {
			if now == kt.lastCheck {
				kt.backoff = min(kt.backoff+1, cpuTimerMaxBackoff)
			} else {
				kt.backoff = 0
			}
			kt.lastCheck = now
			d = max(d, cpuTimerRecheck<<kt.backoff)
		}
		kt.startLocked(d)
		return
	}
	overrun := kt.forwardLocked(now)
	if kt.expiry != 0 {
		kt.startLocked(max(kt.delayLocked(now), minTimerPeriod))
	}
	kt.fire(overrun)
}

// forwardLocked moves an expired timer past now: a periodic one to its
// next expiry, returning the intervals skipped beyond the one that
// expired (Linux: hrtimer_forward()); a one-shot one is disarmed.
//
// Preconditions: kt.mu is held; kt.expiry != 0 and kt.expiry <= now.
func (kt *ktimer) forwardLocked(now int64) int64 {
	if kt.interval <= 0 {
		kt.expiry = 0
		return 0
	}
	overrun := (now - kt.expiry) / kt.interval
	kt.expiry = addSafe(kt.expiry, mulSafe(overrun+1, kt.interval))
	if kt.expiry == math.MaxInt64 {
		// Beyond the end of time: it will never fire again.
		kt.expiry = 0
	}
	return overrun
}

// mulSafe multiplies non-negative a and b, saturating.
func mulSafe(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// remainingLocked returns the time left to the next expiry (0 when
// disarmed) and the interval. An armed timer whose expiry has passed but
// that has not fired yet reports almostDue.
//
// Preconditions: kt.mu is held.
func (kt *ktimer) remainingLocked(almostDue int64) (left, interval int64) {
	if kt.expiry == 0 {
		return 0, kt.interval
	}
	left = kt.expiry - kt.clock.now()
	if left <= 0 {
		left = almostDue
	}
	return left, kt.interval
}

// threads returns how many threads can consume a CPU clock's time at
// once.
func (c kclock) threads() int64 {
	if c.task != nil {
		return 1
	}
	c.tg.mu.Lock()
	defer c.tg.mu.Unlock()
	return max(int64(len(c.tg.tasks)), 1)
}

// now returns the clock's value for timers and sleeps: a CPU clock also
// counts the threads' current stints in user mode, which the accounting
// charges only when they end. It may briefly read less than a moment
// before, when a stint ends and before it is charged, which only delays a
// timer's check; clock_gettime, which must never go back, uses cpuNow.
func (c kclock) now() int64 {
	if !c.cpu {
		return wallClockNow(c.id)
	}
	v := c.cpuNow(nil)
	now := time.Now().UnixNano()
	stint := func(t *Task) {
		if since := t.userSince.Load(); since != 0 && now > since {
			v += now - since
		}
	}
	if c.task != nil {
		stint(c.task)
		return v
	}
	c.tg.mu.Lock()
	defer c.tg.mu.Unlock()
	for _, t := range c.tg.tasks {
		stint(t)
	}
	return v
}

// tgTimers are a process's timers: the interval timers of setitimer(2)
// and the POSIX timers (Linux: struct signal_struct's real_timer,
// it[] and posix_timers).
type tgTimers struct {
	mu sync.Mutex
	// itimers are ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF, created on
	// first use. Protected by mu.
	itimers [3]*ktimer
	// posix are the POSIX timers by ID. Protected by mu.
	posix map[int32]*posixTimer
	// nextID is where the search for a free timer ID starts (Linux
	// hands IDs out in increasing order). Protected by mu.
	nextID int32
	// dead: the process has exited; nothing may be armed. Protected by
	// mu.
	dead bool
}

// threadGroupTimers maps each ThreadGroup with timers to its tgTimers.
//
// TODO(ringbox): a field of ThreadGroup would do without the map; it
// lives here while task.go belongs to another change.
var threadGroupTimers sync.Map

// timers returns the process's timers, creating them on first use.
func (tg *ThreadGroup) timers() *tgTimers {
	if v, ok := threadGroupTimers.Load(tg); ok {
		return v.(*tgTimers)
	}
	v, _ := threadGroupTimers.LoadOrStore(tg, &tgTimers{posix: make(map[int32]*posixTimer)})
	return v.(*tgTimers)
}

// stopTimers cancels every timer of the process and forgets them: the
// process is gone (Linux: kernel/exit.c:do_exit() cancels real_timer and
// calls exit_itimers() when the group dies).
//
// It must be called once the last thread has left (or the group is
// being reaped), without holding ThreadGroup.mu or the siglock.
func (tg *ThreadGroup) stopTimers() {
	v, ok := threadGroupTimers.LoadAndDelete(tg)
	if !ok {
		return
	}
	ts := v.(*tgTimers)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.dead = true
	for _, kt := range ts.itimers {
		if kt != nil {
			kt.mu.Lock()
			kt.setLocked(0, 0)
			kt.mu.Unlock()
		}
	}
	for id, pt := range ts.posix {
		pt.stop()
		delete(ts.posix, id)
	}
}

// execTimers deletes the process's POSIX timers, which do not survive
// execve(2); interval timers and alarm(2) do (Linux: fs/exec.c:
// begin_new_exec() calls exit_itimers()).
//
// It must be called by exec once the other threads are gone, without
// holding ThreadGroup.mu or the siglock.
func (tg *ThreadGroup) execTimers() {
	v, ok := threadGroupTimers.Load(tg)
	if !ok {
		return
	}
	ts := v.(*tgTimers)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for id, pt := range ts.posix {
		pt.stop()
		delete(ts.posix, id)
	}
}

// alive reports whether the group can still receive timer signals. A
// timer that finds its group dead disarms itself and has the group's
// timers forgotten (stopTimers, on its own goroutine since the timer's
// lock is held), should the exit path not have done it yet.
func (tg *ThreadGroup) alive() bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return !tg.exiting && len(tg.tasks) > 0
}

// posixTimer is a timer_create(2) timer (Linux: struct k_itimer).
type posixTimer struct {
	id     int32
	tg     *ThreadGroup
	kt     *ktimer
	notify int32
	signo  int32
	value  uint64
	// target is the thread of SIGEV_THREAD_ID, nil for the process.
	target *Task

	// info is the last signal queued, whose si_overrun grows while it is
	// still pending; nil after timer_settime. Protected by kt.mu.
	info *arch.SignalInfo
	// lastOverrun is the overrun count of the last signal known to be
	// delivered, what timer_getoverrun(2) reports while info is still
	// pending. Protected by kt.mu.
	lastOverrun int32
}

// queue returns the pending queue the timer's signals go to.
func (pt *posixTimer) queue() *pendingQueue {
	if pt.target != nil {
		return &pt.target.pending
	}
	return &pt.tg.pending
}

// overrunLocked returns the overrun count of the timer's last delivered
// signal (Linux: it_overrun_last).
//
// Preconditions: pt.kt.mu is held.
func (pt *posixTimer) overrunLocked() int32 {
	if pt.info == nil {
		return pt.lastOverrun
	}
	h := pt.tg.lockSignals()
	defer h.mu.Unlock()
	if pt.info != nil && !pt.queue().holds(pt.info) {
		pt.lastOverrun = pt.info.Overrun()
	}
	return pt.lastOverrun
}

// stop disarms the timer for good.
func (pt *posixTimer) stop() {
	pt.kt.mu.Lock()
	pt.kt.setLocked(0, 0)
	pt.kt.mu.Unlock()
}

// fire queues the timer's signal, or counts an overrun when its last
// signal is still pending (Linux: posix_timer_fn() and send_sigqueue(),
// which never queues a timer's signal twice).
//
// Preconditions: pt.kt.mu is held.
func (pt *posixTimer) fire(overrun int64) {
	if !pt.tg.alive() {
		pt.kt.setLocked(0, 0)
		go pt.tg.stopTimers()
		return
	}
	h := pt.tg.lockSignals()
	if pt.info != nil {
		if pt.queue().holds(pt.info) {
			pt.info.SetOverrun(clampOverrun(int64(pt.info.Overrun()) + 1 + overrun))
			h.mu.Unlock()
			return
		}
		// Delivered (or dropped, if ignored) since.
		pt.lastOverrun = pt.info.Overrun()
	}
	h.mu.Unlock()
	info := &arch.SignalInfo{Signo: pt.signo, Code: arch.SI_TIMER}
	info.SetTimer(pt.id, clampOverrun(overrun), pt.value)
	pt.info = info
	if pt.target != nil {
		pt.target.SendSignal(info)
	} else {
		pt.tg.SendSignal(info)
	}
}

// clampOverrun caps an overrun count at DELAYTIMER_MAX (INT_MAX).
func clampOverrun(v int64) int32 {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(v)
}

// holds reports whether info itself is queued.
func (q *pendingQueue) holds(info *arch.SignalInfo) bool {
	sig := info.Signo
	if sig < 1 || sig > numSignals {
		return false
	}
	for _, i := range q.infos[sig-1] {
		if i == info {
			return true
		}
	}
	return false
}
