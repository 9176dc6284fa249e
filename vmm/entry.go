package vmm

import (
	"github.com/bobuhiro11/gokvm/kvm"

	"github.com/ringbox/ringbox/arch"
	"github.com/ringbox/ringbox/guest"
)

// RFLAGS bits not in package arch.
const (
	flagPF = 1 << 2
	flagAF = 1 << 4
	flagZF = 1 << 6
	flagSF = 1 << 7
	flagOF = 1 << 11
	flagRF = 1 << 16
)

// userFlagsMask are the RFLAGS bits ring 3 may hold. IOPL stays 0 (in/out
// from ring 3 must fault: they would otherwise reach the exit ports), NT
// stays 0 (iretq with NT set faults in long mode) and VM, VIF and VIP have
// no meaning in long mode.
//
// TODO: Linux grants IOPL 3 through iopl(2); ringbox never does, so such a
// program gets SIGSEGV on its first in/out.
const userFlagsMask = arch.FlagCF | flagPF | flagAF | flagZF | flagSF | arch.FlagTF |
	arch.FlagDF | flagOF | arch.FlagAC | arch.FlagID | flagRF

// userFlags returns the RFLAGS ring 3 runs with for a requested value:
// interrupts always enabled, reserved bit 1 set.
func userFlags(f uint64) uint64 {
	return f&userFlagsMask | arch.FlagReserved | arch.FlagIF
}

// canSysret reports whether sysretq can restore r, by Linux's rules
// (arch/x86/entry/common.c:do_syscall_64()): sysret loads RIP from RCX and
// RFLAGS from R11, so both must already hold them; RIP must be a user
// address (a non-canonical RCX makes Intel's sysret fault in ring 0 with
// the user's stack); and RF and TF need iret to take effect as Linux
// defines (a trap after the first user instruction).
func canSysret(r *arch.Registers) bool {
	return r.Rcx == r.Rip &&
		r.R11 == r.Eflags &&
		r.Rip < arch.MaxUserAddress &&
		r.Eflags&(flagRF|arch.FlagTF) == 0
}

// setGPRs copies the general registers other than RIP, RSP and RFLAGS.
func setGPRs(k *kvm.Regs, r *arch.Registers) {
	k.RAX, k.RBX, k.RCX, k.RDX = r.Rax, r.Rbx, r.Rcx, r.Rdx
	k.RSI, k.RDI, k.RBP = r.Rsi, r.Rdi, r.Rbp
	k.R8, k.R9, k.R10, k.R11 = r.R8, r.R9, r.R10, r.R11
	k.R12, k.R13, k.R14, k.R15 = r.R12, r.R13, r.R14, r.R15
}

// getGPRs is the inverse of setGPRs.
func getGPRs(r *arch.Registers, k *kvm.Regs) {
	r.Rax, r.Rbx, r.Rcx, r.Rdx = k.RAX, k.RBX, k.RCX, k.RDX
	r.Rsi, r.Rdi, r.Rbp = k.RSI, k.RDI, k.RBP
	r.R8, r.R9, r.R10, r.R11 = k.R8, k.R9, k.R10, k.R11
	r.R12, r.R13, r.R14, r.R15 = k.R12, k.R13, k.R14, k.R15
}

// entryPath says how prepare sends the vCPU to ring 3.
type entryPath int

const (
	// pathSysret lets KVM complete the syscall out and run sysretq: the
	// hot path, no memory written.
	pathSysret entryPath = iota
	// pathResume continues a vCPU stopped in ring 3.
	pathResume
	// pathIret enters through the iretq slot (pathIretFlush: the slot
	// that reloads CR3 first).
	pathIret
	pathIretFlush
)

// prepare loads regs into the synced registers of v's kvm_run, to run in
// a at generation gen on the next KVM_RUN, and returns the path taken.
// Only the synced registers and, for the iret paths, the vCPU's trap frame
// are written: no ioctl.
func (v *vcpu) prepare(regs *arch.Registers, a *addressSpace, gen uint64) entryPath {
	run := v.run
	s := &run.sregs
	k := &run.regs
	dirty := uint64(syncRegs)
	flush := v.loadedAS != a || v.loadedGen != gen
	if root := a.pt.root; s.CR3 != root {
		s.CR3 = root
		dirty |= syncSregs
	}
	if s.FS.Base != regs.FsBase || s.GS.Base != regs.GsBase {
		s.FS.Base, s.GS.Base = regs.FsBase, regs.GsBase
		dirty |= syncSregs
	}
	setGPRs(k, regs)
	flags := userFlags(regs.Eflags)
	var path entryPath
	switch {
	case v.mode == modeSyscall && !flush && canSysret(regs):
		// RIP stays on the out, so KVM skips it and the guest runs
		// sysretq (see vcpuMode).
		k.RCX, k.R11, k.RSP = regs.Rip, flags, regs.Rsp
		path = pathSysret
	case v.mode == modeUser && v.delivering && v.loadedAS == a:
		// Finish the delivery of an exception (decodeStopped); it
		// touches only the ring-0 region, which no flush concerns.
		// The flush, if owed, stays owed.
		k.RIP, k.RFLAGS, k.RSP = regs.Rip, flags, regs.Rsp
		path = pathResume
		if flush {
			a, gen = nil, 0
		}
	case v.mode == modeUser && !flush:
		k.RIP, k.RFLAGS, k.RSP = regs.Rip, flags, regs.Rsp
		path = pathResume
	default:
		if v.delivering {
			// Another address space: the event belongs to a
			// program that is gone (a fault is raised again when
			// its instruction runs again).
			run.cancelEvents()
			dirty |= syncEvents
		}
		if v.mode == modeUser {
			// Back to ring 0 so that the iretq slot can run.
			s.CS, s.SS = kernelCSSeg, kernelSSSeg
			dirty |= syncSregs
		}
		v.writeIretFrame(regs.Rip, flags, regs.Rsp)
		k.RSP, k.RFLAGS = IretFrame(v.id), arch.FlagReserved
		path = pathIret
		k.RIP = iretVA
		if flush {
			path = pathIretFlush
			k.RIP = iretFlushVA
		}
		// Moving RIP off a pending syscall out cancels its completion
		// (KVM skips an out only if RIP is still on it).
		v.mode = modeKernel
	}
	v.loadedAS, v.loadedGen = a, gen
	v.entryFlags = flags
	v.delivering = false
	run.kvmDirtyRegs = dirty
	return path
}

// writeIretFrame writes the five words iretq pops.
func (v *vcpu) writeIretFrame(rip, flags, rsp uint64) {
	f := IretFrame(v.id)
	v.writeStack(f+0, rip)
	v.writeStack(f+8, guest.UserCS)
	v.writeStack(f+16, flags)
	v.writeStack(f+24, rsp)
	v.writeStack(f+32, guest.UserDS)
}
