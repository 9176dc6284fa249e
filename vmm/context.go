package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bobuhiro11/gokvm/kvm"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// context runs one task's user code on a vCPU of its own, bound by its
// first Switch and returned to the platform's idle vCPUs by Release, while
// holding one of the logical CPUs (pool.go).
type context struct {
	p *Platform

	// pending is set by Interrupt and consumed when Switch returns
	// EventInterrupt.
	pending atomic.Bool
	// current is the vCPU the context runs on inside Switch, for
	// Interrupt.
	current atomic.Pointer[vcpu]
	// guestSince is when the current KVM_RUN began (UnixNano), 0 outside
	// it (platform.GuestTimer).
	guestSince atomic.Int64
	// entryHook is platform.EntryNotifier's hook; set and called on the
	// task's goroutine only.
	entryHook func(cpu int)
	// cpus is the SetCPUs mask, one entry per vCPU, or nil for every
	// vCPU.
	cpus atomic.Pointer[[]bool]

	// fpMu protects v, fp and fpLoaded.
	fpMu sync.Mutex
	// v is the context's vCPU, nil before the first Switch and after
	// Release. Only this context enters it, and always from the same OS
	// thread (the kernel locks a task's goroutine to its thread).
	v *vcpu
	// fp is the context's FP state while v does not hold it (fpLoaded
	// false), and a copy of it after PullFPState otherwise.
	fp       arch.FPState
	fpLoaded bool

	// The fields below belong to the goroutine calling Switch.

	// debug are the debug registers to load (ptrace u_debugreg order).
	debug [8]uint64
}

var (
	_ platform.Context     = (*context)(nil)
	_ platform.CPUAffinity = (*context)(nil)
	_ platform.GuestTimer  = (*context)(nil)
)

// errInterrupted ends a wait for a logical CPU when Interrupt is called.
var errInterrupted = errors.New("interrupted")

// Switch implements platform.Context.Switch.
//
// The run loop, per KVM_RUN:
//
//	check Interrupt ──pending──> EventInterrupt
//	     │
//	prepare (synced regs, trap frame; flush if the TLB may be stale)
//	     │
//	KVM_RUN ──> decode ──event──> return it
//	     ^         │
//	     └─────────┘ stopped on the way (kick, signal): loop
func (c *context) Switch(as platform.AddressSpace, st *arch.State) (platform.Event, error) {
	a, ok := as.(*addressSpace)
	if !ok || a.p != c.p {
		return platform.Event{}, fmt.Errorf("vmm: Switch with a foreign address space %T", as)
	}
	interrupted := platform.Event{Kind: platform.EventInterrupt, CPU: -1}
	// Stepping over syscall: Linux reports the single-step trap when the
	// system call returns (arch/x86/entry/common.c: syscall_exit_work()
	// -> user_single_step_report()). That is syscall semantics, the
	// kernel's: it reports it before resuming, and the platform, as the
	// ptrace one, just runs the next instruction with TF (an iretq, as
	// canSysret refuses TF) and traps after it.
	if !arch.IsCanonical(st.Regs.Rip) {
		// iretq to a non-canonical RIP faults in ring 0; Linux turns
		// that into SIGSEGV for the task (arch/x86/entry/entry_64.S,
		// the IRET fixup, then exc_general_protection()). Report the
		// #GP without entering.
		return platform.Event{Kind: platform.EventException, Vector: arch.VectorGP, CPU: -1}, nil
	}
	if !arch.IsCanonical(st.Regs.FsBase) || !arch.IsCanonical(st.Regs.GsBase) {
		// VM entry would fail; the kernel must refuse such bases
		// (arch_prctl(2) and ptrace return EPERM on Linux).
		return platform.Event{}, fmt.Errorf("vmm: non-canonical FS or GS base %#x, %#x", st.Regs.FsBase, st.Regs.GsBase)
	}
	if st.DebugDirty {
		c.debug = st.DebugRegs
		st.DebugDirty = false
	}

	// KVM ties a vCPU to the thread that runs it; staying on one thread
	// for the whole Switch keeps the kick target valid.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	v, err := c.bindVCPU(tid)
	if err != nil {
		return platform.Event{}, fmt.Errorf("vmm: %w", err)
	}
	cp, err := c.p.acquire(c)
	if errors.Is(err, errInterrupted) {
		// No CPU was free; nothing ran and no CPU counts it.
		c.pending.Store(false)
		return interrupted, nil
	}
	if err != nil {
		return platform.Event{}, err
	}
	defer c.p.release(cp)
	interrupted.CPU = cp.id
	if c.pending.CompareAndSwap(true, false) {
		// Interrupted before running: counted as an interrupt exit of
		// the CPU it would have run on.
		cp.stats.exits[platform.ExitInterrupt].Add(1)
		return interrupted, nil
	}
	if v.lastTID != tid {
		if v.lastTID != 0 {
			cp.stats.migrations.Add(1)
		}
		v.lastTID = tid
	}
	if c.entryHook != nil {
		c.entryHook(cp.id)
	}
	if err := c.loadFP(v, cp, st); err != nil {
		return platform.Event{}, fmt.Errorf("vmm: vCPU %d: %w", v.id, err)
	}
	if err := c.loadDebug(v); err != nil {
		return platform.Event{}, fmt.Errorf("vmm: vCPU %d: %w", v.id, err)
	}

	v.enter(c, a, tid)
	c.current.Store(v)
	defer func() {
		c.current.Store(nil)
		v.leave()
	}()
	for first := true; ; first = false {
		// An exception whose delivery was interrupted is finished
		// first (vcpu.delivering): Switch never returns with one in
		// flight, but on an error, which retires the vCPU.
		if !v.delivering && c.pending.CompareAndSwap(true, false) {
			if first {
				// Interrupt arrived between acquiring and here;
				// later ones follow an EINTR exit, counted below.
				v.stats.exits[platform.ExitInterrupt].Add(1)
			}
			return interrupted, nil
		}
		mode := v.mode
		v.traceEntered(v.prepare(&st.Regs, a, a.gen.Load()), mode)
		start := time.Now()
		c.guestSince.Store(start.UnixNano())
		errno := v.h.run()
		c.guestSince.Store(0)
		v.stats.guestNanos.Add(uint64(time.Since(start)))
		v.stats.ioctls.Add(1)
		v.ranOnce()
		v.traceExited(errno)
		res, err := v.decode(errno, &st.Regs)
		if err != nil {
			v.stats.exits[platform.ExitOther].Add(1)
			c.retire(v)
			c.p.log.Error("vCPU exit not decoded", zap.Int("vcpu", v.id), zap.Error(err), zap.String("trace", v.traceString()))
			return platform.Event{}, fmt.Errorf("vmm: vCPU %d: %w", v.id, err)
		}
		v.stats.exits[res.reason].Add(1)
		if res.hasEvent {
			res.event.CPU = cp.id
			return res.event, nil
		}
	}
}

// bindVCPU returns the context's vCPU, binding one on the first call:
// an idle vCPU (preferably one last run on tid) or a new one.
func (c *context) bindVCPU(tid int) (*vcpu, error) {
	c.fpMu.Lock()
	defer c.fpMu.Unlock()
	if c.v != nil {
		return c.v, nil
	}
	v, err := c.p.vcpuFor(tid)
	if err != nil {
		return nil, err
	}
	// Whatever FP state the vCPU holds is another context's.
	c.v, c.fpLoaded = v, false
	return v, nil
}

// retire unbinds v, whose state is unknown after an exit that could not be
// decoded, and leaves it out of the idle vCPUs for good: after a triple
// fault KVM resets the vCPU to real mode (AMD: svm.c
// shutdown_interception()), which any later entry would run from 0xfff0.
// A later Switch of the context binds another vCPU.
func (c *context) retire(v *vcpu) {
	c.fpMu.Lock()
	defer c.fpMu.Unlock()
	if c.v == v {
		c.v, c.fpLoaded = nil, false
	}
}

// loadFP points v's counters at cp's and gives v the context's FP state
// when it does not hold it yet: on the first entry, and when the kernel
// changed st.FP. The state otherwise stays in the vCPU, which no other
// context uses: no ioctl.
func (c *context) loadFP(v *vcpu, cp *cpu, st *arch.State) error {
	c.fpMu.Lock()
	defer c.fpMu.Unlock()
	v.stats = &cp.stats
	st.FPValid = false
	if st.FPDirty {
		copy(c.fp, st.FP)
		clear(c.fp[min(len(st.FP), len(c.fp)):])
		st.FPDirty = false
		c.fpLoaded = false
	}
	if c.fpLoaded {
		return nil
	}
	if v.neverRan() && bytes.Equal(c.fp, arch.NewFPState(len(c.fp))) {
		// A vCPU that never ran holds the architectural initial FP
		// state (KVM resets it so), which is what a program starts
		// with: no KVM_SET_XSAVE, so that even the first entry costs
		// no ioctl besides KVM_RUN.
		c.fpLoaded = true
		return nil
	}
	v.stats.ioctls.Add(1)
	v.stats.fpSwitches.Add(1)
	if err := v.h.setXSave(c.fp); err != nil {
		return err
	}
	c.fpLoaded = true
	return nil
}

// loadDebug loads the context's debug registers into v when they are not
// there: on a change, or when v last ran a context with other ones.
func (c *context) loadDebug(v *vcpu) error {
	if v.debugOwner == c && v.loadedDR7 == c.debug[7] {
		return nil
	}
	if v.loadedDR7 == 0 && c.debug[7] == 0 {
		// Nothing armed before or after; DR0-3 do not matter.
		v.debugOwner = c
		return nil
	}
	d := kvm.DebugRegs{DR6: arch.DR6Reserved, DR7: userDR7(c.debug)}
	copy(d.DB[:], c.debug[:4])
	v.stats.ioctls.Add(1)
	if err := v.h.setDebugRegs(&d); err != nil {
		return fmt.Errorf("load debug registers (DR7 %#x): %w", c.debug[7], err)
	}
	v.debugOwner, v.loadedDR7 = c, c.debug[7]
	return nil
}

// DR7 fields (Intel SDM Vol. 3, 18.2.4).
const (
	dr7GD       = 1 << 13 // general detect: #DB on MOV DR
	dr7EnableN  = 0x3     // L and G bits of one breakpoint, at 2*n
	dr7LenShift = 18      // LEN of breakpoint n at 18+4*n, RW at 16+4*n
)

// userDR7 returns the DR7 to load for debug registers dr: breakpoints
// whose range reaches beyond the user half are disabled, so that no
// breakpoint can fire in the ring-0 region (Linux refuses them in
// arch/x86/kernel/hw_breakpoint.c:arch_build_bp_info() via
// arch_check_bp_in_kernelspace()), and general detect is cleared.
func userDR7(dr [8]uint64) uint64 {
	dr7 := dr[7] &^ dr7GD
	for n := 0; n < 4; n++ {
		// LEN encodings 00, 01, 11, 10 mean 1, 2, 4, 8 bytes.
		size := [4]uint64{1, 2, 8, 4}[dr7>>(dr7LenShift+4*n)&3]
		if end := dr[n] + size; end < dr[n] || end > arch.MaxUserAddress {
			dr7 &^= dr7EnableN << (2 * n)
		}
	}
	return dr7
}

// PullFPState implements platform.Context.PullFPState.
func (c *context) PullFPState(st *arch.State) error {
	c.fpMu.Lock()
	defer c.fpMu.Unlock()
	if v := c.v; v != nil && c.fpLoaded {
		v.stats.ioctls.Add(1)
		if err := v.h.getXSave(c.fp); err != nil {
			return fmt.Errorf("vmm: save FP state from vCPU %d: %w", v.id, err)
		}
		// The vCPU keeps the same state: the next Switch needs no
		// ioctl.
	}
	if len(st.FP) != len(c.fp) {
		st.FP = make(arch.FPState, len(c.fp))
	}
	copy(st.FP, c.fp)
	st.FPValid = true
	return nil
}

// Interrupt implements platform.Context.Interrupt.
func (c *context) Interrupt() {
	c.pending.Store(true)
	if v := c.current.Load(); v != nil {
		v.kick(c)
		return
	}
	// Possibly waiting for a logical CPU.
	c.p.mu.Lock()
	c.p.cond.Broadcast()
	c.p.mu.Unlock()
}

// SetCPUs implements platform.CPUAffinity.SetCPUs: the mask names logical
// CPUs. A Switch running on a CPU the new mask excludes finishes there; the
// next one obeys the mask.
func (c *context) SetCPUs(mask []bool) {
	n := len(c.p.cpus)
	m := make([]bool, n)
	any := false
	for i := range min(len(mask), n) {
		m[i] = mask[i]
		any = any || m[i]
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if any {
		c.cpus.Store(&m)
	} else {
		c.cpus.Store(nil)
	}
	// A Switch waiting for a CPU picks again under the new mask.
	c.p.cond.Broadcast()
}

// Release implements platform.Context.Release. The context's vCPU goes
// back to the idle ones; the next context to take it loads its own FP
// state and flushes the TLB on entry (vcpu.loadedAS).
func (c *context) Release() {
	c.fpMu.Lock()
	v := c.v
	c.v, c.fpLoaded = nil, false
	c.fpMu.Unlock()
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for _, cp := range c.p.cpus {
		if cp.last == c {
			cp.last = nil
		}
	}
	if v != nil {
		c.p.idle = append(c.p.idle, v)
	}
}

// GuestSince implements platform.GuestTimer.
func (c *context) GuestSince() int64 { return c.guestSince.Load() }

// SetEntryHook implements platform.EntryNotifier.
func (c *context) SetEntryHook(fn func(cpu int)) { c.entryHook = fn }
