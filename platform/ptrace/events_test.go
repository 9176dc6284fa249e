package ptrace

import (
	"runtime"
	"testing"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/platform"
)

// The events below are specific to this platform's mechanism: the host
// would run them itself, and the platform turns them into what a machine
// without them raises.
func TestHostOnlyEntries(t *testing.T) {
	const stack = 0x700000
	tests := []struct {
		name    string
		prog    []byte
		rax     uint64
		wantEv  platform.Event
		wantRip uint64
		wantRsp uint64
		wantRax uint64
	}{
		{
			name: "int 0x80",
			prog: []byte{
				0x90,       // nop
				0xcd, 0x80, // int 0x80
			},
			rax:     20, // i386 writev, 64-bit sendfile: neither may run
			wantEv:  platform.Event{Kind: platform.EventException, Vector: arch.VectorGP, ErrorCode: 0x402},
			wantRip: testCode + 1,
			wantRsp: stack + arch.PageSize,
			wantRax: 20,
		},
		{
			name: "call into the vsyscall page",
			prog: []byte{
				0x48, 0xb8, 0x00, 0x04, 0x60, 0xff, 0xff, 0xff, 0xff, 0xff, // mov rax, 0xffffffffff600400 (time)
				0xff, 0xd0, // call rax
			},
			wantEv: platform.Event{Kind: platform.EventFault, Addr: vsyscallStart + 0x400, Access: platform.Execute,
				NotPresent: true, ErrorCode: arch.PFUser | arch.PFInstr},
			wantRip: vsyscallStart + 0x400,
			wantRsp: stack + arch.PageSize - 8, // the return address pushed
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f := newFixture(t)
			defer f.close()
			st := f.state(tc.prog)
			fr, err := f.mf.Allocate(1)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.as.MapFile(stack, fr, platform.ReadWrite); err != nil {
				t.Fatal(err)
			}
			st.Regs.Rsp, st.Regs.Rax = stack+arch.PageSize, tc.rax
			ev, err := f.ctx.Switch(f.as, st)
			if err != nil {
				t.Fatalf("Switch: %v", err)
			}
			ev.CPU = 0
			if ev != tc.wantEv {
				t.Errorf("event = %+v, want %+v", ev, tc.wantEv)
			}
			if st.Regs.Rip != tc.wantRip || st.Regs.Rsp != tc.wantRsp {
				t.Errorf("rip, rsp = %#x, %#x, want %#x, %#x", st.Regs.Rip, st.Regs.Rsp, tc.wantRip, tc.wantRsp)
			}
			if tc.wantRax != 0 && st.Regs.Rax != tc.wantRax {
				t.Errorf("rax = %d, want %d", st.Regs.Rax, tc.wantRax)
			}
			// The stub survived: the context runs on.
			st.Regs.Rip = testCode
			if _, err := f.ctx.Switch(f.as, st); err != nil {
				t.Errorf("Switch after the event: %v", err)
			}
		})
	}
}

// TestInjectionUnderDebugging injects mappings into a stub thread whose
// program single-steps itself or has a hardware breakpoint on the stub's
// own syscall instruction; the mappings must land all the same.
func TestInjectionUnderDebugging(t *testing.T) {
	const data = 0x600000
	tests := []struct {
		name  string
		setup func(st *arch.State)
	}{
		{"single-stepping", func(st *arch.State) { st.Regs.Eflags |= arch.FlagTF }},
		{"breakpoint on the stub", func(st *arch.State) {
			st.DebugRegs[0] = stubInjectSyscall
			st.DebugRegs[7] = 1 // L0: DR0 enabled, execute
			st.DebugDirty = true
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			f := newFixture(t)
			defer f.close()
			st := f.state([]byte{
				0x0f, 0x05, // 0x0: syscall
				0x48, 0x8b, 0x3b, // 0x2: mov rdi, [rbx]
				0x0f, 0x05, // 0x5: syscall
			})
			st.Regs.Rbx = data
			tc.setup(st)
			// Stop the thread at a syscall-stop, where RFLAGS.RF is
			// clear (after a fault it is set and would hide a
			// breakpoint on the next instruction).
			if ev, err := f.ctx.Switch(f.as, st); err != nil || ev.Kind != platform.EventSyscall {
				t.Fatalf("Switch: event %v, err %v; want a syscall", ev.Kind, err)
			}
			fr, err := f.mf.Allocate(1)
			if err != nil {
				t.Fatal(err)
			}
			f.mf.Bytes(fr)[0] = 0x5a
			if err := f.as.MapFile(data, fr, platform.Read); err != nil {
				t.Fatalf("MapFile: %v", err)
			}
			st.Regs.Rip = testCode + 2
			st.Regs.Eflags &^= arch.FlagTF
			st.DebugRegs = [8]uint64{}
			st.DebugDirty = true
			ev, err := f.ctx.Switch(f.as, st)
			if err != nil || ev.Kind != platform.EventSyscall || st.Regs.Rdi != 0x5a {
				t.Errorf("after MapFile: event %v, err %v, rdi %#x; want a syscall with rdi 0x5a", ev.Kind, err, st.Regs.Rdi)
			}
		})
	}
}
