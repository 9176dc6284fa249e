package vmm

import (
	"fmt"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/guest"
	"github.com/ringbox/ringbox/platform"
)

// exitResult is what one KVM_RUN amounted to.
type exitResult struct {
	// event is valid when hasEvent; otherwise the vCPU stopped without
	// anything for the kernel (an interrupted entry or a kick) and may
	// be re-entered.
	event    platform.Event
	hasEvent bool
	reason   platform.ExitReason
}

// decode interprets the vCPU's state after KVM_RUN returned errno and
// fills regs with the user registers when there is an event or the vCPU
// stopped on the way (so that an EventInterrupt reports exact registers).
// Only KVM_EXIT_IO on the two exit ports and EINTR are expected; anything
// else is a platform bug or a broken guest and is returned as an error
// naming the exit.
func (v *vcpu) decode(errno unix.Errno, regs *arch.Registers) (exitResult, error) {
	run := v.run
	switch {
	case errno == unix.EINTR:
		return v.decodeStopped(regs)
	case errno != 0:
		return exitResult{}, fmt.Errorf("KVM_RUN: %w", errno)
	}
	switch run.exitReason {
	case exitIO:
		return v.decodeIO(regs)
	case exitIntr:
		return v.decodeStopped(regs)
	case exitShutdown:
		return exitResult{}, fmt.Errorf("guest shut down (triple fault) at RIP %#x, CS %#x", run.regs.RIP, run.sregs.CS.Selector)
	case exitFailEntry:
		return exitResult{}, fmt.Errorf("VM entry failed: hardware reason %#x", run.exitU64())
	case exitInternalError:
		ie := run.exitInternal()
		return exitResult{}, fmt.Errorf("KVM internal error: suberror %d, data %#x, at RIP %#x", ie.suberror, ie.data[:min(ie.ndata, 16)], run.regs.RIP)
	default:
		return exitResult{}, fmt.Errorf("unexpected exit reason %d at RIP %#x, CS %#x", run.exitReason, run.regs.RIP, run.sregs.CS.Selector)
	}
}

// cpl returns the vCPU's privilege level from the synced CS.
func (v *vcpu) cpl() uint16 { return v.run.sregs.CS.Selector & 3 }

// decodeIO handles KVM_EXIT_IO: a trap of ring 3 reaching one of the exit
// ports.
func (v *vcpu) decodeIO(regs *arch.Registers) (exitResult, error) {
	run := v.run
	io := run.exitIO()
	k := &run.regs
	if io.direction != exitIOOut || v.cpl() != 0 {
		return exitResult{}, fmt.Errorf("unexpected port I/O (port %#x, direction %d) at RIP %#x, CPL %d", io.port, io.direction, k.RIP, v.cpl())
	}
	switch {
	case io.port == guest.SyscallPort && k.RIP == syscallOutVA:
		v.mode = modeSyscall
		return v.syscallEvent(regs), nil
	case io.port == guest.ExceptionPort:
		// KVM reports RIP on the out (fast PIO; it skips the out on
		// the next KVM_RUN); accept the address after it too, which
		// other backends report.
		vec, ok := exceptionAt(k.RIP)
		if out := CodeVA + uint64(guest.SlotException(vec)*guest.SlotSize+guest.ExceptionOutOffset(vec)); !ok || (k.RIP != out && k.RIP != out+2) {
			return exitResult{}, fmt.Errorf("exception exit from unexpected RIP %#x", k.RIP)
		}
		v.mode = modeKernel
		if k.RSP != ExceptionFrame(v.id) {
			return exitResult{}, v.ring0Trap(vec, k.RSP)
		}
		if got := v.readStack(k.RSP); got != uint64(vec) {
			return exitResult{}, fmt.Errorf("exception frame holds vector %d, slot is %d", got, vec)
		}
		return v.exceptionEvent(vec, v.readStack(k.RSP+8), k.RSP+16, regs)
	}
	return exitResult{}, fmt.Errorf("unexpected port I/O (port %#x) at RIP %#x", io.port, k.RIP)
}

// exceptionAt returns the vector whose slot holds the ring-0 address rip.
func exceptionAt(rip uint64) (arch.Vector, bool) {
	if rip < CodeVA || rip >= CodeVA+guest.CodeSize {
		return 0, false
	}
	return guest.ExceptionOfSlot(rip - CodeVA)
}

// syscallEvent builds the syscall event from the state at the syscall
// out: RCX and R11 hold the user's RIP and RFLAGS, as Linux's pt_regs
// shows them after syscall.
func (v *vcpu) syscallEvent(regs *arch.Registers) exitResult {
	k := &v.run.regs
	v.userRegs(regs, k.RCX, k.R11, k.RSP)
	regs.OrigRax = k.RAX
	return exitResult{
		event:    platform.Event{Kind: platform.EventSyscall, CPU: v.id},
		hasEvent: true,
		reason:   platform.ExitSyscall,
	}
}

// userRegs fills regs from the synced general registers and the given
// RIP, RFLAGS and RSP.
func (v *vcpu) userRegs(regs *arch.Registers, rip, flags, rsp uint64) {
	getGPRs(regs, &v.run.regs)
	regs.Rip, regs.Eflags, regs.Rsp = rip, flags, rsp
	regs.Cs, regs.Ss = guest.UserCS, guest.UserDS
	regs.FsBase, regs.GsBase = v.run.sregs.FS.Base, v.run.sregs.GS.Base
	// Not in a system call (Linux: orig_ax is -1 on exception and
	// interrupt entry).
	regs.OrigRax = ^uint64(0)
}

// exceptionEvent builds the event of exception vec with error code errCode
// whose CPU frame (RIP, CS, RFLAGS, RSP, SS) is at frame.
func (v *vcpu) exceptionEvent(vec arch.Vector, errCode, frame uint64, regs *arch.Registers) (exitResult, error) {
	cs := v.readStack(frame + 8)
	if cs&3 != 3 || vec == arch.VectorDF || vec == arch.VectorNMI || vec == arch.VectorMC {
		return exitResult{}, fmt.Errorf("exception %d (error %#x) at RIP %#x, CS %#x: fatal", vec, errCode, v.readStack(frame), cs)
	}
	v.userRegs(regs, v.readStack(frame), v.readStack(frame+16), v.readStack(frame+24))
	ev := platform.Event{Kind: platform.EventException, Vector: vec, ErrorCode: errCode, CPU: v.id}
	res := exitResult{hasEvent: true, reason: platform.ExitException}
	switch vec {
	case arch.VectorPF:
		ev.Kind = platform.EventFault
		ev.Addr = v.run.sregs.CR2
		ev.Access = platform.Read
		if errCode&arch.PFWrite != 0 {
			ev.Access = platform.Write
		}
		if errCode&arch.PFInstr != 0 {
			ev.Access = platform.Execute
		}
		ev.NotPresent = errCode&arch.PFPresent == 0
		res.reason = platform.ExitPageFault
	case arch.VectorDB:
		dr6, err := v.takeDR6()
		if err != nil {
			return exitResult{}, err
		}
		ev.DebugStatus = dr6
	}
	res.event = ev
	return res, nil
}

// takeDR6 reads DR6 after a #DB and resets it, as Linux's #DB handler
// does (arch/x86/kernel/traps.c:debug_read_clear_dr6()), so that the next
// #DB reports only its own causes. Two ioctls, on #DB only.
func (v *vcpu) takeDR6() (uint64, error) {
	var d kvm.DebugRegs
	v.stats.ioctls.Add(1)
	if err := v.h.getDebugRegs(&d); err != nil {
		return 0, err
	}
	dr6 := d.DR6
	if v.entryFlags&arch.FlagTF != 0 {
		// The step was asked for; some KVM versions do not expose
		// the guest's DR6 through KVM_GET_DEBUGREGS.
		dr6 |= arch.DR6BS
	}
	d.DR6 = arch.DR6Reserved
	v.stats.ioctls.Add(1)
	if err := v.h.setDebugRegs(&d); err != nil {
		return 0, err
	}
	return dr6, nil
}

// ring0Trap describes an exception taken in ring 0: always a bug of the
// platform, reported with the vector and where it happened.
func (v *vcpu) ring0Trap(vec arch.Vector, rsp uint64) error {
	if _, ok := v.physOfStackVA(rsp + 16 + 8); !ok {
		return fmt.Errorf("exception %d in ring 0 with RSP %#x off the vCPU stacks", vec, rsp)
	}
	return fmt.Errorf("exception %d (error %#x) in ring 0 at RIP %#x, CS %#x", vec, v.readStack(rsp+8), v.readStack(rsp+16), v.readStack(rsp+24))
}

// decodeStopped handles a KVM_RUN that returned EINTR: immediate_exit or a
// signal took the vCPU out wherever it was. In ring 3 the synced registers
// are the user's. In ring 0 the position in the trap code tells where the
// user state is; if the vCPU had already trapped (a syscall or exception
// that had not reached its out yet), that trap is the event.
func (v *vcpu) decodeStopped(regs *arch.Registers) (exitResult, error) {
	k := &v.run.regs
	res := exitResult{reason: platform.ExitInterrupt}
	if v.cpl() == 3 {
		v.mode = modeUser
		v.userRegs(regs, k.RIP, k.RFLAGS, k.RSP)
		// A VM exit in the middle of delivering an exception (a
		// nested page fault on the IDT or the ring-0 stack, common
		// under nested virtualization) leaves it to KVM to inject on
		// the next entry, wherever the registers then point. Entering
		// through the iretq slot would raise it in ring 0 there, and
		// a vCPU handed to another context would raise it in that
		// context; so the next entry resumes in place and the
		// exception exit follows.
		v.delivering = v.run.eventInFlight()
		return res, nil
	}
	rip := k.RIP
	switch {
	case rip == syscallOutVA && v.mode == modeSyscall:
		// KVM stopped before completing the pending out: nothing ran.
		v.userRegs(regs, k.RCX, k.R11, k.RSP)
		return res, nil
	case rip == syscallOutVA:
		// The program made a system call and the out has not run yet;
		// it must not run later either (modeKernel enters by iretq).
		v.mode = modeKernel
		return v.syscallEvent(regs), nil
	case rip == sysretVA:
		v.mode = modeKernel
		v.userRegs(regs, k.RCX, k.R11, k.RSP)
		return res, nil
	case rip == iretVA || (rip >= iretFlushVA && rip < iretFlushVA+guest.SlotSize):
		v.mode = modeKernel
		return res, v.stoppedInIret(regs)
	}
	if vec, ok := exceptionAt(rip); ok {
		v.mode = modeKernel
		// The CPU pushed its frame at the top of the stack it
		// switched to; the slot's pushes may or may not have run.
		top := StackTop(v.id)
		if ist := guest.ISTOf(vec); ist != 0 {
			top = ISTTop(v.id, int(ist))
		}
		var errCode uint64
		if vec.HasErrorCode() {
			errCode = v.readStack(top - 48)
		}
		return v.exceptionEvent(vec, errCode, top-iretFrameSize, regs)
	}
	return res, fmt.Errorf("stopped in ring 0 at unexpected RIP %#x", rip)
}

// Offsets in SlotIretFlush (guest/entry_amd64.s): push %rax (1 byte),
// mov %cr3,%rax (3), mov %rax,%cr3 (3), pop %rax (1), iretq.
const (
	flushAfterPush  = 1
	flushAfterStore = 7
	flushAfterPop   = 8
)

// stoppedInIret recovers the user registers of a vCPU stopped on its way
// out through an iretq slot: the frame is at IretFrame, and in the flush
// slot RAX may be saved on the stack below it.
func (v *vcpu) stoppedInIret(regs *arch.Registers) error {
	k := &v.run.regs
	f := IretFrame(v.id)
	v.userRegs(regs, v.readStack(f), v.readStack(f+16), v.readStack(f+24))
	if k.RIP >= iretFlushVA {
		off := k.RIP - iretFlushVA
		if off < flushAfterStore {
			// CR3 not reloaded yet: the flush is still owed.
			v.loadedAS = nil
		}
		if off >= flushAfterPush && off < flushAfterPop {
			regs.Rax = v.readStack(f - 8)
		}
	}
	if k.RSP != f && !(k.RIP > iretFlushVA && k.RSP == f-8) {
		return fmt.Errorf("stopped in the iretq path with RSP %#x, want %#x", k.RSP, f)
	}
	return nil
}
