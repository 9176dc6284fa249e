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
		fmt.Fprintf(&b, "\n  #%d %s from mode %s: RIP %#x RSP %#x RFLAGS %#x CR3 %#x dirty %#x events %v -> errno %d exit %d, RIP %#x CPL %d events %v vector %d",
			t.seq, t.path, t.mode, t.rip, t.rsp, t.rflags, t.cr3, t.dirty, t.evBefore,
			int(t.errno), t.exit, t.ripAfter, t.cplAfter, t.evAfter, t.evVector)
	}
	return b.String()
}
