package vmm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// context runs one task's user code on whichever vCPU is free.
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
	// cpus is the SetCPUs mask, one entry per vCPU, or nil for every
	// vCPU.
	cpus atomic.Pointer[[]bool]

	// fpMu protects fp and fpHome.
	fpMu sync.Mutex
	// fp is the context's FP state when no vCPU holds it (fpHome nil),
	// and a copy of it after PullFPState otherwise.
	fp arch.FPState
	// fpHome is the vCPU that holds the live FP state, or nil. When set,
	// fpHome.fpOwner is this context.
	fpHome *vcpu

	// The fields below belong to the goroutine calling Switch.

	// lastSyscall is set when the last Switch returned EventSyscall.
	lastSyscall bool
	// debug are the debug registers to load (ptrace u_debugreg order).
	debug [8]uint64
}

var (
	_ platform.Context     = (*context)(nil)
	_ platform.CPUAffinity = (*context)(nil)
	_ platform.GuestTimer  = (*context)(nil)
)

// errInterrupted ends a wait for a vCPU when Interrupt is called.
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
	if c.lastSyscall && st.Regs.Eflags&arch.FlagTF != 0 {
		// Stepping over syscall: Linux reports the single-step trap
		// when the system call returns (arch/x86/entry/common.c:
		// syscall_exit_work() -> user_single_step_report()), without
		// running another instruction.
		c.lastSyscall = false
		return platform.Event{Kind: platform.EventException, Vector: arch.VectorDB, DebugStatus: arch.DR6BS, CPU: -1}, nil
	}
	c.lastSyscall = false
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
	v, err := c.p.acquire(c, tid)
	if errors.Is(err, errInterrupted) {
		// No vCPU was free; nothing ran and no vCPU counts it.
		c.pending.Store(false)
		return interrupted, nil
	}
	if err != nil {
		return platform.Event{}, err
	}
	defer c.p.release(v)
	interrupted.CPU = v.id
	if c.pending.CompareAndSwap(true, false) {
		// Interrupted before running: counted as an interrupt exit of
		// the vCPU it would have run on.
		v.stats.exits[platform.ExitInterrupt].Add(1)
		return interrupted, nil
	}
	if err := c.loadFP(v, st); err != nil {
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
		if c.pending.CompareAndSwap(true, false) {
			if first {
				// Interrupt arrived between acquiring and here;
				// later ones follow an EINTR exit, counted below.
				v.stats.exits[platform.ExitInterrupt].Add(1)
			}
			return interrupted, nil
		}
		v.prepare(&st.Regs, a, a.gen.Load())
		start := time.Now()
		c.guestSince.Store(start.UnixNano())
		errno := v.h.run()
		c.guestSince.Store(0)
		v.stats.guestNanos.Add(uint64(time.Since(start)))
		v.stats.ioctls.Add(1)
		v.ranOnce()
		res, err := v.decode(errno, &st.Regs)
		if err != nil {
			v.stats.exits[platform.ExitOther].Add(1)
			return platform.Event{}, fmt.Errorf("vmm: vCPU %d: %w", v.id, err)
		}
		v.stats.exits[res.reason].Add(1)
		if res.hasEvent {
			c.lastSyscall = res.event.Kind == platform.EventSyscall
			return res.event, nil
		}
	}
}

// loadFP gives v the context's FP state: st.FP when the kernel changed it,
// otherwise the context's own state unless v holds it already. An
// ioctl happens only when the state moves (another context used v last,
// or the kernel wrote st.FP).
func (c *context) loadFP(v *vcpu, st *arch.State) error {
	c.fpMu.Lock()
	defer c.fpMu.Unlock()
	if st.FPDirty {
		copy(c.fp, st.FP)
		clear(c.fp[min(len(st.FP), len(c.fp)):])
		st.FPDirty = false
	} else if c.fpHome == v {
		st.FPValid = false
		return nil
	} else if c.fpHome != nil {
		// The state is live in another, free vCPU: fetch it.
		if err := c.saveFPLocked(); err != nil {
			return err
		}
	}
	st.FPValid = false
	v.stats.ioctls.Add(1)
	v.stats.fpSwitches.Add(1)
	if err := v.h.setXSave(c.fp); err != nil {
		return err
	}
	c.fpHome = v
	return nil
}

// saveFPLocked copies the live FP state from c.fpHome into c.fp. The vCPU
// is not in KVM_RUN: a context that acquires it saves its previous
// owner's state (holding that owner's fpMu) before running.
//
// Preconditions: c.fpMu is held and c.fpHome is not nil.
func (c *context) saveFPLocked() error {
	h := c.fpHome
	h.stats.ioctls.Add(1)
	if err := h.h.getXSave(c.fp); err != nil {
		return fmt.Errorf("save FP state from vCPU %d: %w", h.id, err)
	}
	c.fpHome = nil
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
	if h := c.fpHome; h != nil {
		h.stats.ioctls.Add(1)
		if err := h.h.getXSave(c.fp); err != nil {
			return fmt.Errorf("vmm: save FP state from vCPU %d: %w", h.id, err)
		}
		// The vCPU keeps the same state: fpHome stays, so the next
		// Switch on it needs no ioctl.
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
	// Possibly waiting for a vCPU.
	c.p.mu.Lock()
	c.p.cond.Broadcast()
	c.p.mu.Unlock()
}

// SetCPUs implements platform.CPUAffinity.SetCPUs. A Switch running on a
// vCPU the new mask excludes finishes there; the next one obeys the mask.
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
	// A Switch waiting for a vCPU picks again under the new mask.
	c.p.cond.Broadcast()
}

// Release implements platform.Context.Release.
func (c *context) Release() {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for _, v := range c.p.cpus {
		if v.fpOwner == c {
			v.fpOwner = nil
		}
	}
	c.fpMu.Lock()
	c.fpHome = nil
	c.fpMu.Unlock()
}

// GuestSince implements platform.GuestTimer.
func (c *context) GuestSince() int64 { return c.guestSince.Load() }
