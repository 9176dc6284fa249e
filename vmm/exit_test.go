package vmm

import (
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/guest"
	"github.com/ringbox/ringbox/platform"
)

// newFakeVCPU returns a vCPU whose kvm_run is ordinary memory, in the state
// newVCPU leaves it, and an address space: enough to test entry and exit
// decoding without KVM.
func newFakeVCPU(t *testing.T) (*vcpu, *addressSpace) {
	t.Helper()
	mf := newTestMemfile(t, 8<<20)
	p := &Platform{mf: mf}
	v := &vcpu{id: 1, p: p, block: alloc(t, mf, cpuPages), run: &kvmRun{}, stats: new(vcpuStats)}
	v.kickCond.L = &v.kickMu
	p.vcpus.Store(&[]*vcpu{v})
	pt, err := newPageTables(mf, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.run.sregs.CS, v.run.sregs.SS = kernelCSSeg, kernelSSSeg
	v.run.regs.RIP, v.run.regs.RSP = iretVA, IretFrame(v.id)
	return v, &addressSpace{p: p, pt: pt}
}

func userTestRegs() arch.Registers {
	return arch.Registers{
		Rax: 39, Rbx: 2, Rcx: 3, Rdx: 4, Rsi: 5, Rdi: 6, Rbp: 7,
		R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15,
		Rip: 0x401000, Rsp: 0x7ffffff000, Eflags: 0x202, FsBase: 0x1234000,
	}
}

// guestSyscall makes the synced state look as if the guest executed
// syscall at regs.Rip and reached the syscall out.
func guestSyscall(v *vcpu, regs *arch.Registers) {
	setGPRs(&v.run.regs, regs)
	k := &v.run.regs
	k.RCX, k.R11 = regs.Rip+2, regs.Eflags
	k.RIP, k.RSP, k.RFLAGS = syscallOutVA, regs.Rsp, 0x2
	v.run.sregs.CS, v.run.sregs.SS = kernelCSSeg, kernelSSSeg
	v.run.exitReason = exitIO
	io := v.run.exitIO()
	io.direction, io.port, io.size, io.count = exitIOOut, guest.SyscallPort, 1, 1
}

// guestException makes the synced state look as if the guest took
// exception vec from ring 3 with regs and reached the slot's out.
func guestException(v *vcpu, vec arch.Vector, errCode uint64, regs *arch.Registers) {
	setGPRs(&v.run.regs, regs)
	f := ExceptionFrame(v.id)
	for i, w := range []uint64{uint64(vec), errCode, regs.Rip, guest.UserCS, regs.Eflags, regs.Rsp, guest.UserDS} {
		v.writeStack(f+uint64(8*i), w)
	}
	k := &v.run.regs
	k.RIP = CodeVA + uint64(guest.SlotException(vec)*guest.SlotSize+guest.ExceptionOutOffset(vec))
	k.RSP, k.RFLAGS = f, 0x2
	v.run.sregs.CS, v.run.sregs.SS = kernelCSSeg, kernelSSSeg
	v.run.exitReason = exitIO
	io := v.run.exitIO()
	io.direction, io.port = exitIOOut, guest.ExceptionPort
}

func TestFirstEntryAndSyscallRoundTrip(t *testing.T) {
	v, a := newFakeVCPU(t)
	regs := userTestRegs()

	// First entry: through ring 0 with a flush, CR3 and FS base loaded.
	if got, want := v.prepare(&regs, a, 0), pathIretFlush; got != want {
		t.Fatalf("first entry path = %d, want %d", got, want)
	}
	k, s := &v.run.regs, &v.run.sregs
	if k.RIP != iretFlushVA || k.RSP != IretFrame(v.id) {
		t.Errorf("first entry RIP, RSP = %#x, %#x, want %#x, %#x", k.RIP, k.RSP, uint64(iretFlushVA), IretFrame(v.id))
	}
	if s.CR3 != a.pt.root || s.FS.Base != regs.FsBase {
		t.Errorf("CR3, FS base = %#x, %#x, want %#x, %#x", s.CR3, s.FS.Base, a.pt.root, regs.FsBase)
	}
	if got, want := v.run.kvmDirtyRegs, uint64(syncRegs|syncSregs); got != want {
		t.Errorf("dirty = %#x, want %#x", got, want)
	}
	f := IretFrame(v.id)
	for i, want := range []uint64{regs.Rip, guest.UserCS, 0x202, regs.Rsp, guest.UserDS} {
		if got := v.readStack(f + uint64(8*i)); got != want {
			t.Errorf("iret frame word %d = %#x, want %#x", i, got, want)
		}
	}
	if k.RAX != 39 || k.R15 != 15 {
		t.Errorf("RAX, R15 = %d, %d, want 39, 15", k.RAX, k.R15)
	}

	// The program executes syscall.
	guestSyscall(v, &regs)
	var got arch.Registers
	res, err := v.decode(0, &got)
	if err != nil {
		t.Fatalf("decode syscall: %v", err)
	}
	if !res.hasEvent || res.event.Kind != platform.EventSyscall || res.reason != platform.ExitSyscall {
		t.Fatalf("decode = %+v, want a syscall event", res)
	}
	want := regs
	want.Rip, want.Rcx, want.R11 = regs.Rip+2, regs.Rip+2, regs.Eflags
	want.OrigRax, want.Cs, want.Ss = 39, guest.UserCS, guest.UserDS
	if got != want {
		t.Errorf("syscall registers = %+v\nwant %+v", got, want)
	}
	if v.mode != modeSyscall {
		t.Errorf("mode = %v, want syscall", v.mode)
	}

	// The kernel returns a value: sysret path, only REGS dirty, RIP kept
	// on the out.
	got.Rax = 1000
	if p := v.prepare(&got, a, 0); p != pathSysret {
		t.Fatalf("return path = %d, want sysret", p)
	}
	if k.RIP != syscallOutVA || k.RAX != 1000 || k.RCX != got.Rip || k.R11 != 0x202 {
		t.Errorf("sysret state RIP %#x RAX %d RCX %#x R11 %#x", k.RIP, k.RAX, k.RCX, k.R11)
	}
	if got, want := v.run.kvmDirtyRegs, uint64(syncRegs); got != want {
		t.Errorf("dirty = %#x, want %#x (no SREGS on the hot path)", got, want)
	}
}

func TestCanSysret(t *testing.T) {
	base := arch.Registers{Rip: 0x401002, Rcx: 0x401002, Eflags: 0x246, R11: 0x246}
	mod := func(f func(r *arch.Registers)) arch.Registers { r := base; f(&r); return r }
	for _, c := range []struct {
		name string
		r    arch.Registers
		want bool
	}{
		{"plain return", base, true},
		{"rcx changed", mod(func(r *arch.Registers) { r.Rcx = 0 }), false},
		{"r11 changed", mod(func(r *arch.Registers) { r.R11 = 0x202 }), false},
		{"non-canonical rip", mod(func(r *arch.Registers) { r.Rip, r.Rcx = 0x800000000000, 0x800000000000 }), false},
		{"kernel half rip", mod(func(r *arch.Registers) { r.Rip, r.Rcx = KernelBase, KernelBase }), false},
		{"trap flag", mod(func(r *arch.Registers) { r.Eflags, r.R11 = 0x346, 0x346 }), false},
		{"resume flag", mod(func(r *arch.Registers) { r.Eflags, r.R11 = 0x10246, 0x10246 }), false},
	} {
		if got := canSysret(&c.r); got != c.want {
			t.Errorf("%s: canSysret = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestUserFlags(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 0x202},
		{0x246, 0x246},
		{0x3000 | 0x4000 | 0x20000, 0x202}, // IOPL, NT, VM dropped
		{0x100 | 0x40000 | 0x200000, 0x240302},
	} {
		if got := userFlags(c.in); got != c.want {
			t.Errorf("userFlags(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

func TestEntryPaths(t *testing.T) {
	for _, c := range []struct {
		name string
		// after the syscall exit, change the registers and/or bump the
		// generation
		edit     func(r *arch.Registers)
		bump     bool
		wantPath entryPath
	}{
		{"unchanged", func(r *arch.Registers) {}, false, pathSysret},
		{"execve-like rip", func(r *arch.Registers) { r.Rip = 0x500000 }, false, pathIret},
		{"rcx clobber", func(r *arch.Registers) { r.Rcx = 7 }, false, pathIret},
		{"single step", func(r *arch.Registers) { r.Eflags |= arch.FlagTF; r.R11 = r.Eflags }, false, pathIret},
		{"tlb generation", func(r *arch.Registers) {}, true, pathIretFlush},
	} {
		v, a := newFakeVCPU(t)
		regs := userTestRegs()
		v.prepare(&regs, a, 0)
		guestSyscall(v, &regs)
		var r arch.Registers
		if _, err := v.decode(0, &r); err != nil {
			t.Fatal(err)
		}
		c.edit(&r)
		gen := uint64(0)
		if c.bump {
			gen = 1
		}
		if got := v.prepare(&r, a, gen); got != c.wantPath {
			t.Errorf("%s: path = %d, want %d", c.name, got, c.wantPath)
		}
		if c.wantPath != pathSysret {
			if got := v.readStack(IretFrame(v.id)); got != r.Rip {
				t.Errorf("%s: frame RIP = %#x, want %#x", c.name, got, r.Rip)
			}
			if v.mode != modeKernel {
				t.Errorf("%s: mode = %v, want kernel", c.name, v.mode)
			}
		}
	}
}

func TestDecodeExceptions(t *testing.T) {
	for _, c := range []struct {
		name     string
		vec      arch.Vector
		errCode  uint64
		wantKind platform.EventKind
		access   platform.AccessType
		notPres  bool
		reason   platform.ExitReason
	}{
		{"write to absent page", arch.VectorPF, arch.PFUser | arch.PFWrite, platform.EventFault, platform.Write, true, platform.ExitPageFault},
		{"read protection", arch.VectorPF, arch.PFUser | arch.PFPresent, platform.EventFault, platform.Read, false, platform.ExitPageFault},
		{"fetch from NX", arch.VectorPF, arch.PFUser | arch.PFPresent | arch.PFInstr, platform.EventFault, platform.Execute, false, platform.ExitPageFault},
		{"general protection", arch.VectorGP, 0x82, platform.EventException, 0, false, platform.ExitException},
		{"breakpoint", arch.VectorBP, 0, platform.EventException, 0, false, platform.ExitException},
		{"invalid opcode", arch.VectorUD, 0, platform.EventException, 0, false, platform.ExitException},
	} {
		v, a := newFakeVCPU(t)
		regs := userTestRegs()
		v.prepare(&regs, a, 0)
		guestException(v, c.vec, c.errCode, &regs)
		v.run.sregs.CR2 = 0xdead000
		var got arch.Registers
		res, err := v.decode(0, &got)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		ev := res.event
		if !res.hasEvent || ev.Kind != c.wantKind || res.reason != c.reason {
			t.Errorf("%s: event %+v reason %v, want kind %v reason %v", c.name, ev, res.reason, c.wantKind, c.reason)
		}
		if c.wantKind == platform.EventFault {
			if ev.Addr != 0xdead000 || ev.Access != c.access || ev.NotPresent != c.notPres {
				t.Errorf("%s: fault addr %#x access %v notPresent %v, want %#x %v %v", c.name, ev.Addr, ev.Access, ev.NotPresent, 0xdead000, c.access, c.notPres)
			}
		} else if ev.Vector != c.vec {
			t.Errorf("%s: vector %d, want %d", c.name, ev.Vector, c.vec)
		}
		if ev.ErrorCode != c.errCode {
			t.Errorf("%s: error code %#x, want %#x", c.name, ev.ErrorCode, c.errCode)
		}
		want := regs
		want.Cs, want.Ss, want.OrigRax = guest.UserCS, guest.UserDS, ^uint64(0)
		want.FsBase = v.run.sregs.FS.Base
		if got != want {
			t.Errorf("%s: registers %+v\nwant %+v", c.name, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		setup  func(v *vcpu)
		errno  unix.Errno
		substr string
	}{
		{"ring-0 exception", func(v *vcpu) {
			regs := userTestRegs()
			guestException(v, arch.VectorPF, 0, &regs)
			v.writeStack(ExceptionFrame(v.id)+24, guest.KernelCS)
		}, 0, "exception 14"},
		{"exception off the frame", func(v *vcpu) {
			regs := userTestRegs()
			guestException(v, arch.VectorGP, 0, &regs)
			v.run.regs.RSP -= 64
		}, 0, "in ring 0"},
		{"double fault", func(v *vcpu) {
			regs := userTestRegs()
			guestException(v, arch.VectorDF, 0, &regs)
		}, 0, "fatal"},
		{"triple fault", func(v *vcpu) { v.run.exitReason = exitShutdown }, 0, "triple fault"},
		{"hlt", func(v *vcpu) { v.run.exitReason = exitHLT }, 0, "unexpected exit reason 5"},
		{"foreign port", func(v *vcpu) {
			regs := userTestRegs()
			guestSyscall(v, &regs)
			v.run.exitIO().port = 0x3f8
		}, 0, "port 0x3f8"},
		{"errno", func(v *vcpu) {}, unix.EFAULT, "KVM_RUN"},
	} {
		v, _ := newFakeVCPU(t)
		c.setup(v)
		var r arch.Registers
		_, err := v.decode(c.errno, &r)
		if err == nil || !strings.Contains(err.Error(), c.substr) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.substr)
		}
	}
}

func TestDecodeStopped(t *testing.T) {
	regs := userTestRegs()
	for _, c := range []struct {
		name      string
		setup     func(v *vcpu)
		wantEvent bool
		wantKind  platform.EventKind
		wantMode  vcpuMode
		wantRip   uint64
		wantRax   uint64
	}{
		{"in ring 3", func(v *vcpu) {
			setGPRs(&v.run.regs, &regs)
			v.run.regs.RIP, v.run.regs.RFLAGS, v.run.regs.RSP = 0x401234, 0x202, regs.Rsp
			v.run.sregs.CS.Selector = guest.UserCS
		}, false, 0, modeUser, 0x401234, 39},
		{"at an unreported syscall", func(v *vcpu) {
			guestSyscall(v, &regs)
		}, true, platform.EventSyscall, modeKernel, regs.Rip + 2, 39},
		{"at sysretq", func(v *vcpu) {
			guestSyscall(v, &regs)
			v.run.regs.RIP = sysretVA
		}, false, 0, modeKernel, regs.Rip + 2, 39},
		{"before the pending out", func(v *vcpu) {
			guestSyscall(v, &regs)
			v.mode = modeSyscall
		}, false, 0, modeSyscall, regs.Rip + 2, 39},
		{"at iretq", func(v *vcpu) {
			v.prepare(&regs, v.loadedAS, 0)
			v.run.regs.RIP = iretVA
		}, false, 0, modeKernel, regs.Rip, 39},
		{"in the flush, rax saved", func(v *vcpu) {
			v.prepare(&regs, v.loadedAS, 0)
			v.writeStack(IretFrame(v.id)-8, 39)
			v.run.regs.RAX = 0xc3c3000
			v.run.regs.RIP, v.run.regs.RSP = iretFlushVA+4, IretFrame(v.id)-8
		}, false, 0, modeKernel, regs.Rip, 39},
		{"in an exception slot", func(v *vcpu) {
			v.prepare(&regs, v.loadedAS, 0)
			guestException(v, arch.VectorUD, 0, &regs)
			v.run.regs.RIP = CodeVA + uint64(guest.SlotException(arch.VectorUD)*guest.SlotSize)
			v.run.regs.RSP = StackTop(v.id) - iretFrameSize
		}, true, platform.EventException, modeKernel, regs.Rip, 39},
	} {
		v, a := newFakeVCPU(t)
		v.loadedAS = a
		c.setup(v)
		var r arch.Registers
		res, err := v.decode(unix.EINTR, &r)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if res.hasEvent != c.wantEvent || (c.wantEvent && res.event.Kind != c.wantKind) {
			t.Errorf("%s: result %+v, want event %v kind %v", c.name, res, c.wantEvent, c.wantKind)
		}
		if v.mode != c.wantMode {
			t.Errorf("%s: mode %v, want %v", c.name, v.mode, c.wantMode)
		}
		if r.Rip != c.wantRip || r.Rax != c.wantRax {
			t.Errorf("%s: RIP %#x RAX %d, want %#x %d", c.name, r.Rip, r.Rax, c.wantRip, c.wantRax)
		}
		if c.name == "in the flush, rax saved" && v.loadedAS != nil {
			t.Errorf("%s: flush not redone", c.name)
		}
	}
}

func TestResumeFromRing3NeedsFlush(t *testing.T) {
	v, a := newFakeVCPU(t)
	regs := userTestRegs()
	v.prepare(&regs, a, 0)
	v.run.sregs.CS.Selector, v.run.sregs.SS.Selector = guest.UserCS, guest.UserDS
	var r arch.Registers
	if _, err := v.decode(unix.EINTR, &r); err != nil {
		t.Fatal(err)
	}
	if got := v.prepare(&r, a, 0); got != pathResume {
		t.Errorf("same generation: path %d, want resume", got)
	}
	v.mode = modeUser
	if got := v.prepare(&r, a, 1); got != pathIretFlush {
		t.Fatalf("new generation: path %d, want iret+flush", got)
	}
	if v.run.sregs.CS != kernelCSSeg || v.run.kvmDirtyRegs&syncSregs == 0 {
		t.Errorf("ring-3 vCPU not sent back through ring 0: CS %+v dirty %#x", v.run.sregs.CS, v.run.kvmDirtyRegs)
	}
}

// TestFlushSlotOffsets checks the offsets stoppedInIret relies on against
// the trap code.
func TestFlushSlotOffsets(t *testing.T) {
	code := guest.Code()[guest.SlotIretFlush*guest.SlotSize:]
	var offs []int
	for off, i := 0, 0; i < 5; i++ {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			t.Fatal(err)
		}
		off += inst.Len
		offs = append(offs, off)
	}
	// After push, mov from CR3, mov to CR3, pop.
	if offs[0] != flushAfterPush || offs[2] != flushAfterStore || offs[3] != flushAfterPop {
		t.Errorf("instruction ends %v, want push end %d, CR3 store end %d, pop end %d", offs, flushAfterPush, flushAfterStore, flushAfterPop)
	}
}

// TestInterruptedDelivery: a vCPU stopped in ring 3 while KVM still holds
// an exception to inject resumes in place, whatever flush is owed, so that
// the exception is delivered where it was raised; the flush stays owed. In
// another address space the event is dropped instead.
func TestInterruptedDelivery(t *testing.T) {
	v, a := newFakeVCPU(t)
	stopDelivering := func() arch.Registers {
		t.Helper()
		v.run.sregs.CS.Selector, v.run.sregs.SS.Selector = guest.UserCS, guest.UserDS
		v.run.events[eventsExceptionInjected] = 1
		var r arch.Registers
		res, err := v.decode(unix.EINTR, &r)
		if err != nil || res.hasEvent {
			t.Fatalf("decode: %+v, %v; want a stop without event", res, err)
		}
		return r
	}
	regs := userTestRegs()
	v.prepare(&regs, a, 0)
	r := stopDelivering()
	if got := v.prepare(&r, a, 1); got != pathResume {
		t.Errorf("new generation while delivering: path %d, want resume", got)
	}
	if v.loadedAS != nil {
		t.Errorf("flush no longer owed after resuming to deliver")
	}
	if v.run.kvmDirtyRegs&syncEvents != 0 {
		t.Errorf("event cancelled on resume")
	}
	if got := v.prepare(&r, a, 1); got != pathIretFlush {
		t.Errorf("entry after the delivery: path %d, want iret+flush", got)
	}

	b := &addressSpace{p: a.p, pt: a.pt}
	v.mode = modeUser
	v.loadedAS = a
	r = stopDelivering()
	if got := v.prepare(&r, b, 0); got != pathIretFlush {
		t.Errorf("other address space while delivering: path %d, want iret+flush", got)
	}
	if v.run.eventInFlight() || v.run.kvmDirtyRegs&syncEvents == 0 {
		t.Errorf("event not cancelled: in flight %v, dirty %#x", v.run.eventInFlight(), v.run.kvmDirtyRegs)
	}
}

// TestTraceRecorder checks that the flight recorder keeps the last
// traceLen KVM_RUNs in order and names what each entry and exit was.
func TestTraceRecorder(t *testing.T) {
	v, a := newFakeVCPU(t)
	if s := v.traceString(); strings.Contains(s, "#") {
		t.Fatalf("empty recorder printed entries: %q", s)
	}
	for i := 0; i < traceLen+3; i++ {
		regs := userTestRegs()
		mode := v.mode
		v.traceEntered(v.prepare(&regs, a, 0), mode)
		guestSyscall(v, &regs)
		v.traceExited(0)
		if _, err := v.decode(0, &regs); err != nil {
			t.Fatal(err)
		}
	}
	v.run.exitReason = exitShutdown
	v.traceEntered(pathSysret, modeSyscall)
	v.traceExited(0)
	s := v.traceString()
	lines := strings.Split(s, "\n")
	if len(lines) != traceLen+2 || !strings.HasPrefix(lines[traceLen+1], "  page walk through CR3") {
		t.Fatalf("%d lines, want %d and a page walk last:\n%s", len(lines), traceLen+2, s)
	}
	if !strings.HasPrefix(lines[1], "  #5 ") || !strings.HasPrefix(lines[traceLen], "  #20 sysret from mode syscall") {
		t.Errorf("records out of order or misnamed:\n%s", s)
	}
	if !strings.Contains(lines[1], "iret from mode syscall") || !strings.Contains(lines[traceLen], "exit 8") {
		t.Errorf("records lack path or exit:\n%s", s)
	}
}
