package ptrace

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// stubThread is the host thread that runs one context's user code in one
// address space, traced by the OS thread of the task that owns the
// context.
type stubThread struct {
	tracee
	as *addressSpace
	// tracer is the OS thread that seized the thread; every ptrace
	// request for it must come from there.
	tracer tid
	// reaped is set once the thread is gone and waited for. Protected by
	// as.mu.
	reaped bool
	// dr7 is the DR7 last loaded: with breakpoints enabled, the thread
	// is not used for injections (one might sit on the stub's code).
	// Only the tracer's goroutine uses it.
	dr7 uint64
}

// isReaped reports whether the thread is gone.
func (t *stubThread) isReaped() bool {
	t.as.mu.Lock()
	defer t.as.mu.Unlock()
	return t.reaped
}

// context runs one task. It implements platform.Context.
//
// Interrupt protocol: Interrupt sets pending and, if the context is
// running, sends SIGSTOP to its stub thread. Switch sets running before it
// checks pending, so one of the two sees the other (both are sequentially
// consistent atomics). A SIGSTOP that arrives after its Switch returned
// for another reason finds pending already consumed and is dropped.
type context struct {
	p *Platform

	// thread is the stub thread in the address space the context last
	// ran in. Only the goroutine calling Switch uses it.
	thread *stubThread

	pending atomic.Bool
	running atomic.Bool
	// entryHook is platform.EntryNotifier's hook; set and called on the
	// task's goroutine only.
	entryHook func(cpu int)
	// guestSince is when the stub thread was last resumed (UnixNano),
	// 0 while it is stopped (platform.GuestTimer).
	guestSince atomic.Int64
	// kickWaiter wakes a Switch waiting for a vCPU; Interrupt sends
	// without blocking.
	kickWaiter chan struct{}
	// grant receives the vCPU a release hands to the waiting context
	// (capacity 1).
	grant chan int
	// cpus is the SetCPUs mask, NumCPUs long, or nil for every vCPU.
	cpus atomic.Pointer[[]bool]
	// waiting is set while the context is queued for a vCPU, and
	// lastCPU is the vCPU it last took (-1: none yet). Protected by
	// p.pool.mu.
	waiting bool
	lastCPU int
	// kick is pid<<32|tid of the stub thread while running.
	kick atomic.Uint64
}

var (
	_ platform.Context     = (*context)(nil)
	_ platform.CPUAffinity = (*context)(nil)
	_ platform.GuestTimer  = (*context)(nil)
)

// Offset of u_debugreg in struct user (Linux: arch/x86/include/asm/user_64.h),
// the PTRACE_PEEKUSER/POKEUSER address of DR0; DRn is 8*n further.
const userDebugRegOff = 848

// Switch implements platform.Context.Switch.
//
// Per system call it makes exactly the requests of a C tracer loop:
// PTRACE_SETREGS (only if the kernel changed the registers), PTRACE_SYSEMU,
// wait4 and PTRACE_GETREGS.
func (c *context) Switch(as platform.AddressSpace, st *arch.State) (platform.Event, error) {
	a, ok := as.(*addressSpace)
	if !ok {
		return platform.Event{}, fmt.Errorf("ptrace: Switch in a foreign address space %T", as)
	}
	t := c.thread
	if t == nil || t.as != a {
		var err error
		if t, err = c.enter(a, st); err != nil {
			return platform.Event{}, err
		}
	}
	// Waiting for a vCPU ends at an Interrupt; the event then has CPU
	// -1: it ran on no vCPU.
	cpu, ok := c.p.pool.acquire(c)
	if !ok {
		return platform.Event{Kind: platform.EventInterrupt, CPU: -1}, nil
	}
	if c.entryHook != nil {
		c.entryHook(cpu)
	}
	ev, err := c.run(t, st, &c.p.stats[cpu])
	c.p.pool.release(cpu)
	ev.CPU = cpu
	return ev, err
}

// SetCPUs implements platform.CPUAffinity.SetCPUs. A Switch running on a
// vCPU the new mask excludes finishes there; the next one obeys the mask.
func (c *context) SetCPUs(mask []bool) {
	n := c.p.NumCPUs()
	m := make([]bool, n)
	any := false
	for i := range min(len(mask), n) {
		m[i] = mask[i]
		any = any || m[i]
	}
	if any {
		c.cpus.Store(&m)
	} else {
		c.cpus.Store(nil)
	}
	c.p.pool.recheck(c)
}

// allowed reports whether the context may run on vCPU cpu.
func (c *context) allowed(cpu int) bool {
	m := c.cpus.Load()
	return m == nil || (*m)[cpu]
}

// run loads st into t, runs it to the next event and stores the
// registers back.
func (c *context) run(t *stubThread, st *arch.State, stats *cpuStats) (platform.Event, error) {
	var reqs uint64
	defer func() { stats.ioctls.Add(reqs) }()
	if err := c.load(t, st, &reqs); err != nil {
		return platform.Event{}, c.lost(t, err)
	}
	c.kick.Store(uint64(t.as.pid)<<32 | uint64(uint32(t.tid)))
	for {
		c.running.Store(true)
		if c.pending.Load() {
			c.running.Store(false)
			c.pending.Store(false)
			stats.exits[platform.ExitInterrupt].Add(1)
			return platform.Event{Kind: platform.EventInterrupt}, nil
		}
		start := time.Now()
		c.guestSince.Store(start.UnixNano())
		err := ptraceRaw(unix.PTRACE_SYSEMU, t.tid, 0, 0)
		reqs++
		if err != nil {
			c.guestSince.Store(0)
			c.running.Store(false)
			return platform.Event{}, c.lost(t, fmt.Errorf("PTRACE_SYSEMU: %w", err))
		}
		ws, _, err := wait4(t.tid, 0)
		c.guestSince.Store(0)
		c.running.Store(false)
		stats.guestNanos.Add(uint64(time.Since(start)))
		if err != nil {
			return platform.Event{}, fmt.Errorf("ptrace: wait4 for stub thread %d: %w", t.tid, err)
		}
		if ws.Exited() || ws.Signaled() {
			c.died(t, ws)
			return platform.Event{}, platform.ErrContextKilled
		}
		if !ws.Stopped() {
			continue
		}
		if err := ptraceGetRegs(t.tid, &t.regs); err != nil {
			return platform.Event{}, c.lost(t, err)
		}
		reqs++
		regs := t.regs
		ev, reason, err := c.decode(t, ws, &regs, &reqs)
		if err != nil {
			return platform.Event{}, c.lost(t, err)
		}
		stats.exits[reason].Add(1)
		if reason == platform.ExitOther {
			// Not the program's doing: a stale SIGSTOP, a signal sent
			// from outside. Suppressed; run on.
			continue
		}
		st.Regs = regs
		return ev, nil
	}
}

// load writes what the kernel changed into the stopped thread.
func (c *context) load(t *stubThread, st *arch.State, reqs *uint64) error {
	r := st.Regs
	r.OrigRax = noSyscall
	// TODO: Linux lets ptrace and sigreturn switch a thread to 32-bit
	// code (CS 0x23); ringbox runs 64-bit code only.
	r.Cs, r.Ss = arch.UserCS, arch.UserDS
	host := t.regs
	host.OrigRax = noSyscall
	if r != host {
		if err := ptraceSetRegs(t.tid, &r); err != nil {
			return err
		}
		*reqs++
		t.regs = r
	}
	if st.FPDirty {
		size := c.p.fpSize
		if len(st.FP) < size {
			return fmt.Errorf("ptrace: FP state of %d bytes, want %d", len(st.FP), size)
		}
		if c.p.fpNote == unix.NT_PRFPREG {
			size = arch.FXSaveSize
		}
		if _, err := ptraceRegset(t.tid, false, c.p.fpNote, st.FP[:size]); err != nil {
			return err
		}
		*reqs++
	}
	if st.DebugDirty {
		// Addresses first, then DR6, DR7 last: Linux validates DR7's
		// enable bits against the breakpoints already set
		// (arch/x86/kernel/ptrace.c:ptrace_write_dr7()).
		for _, i := range []int{0, 1, 2, 3, 6, 7} {
			if err := ptracePokeUser(t.tid, uintptr(userDebugRegOff+8*i), st.DebugRegs[i]); err != nil {
				return err
			}
			*reqs++
		}
		t.dr7 = st.DebugRegs[7]
	}
	st.FPDirty, st.FPValid, st.DebugDirty = false, false, false
	return nil
}

// PullFPState implements platform.Context.PullFPState.
func (c *context) PullFPState(st *arch.State) error {
	if len(st.FP) < c.p.fpSize {
		st.FP = arch.NewFPState(c.p.fpSize)
	}
	t := c.thread
	if t == nil {
		// Never ran: the state is a fresh thread's.
		st.FP.Reset()
		st.FPValid = true
		return nil
	}
	buf := st.FP[:c.p.fpSize]
	if c.p.fpNote == unix.NT_PRFPREG {
		buf = st.FP[:arch.FXSaveSize]
	}
	n, err := ptraceRegset(t.tid, true, c.p.fpNote, buf)
	if err != nil {
		return c.lost(t, err)
	}
	if n != len(buf) {
		return fmt.Errorf("ptrace: FP regset of thread %d is %d bytes, want %d", t.tid, n, len(buf))
	}
	st.FPValid = true
	return nil
}

// Interrupt implements platform.Context.Interrupt.
func (c *context) Interrupt() {
	c.pending.Store(true)
	select {
	case c.kickWaiter <- struct{}{}:
	default:
	}
	if !c.running.Load() {
		return
	}
	k := c.kick.Load()
	// tgkill cannot hit a stranger: the stub's leader, whose pid is the
	// tgid here, is only reaped by Release of its address space, which
	// must not race with a Switch in it.
	if err := tgkill(tid(k>>32), tid(uint32(k)), unix.SIGSTOP); err != nil && err != unix.ESRCH {
		c.p.log.Error("interrupt stub thread", zap.Uint64("tid", k&0xffffffff), zap.Error(err))
	}
}

// Release implements platform.Context.Release: the stub thread exits.
// Like Switch, it must run on the task's OS thread; from any other thread
// the stub thread lingers, stopped, until its address space is released.
func (c *context) Release() {
	if t := c.thread; t != nil {
		c.leave(t)
		c.thread = nil
	}
}

// enter gives the context a stub thread in a, carrying the FP state over
// from the thread it had elsewhere.
func (c *context) enter(a *addressSpace, st *arch.State) (*stubThread, error) {
	if old := c.thread; old != nil {
		// A thread killed with its address space (execve releases the
		// old one first) has no FP state left to carry.
		if !st.FPValid && !old.isReaped() {
			if err := c.PullFPState(st); err != nil {
				c.p.log.Warn("FP state lost moving to a new address space", zap.Error(err))
			}
		}
		c.leave(old)
		c.thread = nil
	}
	if st.FPValid {
		// The new thread starts with the stub's initial FP state.
		st.FPDirty = true
	}
	if st.DebugRegs != [8]uint64{} {
		st.DebugDirty = true
	}
	child, err := a.newThread()
	if err != nil {
		return nil, fmt.Errorf("ptrace: new stub thread: %w", err)
	}
	t := &stubThread{tracee: tracee{tid: child}, as: a, tracer: tid(unix.Gettid())}
	if err := t.seize(); err != nil {
		// The child idles untraced in the wait loop until Release of
		// a kills it.
		return nil, fmt.Errorf("ptrace: stub %d: %w", a.pid, err)
	}
	if err := a.addThread(t); err != nil {
		return nil, err
	}
	c.thread = t
	return t, nil
}

// seize attaches the calling OS thread to a new stub thread and stops it.
// PTRACE_SEIZE rather than PTRACE_ATTACH: no SIGSTOP is involved, and
// PTRACE_INTERRUPT gives a clean PTRACE_EVENT_STOP - ptrace(2).
func (t *stubThread) seize() error {
	if err := ptraceRaw(unix.PTRACE_SEIZE, t.tid, 0, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACESYSGOOD); err != nil {
		return fmt.Errorf("PTRACE_SEIZE thread %d: %w", t.tid, err)
	}
	if err := ptraceRaw(unix.PTRACE_INTERRUPT, t.tid, 0, 0); err != nil {
		return fmt.Errorf("PTRACE_INTERRUPT thread %d: %w", t.tid, err)
	}
	for {
		ws, _, err := wait4(t.tid, 0)
		if err != nil {
			return fmt.Errorf("wait for thread %d to stop: %w", t.tid, err)
		}
		if ws.Exited() || ws.Signaled() {
			return fmt.Errorf("thread %d: %w: %s", t.tid, errStubDied, describeStatus(ws))
		}
		if ws.Stopped() && stopEvent(ws) == unix.PTRACE_EVENT_STOP {
			break
		}
		// A signal-delivery-stop first (a signal sent from outside):
		// suppress it and wait for the interrupt.
		if err := ptraceRaw(unix.PTRACE_CONT, t.tid, 0, 0); err != nil {
			return fmt.Errorf("PTRACE_CONT thread %d: %w", t.tid, err)
		}
	}
	return ptraceGetRegs(t.tid, &t.regs)
}

// leave makes the context's stub thread exit and reaps it.
func (c *context) leave(t *stubThread) {
	a := t.as
	if t.isReaped() {
		return
	}
	if self := tid(unix.Gettid()); self != t.tracer {
		c.p.log.Warn("context released off its task's thread; stub thread left to its address space",
			zap.Int("tid", int(t.tid)), zap.Int("tracer", int(t.tracer)), zap.Int("caller", int(self)))
		return
	}
	r := t.regs
	r.Rip, r.Rax, r.Rdi, r.OrigRax = stubInjectSyscall, unix.SYS_EXIT, 0, noSyscall
	r.Cs, r.Ss = arch.UserCS, arch.UserDS
	r.Eflags &^= arch.FlagTF
	err := ptraceSetRegs(t.tid, &r)
	for err == nil {
		if err = ptraceRaw(unix.PTRACE_CONT, t.tid, 0, 0); err != nil {
			break
		}
		var ws unix.WaitStatus
		if ws, _, err = wait4(t.tid, 0); err == nil && (ws.Exited() || ws.Signaled()) {
			a.removeThread(t)
			return
		}
	}
	// Dead already (killed from outside) or never coming back: reap
	// whatever is left.
	reapThread(t.tid, c.p.log)
	a.removeThread(t)
}

// died records that the stub thread is gone (wait4 reaped it).
func (c *context) died(t *stubThread, ws unix.WaitStatus) {
	c.p.log.Warn("stub thread died", zap.Int("pid", int(t.as.pid)), zap.Int("tid", int(t.tid)),
		zap.String("status", describeStatus(ws)))
	t.as.removeThread(t)
}

// lost handles a failed ptrace request on t. ESRCH means the thread is no
// longer in a ptrace-stop for us: either it was killed (then it is reaped
// and the context reports ErrContextKilled) or the caller is not its
// tracer (a goroutine not locked to its OS thread: a kernel bug).
func (c *context) lost(t *stubThread, err error) error {
	if !errorsIsESRCH(err) {
		return fmt.Errorf("ptrace: stub thread %d: %w", t.tid, err)
	}
	if self := tid(unix.Gettid()); self != t.tracer {
		return fmt.Errorf("ptrace: stub thread %d is traced by OS thread %d, not the caller's %d "+
			"(is the task goroutine locked to its thread?): %w", t.tid, t.tracer, self, err)
	}
	reapThread(t.tid, c.p.log)
	c.p.log.Warn("stub thread gone", zap.Int("pid", int(t.as.pid)), zap.Int("tid", int(t.tid)), zap.Error(err))
	t.as.removeThread(t)
	return platform.ErrContextKilled
}

// GuestSince implements platform.GuestTimer.
func (c *context) GuestSince() int64 { return c.guestSince.Load() }

// SetEntryHook implements platform.EntryNotifier.
func (c *context) SetEntryHook(fn func(cpu int)) { c.entryHook = fn }
