package vmm

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// traceLen is how many KVM_RUNs a vCPU's flight recorder keeps.
const traceLen = 16

// traceEntry records one KVM_RUN: how the vCPU was entered and where it
// stopped. The recorder costs a few stores per KVM_RUN and is read only
// when an exit cannot be decoded (a triple fault, a failed entry), where
// the last entries are the only clue to what the guest was doing: after a
// shutdown KVM has already reset the vCPU's registers.
type traceEntry struct {
	seq      uint64
	path     entryPath
	mode     vcpuMode // before the entry
	rip      uint64   // entered at
	rsp      uint64
	rflags   uint64
	cr3      uint64
	dirty    uint64
	evBefore [4]byte // exception injected/pending, interrupt, NMI in flight
	errno    unix.Errno
	exit     uint32
	ripAfter uint64
	cplAfter uint16
	evAfter  [4]byte
	evVector uint8
	// rcx and rax after the exit: at a syscall exit, the user's RIP and
	// the system call number.
	rcx, rax uint64
}

var pathNames = [...]string{"sysret", "resume", "iret", "iret+flush"}

func (p entryPath) String() string {
	if int(p) < len(pathNames) {
		return pathNames[p]
	}
	return fmt.Sprintf("path(%d)", int(p))
}

func (r *kvmRun) eventBytes() [4]byte {
	e := &r.events
	return [4]byte{e[eventsExceptionInjected], e[eventsExceptionPending], e[eventsInterruptInjected], e[eventsNMIInjected]}
}

// traceEntered records an entry about to be made along path.
func (v *vcpu) traceEntered(path entryPath, mode vcpuMode) {
	run := v.run
	v.traceSeq++
	t := &v.trace[v.traceSeq%traceLen]
	*t = traceEntry{
		seq: v.traceSeq, path: path, mode: mode,
		rip: run.regs.RIP, rsp: run.regs.RSP, rflags: run.regs.RFLAGS,
		cr3: run.sregs.CR3, dirty: run.kvmDirtyRegs, evBefore: run.eventBytes(),
	}
}

// traceExited completes the current record with how KVM_RUN returned.
func (v *vcpu) traceExited(errno unix.Errno) {
	run := v.run
	t := &v.trace[v.traceSeq%traceLen]
	t.errno, t.exit = errno, run.exitReason
	t.ripAfter, t.cplAfter = run.regs.RIP, run.sregs.CS.Selector&3
	t.evAfter, t.evVector = run.eventBytes(), run.events[1]
	t.rcx, t.rax = run.regs.RCX, run.regs.RAX
}

// traceString formats the recorder, oldest first.
func (v *vcpu) traceString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "last KVM_RUNs of vCPU %d, oldest first:", v.id)
	first := uint64(1)
	if v.traceSeq > traceLen {
		first = v.traceSeq - traceLen + 1
	}
	for seq := first; seq <= v.traceSeq; seq++ {
		t := &v.trace[seq%traceLen]
		fmt.Fprintf(&b, "\n  #%d %s from mode %s: RIP %#x RSP %#x RFLAGS %#x CR3 %#x dirty %#x events %v -> errno %d exit %d, RIP %#x CPL %d events %v vector %d RCX %#x RAX %#x",
			t.seq, t.path, t.mode, t.rip, t.rsp, t.rflags, t.cr3, t.dirty, t.evBefore,
			int(t.errno), t.exit, t.ripAfter, t.cplAfter, t.evAfter, t.evVector, t.rcx, t.rax)
	}
	if v.traceSeq > 0 {
		// The user's RIP is RCX at the last syscall exit (an exit
		// that failed leaves RCX reset).
		last := &v.trace[v.traceSeq%traceLen]
		rip := last.rcx
		if prev := &v.trace[(v.traceSeq-1)%traceLen]; rip == 0 && v.traceSeq > 1 {
			rip = prev.rcx
		}
		b.WriteString(v.walkString(last.cr3, last.rsp, rip))
	}
	return b.String()
}

// walkString translates, through the page tables at cr3, the addresses
// the CPU needs to take an exception from ring 3 (IDT, GDT and TSS, the
// ring-0 and IST stacks, the trap code) and the user's RSP and RIP: after
// a triple fault, a missing one is the culprit.
func (v *vcpu) walkString(cr3, userRSP, userRIP uint64) string {
	if v.p == nil || v.p.mf == nil || cr3 == 0 || cr3 >= v.p.mf.Size() {
		return ""
	}
	pt := &pageTables{mf: v.p.mf, root: cr3}
	var b strings.Builder
	fmt.Fprintf(&b, "\n  page walk through CR3 %#x:", cr3)
	base := cpuBlockVA(v.id)
	addrs := []struct {
		name string
		va   uint64
	}{
		{"code", CodeVA}, {"IDT", IDTVA}, {"GDT", base + gdtOffset}, {"TSS", base + tssOffset},
		{"RSP0", StackTop(v.id) - 8}, {"IST1", ISTTop(v.id, 1) - 8}, {"IST2", ISTTop(v.id, 2) - 8},
		{"IST3", ISTTop(v.id, 3) - 8}, {"user RSP", userRSP}, {"user RIP", userRIP},
	}
	for _, a := range addrs {
		fmt.Fprintf(&b, " %s %#x=%#x", a.name, a.va, pt.lookup(a.va))
	}
	return b.String()
}
