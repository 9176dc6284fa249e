package vmm

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
	"github.com/ringbox/ringbox/platform/memfile"
	"github.com/ringbox/ringbox/platform/platformtest"
)

// newKVM is the platform constructor of the conformance suite.
func newKVM(t *testing.T, mf *memfile.MemoryFile) platform.Platform {
	t.Helper()
	platformtest.RequireKVM(t)
	return newOrSkip(t, mf, 2)
}

// newOrSkip creates the platform, skipping the test on a KVM that cannot
// run ringbox's guest (PVM), which RequireKVM cannot tell from the real one.
func newOrSkip(t testing.TB, mf *memfile.MemoryFile, cpus int) *Platform {
	t.Helper()
	p, err := New(mf, Options{CPUs: cpus})
	if errors.Is(err, ErrUnsupportedKVM) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	platformtest.RequireKVM(t)
	platformtest.Run(t, newKVM)
}

func TestNewWithoutKVM(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err == nil {
		t.Skip("/dev/kvm exists")
	}
	mf := newTestMemfile(t, 4<<20)
	_, err := New(mf, Options{CPUs: 1})
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("New without /dev/kvm: %v, want an error wrapping ENOENT", err)
	}
	if got := mf.Usage(); got != 0 {
		t.Errorf("memory file usage after a failed New = %d, want 0", got)
	}
}

// Test programs, at userCode.
const (
	userCode  = 0x400000
	userData  = 0x600000
	userStack = 0x700000
)

// kvmEnv is a platform with one address space holding code, a data page
// and a stack page.
type kvmEnv struct {
	mf   *memfile.MemoryFile
	p    *Platform
	as   platform.AddressSpace
	data memfile.FileRange
}

func newKVMEnv(t *testing.T, cpus int, code []byte) *kvmEnv {
	t.Helper()
	platformtest.RequireKVM(t)
	mf := newTestMemfile(t, 32<<20)
	p := newOrSkip(t, mf, cpus)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Release)
	e := &kvmEnv{mf: mf, p: p, as: as}
	codePage := alloc(t, mf, 1)
	copy(mf.Bytes(codePage), code)
	e.data = alloc(t, mf, 1)
	for _, m := range []struct {
		addr uint64
		fr   memfile.FileRange
		at   platform.AccessType
	}{
		{userCode, codePage, platform.Read | platform.Execute},
		{userData, e.data, platform.ReadWrite},
		{userStack, alloc(t, mf, 1), platform.ReadWrite},
	} {
		if err := as.MapFile(m.addr, m.fr, m.at); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *kvmEnv) newContext(t testing.TB) platform.Context {
	c, err := e.p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// anyInGuest reports whether a vCPU runs a context.
func anyInGuest(p *Platform) bool {
	for _, v := range p.allVCPUs() {
		if v.kickASLoaded() != nil {
			return true
		}
	}
	return false
}

func newTestState(rip uint64) *arch.State {
	return &arch.State{Regs: arch.Registers{
		Rip: rip, Rsp: userStack + arch.PageSize, Eflags: arch.FlagReserved | arch.FlagIF,
		Cs: arch.UserCS, Ss: arch.UserDS,
	}}
}

// progSyscallLoop: 0x0: syscall; 0x2: jmp 0x0.
var progSyscallLoop = []byte{0x0f, 0x05, 0xeb, 0xfc}

// TestOneIoctlPerSyscall checks the hot path: after the first entry, each
// trapped system call costs exactly one ioctl (KVM_RUN) on the vCPU.
func TestOneIoctlPerSyscall(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := newKVMEnv(t, 1, progSyscallLoop)
	c := e.newContext(t)
	defer c.Release()
	st := newTestState(userCode)
	st.Regs.Rax = 110 // getppid
	if ev, err := c.Switch(e.as, st); err != nil || ev.Kind != platform.EventSyscall {
		t.Fatalf("first Switch = %+v, %v, want a syscall", ev, err)
	}
	before := e.p.VCPUStats()[0]
	const n = 20
	for i := 0; i < n; i++ {
		st.Regs.Rax = 0
		ev, err := c.Switch(e.as, st)
		if err != nil || ev.Kind != platform.EventSyscall {
			t.Fatalf("Switch %d = %+v, %v, want a syscall", i, ev, err)
		}
		if st.Regs.OrigRax != 0 || st.Regs.Rip != userCode+2 {
			t.Fatalf("Switch %d: orig_rax %d rip %#x, want 0 %#x", i, st.Regs.OrigRax, st.Regs.Rip, userCode+2)
		}
	}
	after := e.p.VCPUStats()[0]
	if got := after.Ioctls - before.Ioctls; got != n {
		t.Errorf("ioctls for %d syscalls = %d, want %d", n, got, n)
	}
	if got := after.Exits[platform.ExitSyscall] - before.Exits[platform.ExitSyscall]; got != n {
		t.Errorf("syscall exits = %d, want %d", got, n)
	}
}

// TestSingleStepOverSyscall: with TF set, stepping a syscall reports the
// syscall; the kernel reports Linux's step trap after it (the platform
// knows no syscall semantics), so the next Switch runs one instruction
// and traps after it, as on the ptrace platform.
func TestSingleStepOverSyscall(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := newKVMEnv(t, 1, []byte{
		0x0f, 0x05, // 0x0: syscall
		0x90, // 0x2: nop
		0x90, // 0x3: nop
	})
	c := e.newContext(t)
	defer c.Release()
	st := newTestState(userCode)
	st.Regs.Eflags |= arch.FlagTF
	steps := []struct {
		kind platform.EventKind
		rip  uint64
	}{
		{platform.EventSyscall, userCode + 2},
		{platform.EventException, userCode + 3},
	}
	for i, s := range steps {
		ev, err := c.Switch(e.as, st)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if ev.Kind != s.kind || st.Regs.Rip != s.rip {
			t.Fatalf("step %d: %v vector %d at rip %#x, want %v at %#x", i, ev.Kind, ev.Vector, st.Regs.Rip, s.kind, s.rip)
		}
		if ev.Kind == platform.EventException && (ev.Vector != arch.VectorDB || ev.DebugStatus&arch.DR6BS == 0) {
			t.Errorf("step %d: vector %d DR6 %#x, want #DB with BS", i, ev.Vector, ev.DebugStatus)
		}
	}
}

// progLoadStoreLoop reads [rbx] forever from 0x0 (0x0: mov rax, [rbx];
// 0x3: jmp 0x0) or writes it forever from 0x5 (0x5: mov [rbx], rax;
// 0x8: jmp 0x5).
var progLoadStoreLoop = []byte{0x48, 0x8b, 0x03, 0xeb, 0xfb, 0x48, 0x89, 0x03, 0xeb, 0xfb}

// TestShootdown: a thread spinning on accesses to a page on one vCPU must
// fault once another thread removes or narrows the mapping (DESIGN.md, TLB
// coherence): Unmap and MapFile must not return while a vCPU may still
// use the old translation.
func TestShootdown(t *testing.T) {
	for _, tc := range []struct {
		name       string
		entry      uint64
		change     func(e *kvmEnv) error
		access     platform.AccessType
		notPresent bool
	}{
		{"unmap", userCode, func(e *kvmEnv) error { e.as.Unmap(userData, arch.PageSize); return nil }, platform.Read, true},
		{"write protect", userCode + 5, func(e *kvmEnv) error {
			return e.as.MapFile(userData, e.data, platform.Read)
		}, platform.Write, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newKVMEnv(t, 2, progLoadStoreLoop)
			type result struct {
				ev  platform.Event
				rip uint64
				err error
			}
			done := make(chan result, 1)
			c := e.newContext(t)
			defer c.Release()
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				st := newTestState(tc.entry)
				st.Regs.Rbx = userData
				ev, err := c.Switch(e.as, st)
				done <- result{ev, st.Regs.Rip, err}
			}()
			// Let the loop run in the guest so that the page is in the
			// vCPU's TLB; the check below holds whenever the change
			// happens, this only makes the test meaningful.
			for i := 0; i < 100 && !anyInGuest(e.p); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if err := tc.change(e); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if r.err != nil {
					t.Fatalf("Switch: %v", r.err)
				}
				if r.ev.Kind != platform.EventFault || r.ev.Addr != userData || r.ev.Access != tc.access || r.ev.NotPresent != tc.notPresent {
					t.Errorf("event after the change = %+v, want a %v fault at %#x (not present: %v)", r.ev, tc.access, uint64(userData), tc.notPresent)
				}
			case <-time.After(60 * time.Second):
				c.Interrupt()
				r := <-done
				t.Fatalf("no fault after the change: the loop still uses the old mapping (stopped by Interrupt with %v at %#x)", r.ev.Kind, r.rip)
			}
			var shootdowns uint64
			for _, s := range e.p.VCPUStats() {
				shootdowns += s.Shootdowns
			}
			if shootdowns == 0 {
				t.Errorf("no shootdown counted")
			}
		})
	}
}

// TestInterruptWaitingForVCPU: a context waiting for a vCPU (all busy)
// returns EventInterrupt when interrupted, without running.
func TestInterruptWaitingForVCPU(t *testing.T) {
	e := newKVMEnv(t, 1, []byte{0xeb, 0xfe}) // jmp .
	busy, waiting := e.newContext(t), e.newContext(t)
	defer busy.Release()
	defer waiting.Release()
	busyDone := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		_, err := busy.Switch(e.as, newTestState(userCode))
		busyDone <- err
	}()
	for i := 0; i < 1000 && !anyInGuest(e.p); i++ {
		time.Sleep(time.Millisecond)
	}
	waitDone := make(chan platform.Event, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ev, err := waiting.Switch(e.as, newTestState(userCode))
		if err != nil {
			t.Errorf("waiting Switch: %v", err)
		}
		waitDone <- ev
	}()
	waiting.Interrupt()
	ev := <-waitDone
	if ev.Kind != platform.EventInterrupt {
		t.Errorf("waiting context: event %v, want interrupt", ev.Kind)
	}
	busy.Interrupt()
	if err := <-busyDone; err != nil {
		t.Errorf("busy Switch: %v", err)
	}
}

// BenchmarkSyscallRoundTrip measures a trapped system call: exit on the
// syscall, return through sysretq.
func BenchmarkSyscallRoundTrip(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	platformtest.RequireKVM(b)
	mf, err := memfile.New("vmm-bench", 16<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer mf.Close()
	p := newOrSkip(b, mf, 1)
	defer p.Close()
	as, err := p.NewAddressSpace()
	if err != nil {
		b.Fatal(err)
	}
	defer as.Release()
	code, err := mf.Allocate(1)
	if err != nil {
		b.Fatal(err)
	}
	copy(mf.Bytes(code), progSyscallLoop)
	if err := as.MapFile(userCode, code, platform.Read|platform.Execute); err != nil {
		b.Fatal(err)
	}
	c, err := p.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	st := newTestState(userCode)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Regs.Rax = 110 // getppid; the "kernel" answers 1
		if _, err := c.Switch(as, st); err != nil {
			b.Fatal(err)
		}
		st.Regs.Rax = 1
	}
	b.StopTimer()
	s := p.VCPUStats()[0]
	b.ReportMetric(float64(s.Ioctls)/float64(b.N), "ioctls/op")
}

// progStoreMXCSR: 0x0: stmxcsr [rbx]; 0x3: syscall; 0x5: jmp 0x0.
var progStoreMXCSR = []byte{0x0f, 0xae, 0x1b, 0x0f, 0x05, 0xeb, 0xf9}

// TestFPSwitchBetweenContexts: two contexts alternate on one logical CPU;
// each keeps its own FP state, which stays in its own vCPU.
func TestFPSwitchBetweenContexts(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := newKVMEnv(t, 1, progStoreMXCSR)
	mxcsr := []uint32{arch.DefaultMXCSR | 1<<13, arch.DefaultMXCSR | 3<<13}
	var ctxs []platform.Context
	var states []*arch.State
	for i, m := range mxcsr {
		c := e.newContext(t)
		defer c.Release()
		st := newTestState(userCode)
		st.Regs.Rbx = userData + uint64(8*i)
		fp := arch.NewFPState(e.p.FPStateSize())
		fp[24], fp[25] = byte(m), byte(m>>8)
		st.SetFP(fp)
		ctxs, states = append(ctxs, c), append(states, st)
	}
	mem := e.mf.Bytes(e.data)
	for round := 0; round < 3; round++ {
		for i, c := range ctxs {
			clear(mem[8*i : 8*i+4])
			states[i].Regs.Rip = userCode
			ev, err := c.Switch(e.as, states[i])
			if err != nil || ev.Kind != platform.EventSyscall {
				t.Fatalf("round %d context %d: %+v, %v", round, i, ev, err)
			}
			if got := uint32(mem[8*i]) | uint32(mem[8*i+1])<<8; got != mxcsr[i] {
				t.Errorf("round %d context %d: MXCSR %#x, want %#x", round, i, got, mxcsr[i])
			}
		}
	}
	for i, c := range ctxs {
		if err := c.PullFPState(states[i]); err != nil {
			t.Fatal(err)
		}
		if got := states[i].FP.MXCSR(); got != mxcsr[i] {
			t.Errorf("context %d: pulled MXCSR %#x, want %#x", i, got, mxcsr[i])
		}
	}
	if got := e.p.VCPUStats()[0].FPSwitches; got != 2 {
		t.Errorf("FP switches = %d, want 2 (each context's state loaded once, into its own vCPU)", got)
	}
}

func TestUserDR7(t *testing.T) {
	for _, c := range []struct {
		name string
		dr   [8]uint64
		want uint64
	}{
		{"user breakpoint", [8]uint64{0: 0x400000, 7: 0x1}, 0x1},
		{"kernel address", [8]uint64{0: KernelBase, 7: 0x3}, 0},
		{"one of two", [8]uint64{0: 0x400000, 1: KernelBase + 8, 7: 0xf}, 0x3},
		{"8-byte range crossing the end", [8]uint64{2: arch.MaxUserAddress - 4, 7: 0x10 | 2<<26}, 2 << 26},
		{"general detect", [8]uint64{7: 1 << 13}, 0},
	} {
		if got := userDR7(c.dr); got != c.want {
			t.Errorf("%s: userDR7 = %#x, want %#x", c.name, got, c.want)
		}
	}
}

// TestNonCanonicalRIP: a non-canonical RIP (a forged sigreturn frame) is
// a #GP for the task, not a ring-0 fault.
func TestNonCanonicalRIP(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := newKVMEnv(t, 1, progSyscallLoop)
	c := e.newContext(t)
	defer c.Release()
	st := newTestState(0x8000_0000_0000)
	ev, err := c.Switch(e.as, st)
	if err != nil || ev.Kind != platform.EventException || ev.Vector != arch.VectorGP {
		t.Fatalf("Switch = %+v, %v, want #GP", ev, err)
	}
	// The context still works.
	st.Regs.Rip = userCode
	if ev, err := c.Switch(e.as, st); err != nil || ev.Kind != platform.EventSyscall {
		t.Fatalf("Switch after #GP = %+v, %v, want a syscall", ev, err)
	}
}

// TestCloseFreesMemory: the platform's pages (page tables, ring-0 region)
// come from the memory file and go back to it.
func TestCloseFreesMemory(t *testing.T) {
	platformtest.RequireKVM(t)
	mf := newTestMemfile(t, 16<<20)
	p := newOrSkip(t, mf, 2)
	if mf.Usage() == 0 {
		t.Errorf("no memory-file pages used by the platform")
	}
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	page := alloc(t, mf, 1)
	if err := as.MapFile(userData, page, platform.ReadWrite); err != nil {
		t.Fatal(err)
	}
	as.Release()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := mf.Usage(), uint64(arch.PageSize); got != want {
		t.Errorf("usage after Close = %d, want %d (the test's own page)", got, want)
	}
}
