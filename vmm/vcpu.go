package vmm

import (
	"fmt"
	"sync"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ringbox/ringbox/guest"
	"github.com/ringbox/ringbox/platform/memfile"
)

// vcpuMode says where a vCPU stopped, which decides how it re-enters ring 3.
type vcpuMode int

const (
	// modeKernel: in ring 0 anywhere (initial state, after an exception
	// exit or an interrupted entry); enter ring 3 through an iretq slot.
	modeKernel vcpuMode = iota
	// modeSyscall: stopped on the syscall out with the I/O pending; the
	// next KVM_RUN completes it and the guest runs the sysretq after it,
	// unless RIP is moved.
	modeSyscall
	// modeUser: stopped in ring 3 (KVM_RUN interrupted); resume in place.
	modeUser
)

var modeNames = [...]string{"kernel", "syscall", "user"}

func (m vcpuMode) String() string { return modeNames[m] }

// vcpu is one KVM vCPU and the guest pages that belong to it.
type vcpu struct {
	id     int
	p      *Platform
	h      *vcpuHandle
	runMem []byte
	run    *kvmRun
	// block is the contiguous run of memory-file pages of the vCPU's
	// ring-0 block (GDT and TSS, RSP0 stack, IST stacks; layout.go).
	block memfile.FileRange

	// The fields below belong to the goroutine of the context the vCPU is
	// bound to (context.bindVCPU), inside Switch.

	mode vcpuMode
	// loadedAS and loadedGen are the address space and generation whose
	// translations the vCPU's TLB may cache; an entry with another pair
	// flushes first.
	loadedAS  *addressSpace
	loadedGen uint64
	// entryFlags are the user RFLAGS of the last entry.
	entryFlags uint64
	// delivering is set when the vCPU stopped in ring 3 with an event
	// KVM has yet to deliver (kvmRun.eventInFlight): the next entry
	// resumes in place so that the delivery completes (decodeStopped).
	delivering bool
	// debugOwner is the context whose debug registers are loaded.
	debugOwner *context
	loadedDR7  uint64
	// trace is the flight recorder of the last KVM_RUNs (trace.go).
	trace    [traceLen]traceEntry
	traceSeq uint64

	// lastTID is the OS thread that ran the vCPU last. Written by the
	// holder; read under Platform.mu while the vCPU is idle.
	lastTID int
	// stats are the counters of the logical CPU the holder runs on; set
	// under the holder's context.fpMu (loadFP).
	stats *vcpuStats

	// kickMu protects the kick state: which context and address space
	// run on the vCPU and on which thread, and runSeq, which counts
	// returns from KVM_RUN. kickCond signals changes of runSeq and of the
	// running address space.
	kickMu   sync.Mutex
	kickCond sync.Cond
	kickCtx  *context
	kickAS   *addressSpace
	tid      int
	runSeq   uint64
}

// Segments of the initial state and of entries from modeUser through
// ring 0 (what KVM_SET_SREGS gets): flat 64-bit code and data of ring 0.
var (
	kernelCSSeg = kvm.Segment{Limit: 0xffffffff, Selector: guest.KernelCS, Typ: 0xb, Present: 1, S: 1, L: 1, G: 1}
	kernelSSSeg = kvm.Segment{Limit: 0xffffffff, Selector: guest.KernelDS, Typ: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	// nullSeg is an unusable data segment: user DS, ES, FS and GS hold
	// the null selector, as on Linux after execve.
	nullSeg = kvm.Segment{Unusable: 1}
)

// newVCPU creates vCPU id and puts it in its initial state: long mode,
// ring 0, at the iretq slot (modeKernel).
func newVCPU(p *Platform, id int, cpuid []kvm.CPUIDEntry2, runSize int) (_ *vcpu, err error) {
	block, err := p.mf.Allocate(cpuPages)
	if err != nil {
		return nil, fmt.Errorf("allocate ring-0 pages: %w", err)
	}
	v := &vcpu{id: id, p: p, block: block}
	v.kickCond.L = &v.kickMu
	defer func() {
		if err != nil {
			v.close()
		}
	}()
	if err := p.mapCPUBlock(id, block); err != nil {
		return nil, err
	}
	v.writeTables()

	if v.h, err = p.vm.createVCPU(id); err != nil {
		return nil, err
	}
	if v.runMem, v.run, err = v.h.mapRun(runSize); err != nil {
		return nil, err
	}
	// The order matters: CR4.OSXSAVE and XCR0 are checked against the
	// guest CPUID, so CPUID comes first.
	if err := v.h.setCPUID(cpuidForVCPU(cpuid, id)); err != nil {
		return nil, err
	}
	var s kvm.Sregs
	if err := v.h.getSregs(&s); err != nil {
		return nil, err
	}
	v.initialSregs(&s, guestCR4(cpuid, p.xcr0))
	if err := v.h.setSregs(&s); err != nil {
		return nil, err
	}
	if p.xcr0 != 0 {
		if err := v.h.setXCR0(p.xcr0); err != nil {
			return nil, err
		}
	}
	if err := v.h.setMSRs([]msrEntry{
		{index: msrSTAR, data: guest.STAR},
		{index: msrLSTAR, data: syscallEntryVA},
		// Compatibility mode is unreachable (no 32-bit user code
		// segment); CSTAR points at the same exit for safety.
		{index: msrCSTAR, data: syscallEntryVA},
		{index: msrSyscallMask, data: syscallMask},
		{index: msrKernelGSBase, data: 0},
	}); err != nil {
		return nil, err
	}
	r := kvm.Regs{RIP: iretVA, RSP: IretFrame(id), RFLAGS: 2}
	if err := v.h.setRegs(&r); err != nil {
		return nil, err
	}
	// The synced registers are only filled by KVM_RUN; seed them with
	// the state just set so that the first entry can edit them.
	v.run.regs = r
	v.run.sregs = s
	v.run.kvmValidRegs = syncRegs | syncSregs | syncEvents
	v.mode = modeKernel
	return v, nil
}

// initialSregs sets the control registers, descriptor tables and segments
// of the initial ring-0 state.
func (v *vcpu) initialSregs(s *kvm.Sregs, cr4 uint64) {
	s.CR0 = guestCR0
	s.CR3 = v.p.kernelPT.root
	s.CR4 = cr4
	s.EFER = guestEFER
	s.CS = kernelCSSeg
	s.SS = kernelSSSeg
	s.DS, s.ES, s.FS, s.GS = nullSeg, nullSeg, nullSeg, nullSeg
	s.TR = kvm.Segment{
		Base:     cpuBlockVA(v.id) + tssOffset,
		Limit:    guest.TSSSize - 1,
		Selector: guest.TSSSel,
		Typ:      guest.TypeTSSBusy,
		Present:  1,
	}
	s.LDT = kvm.Segment{Typ: 2, Unusable: 1}
	s.GDT = kvm.Descriptor{Base: cpuBlockVA(v.id) + gdtOffset, Limit: guest.GDTLimit}
	s.IDT = kvm.Descriptor{Base: IDTVA, Limit: guest.IDTLimit}
}

// writeTables writes the vCPU's GDT and TSS into its block.
func (v *vcpu) writeTables() {
	page := v.p.mf.Bytes(memfile.FileRange{Start: v.block.Start, End: v.block.Start + pageSize})
	copy(page[gdtOffset:], guest.GDT(cpuBlockVA(v.id)+tssOffset))
	tss := guest.TSS{RSP: [3]uint64{StackTop(v.id)}}
	for i := 1; i <= guest.NumIST; i++ {
		tss.IST[i-1] = ISTTop(v.id, i)
	}
	b := tss.Encode()
	copy(page[tssOffset:], b[:])
}

// cpuidForVCPU returns the CPUID table of vCPU id: KVM's supported table
// with the vCPU's APIC ID in leaf 1 (EBX[31:24]) and the x2APIC ID in
// leaves 0xb and 0x1f (EDX), so that each vCPU reports its own.
//
// TODO: a program reads its vCPU's ID, not the logical CPU's that
// Event.CPU names (KVM fixes CPUID at the first KVM_RUN); on Linux the
// APIC ID is the CPU's.
func cpuidForVCPU(supported []kvm.CPUIDEntry2, id int) []kvm.CPUIDEntry2 {
	out := append([]kvm.CPUIDEntry2(nil), supported...)
	for i := range out {
		e := &out[i]
		switch e.Function {
		case 1:
			e.Ebx = e.Ebx&0x00ffffff | uint32(id)<<24
		case 0xb, 0x1f:
			e.Edx = uint32(id)
		}
	}
	return out
}

// physOfStackVA translates a ring-0 stack address of this vCPU (RSP0 or
// IST stacks) to a memory-file offset, or false.
func (v *vcpu) physOfStackVA(va uint64) (uint64, bool) {
	base := cpuBlockVA(v.id)
	if va < base || va >= base+CPUStride {
		return 0, false
	}
	off := va - base
	var page uint64
	switch {
	case off >= stackOffset && off < stackOffset+pageSize:
		page = 1
	case off >= istOffset && off < istOffset+guest.NumIST*istStride && (off-istOffset)%istStride < pageSize:
		page = 2 + (off-istOffset)/istStride
	default:
		return 0, false
	}
	return v.block.Start + page*pageSize + off%pageSize, true
}

// close releases the vCPU's host resources and guest pages.
func (v *vcpu) close() error {
	var first error
	if v.runMem != nil {
		if err := unix.Munmap(v.runMem); err != nil && first == nil {
			first = fmt.Errorf("munmap kvm_run of vCPU %d: %w", v.id, err)
		}
		v.runMem, v.run = nil, nil
	}
	if v.h != nil {
		if err := v.h.close(); err != nil && first == nil {
			first = fmt.Errorf("close vCPU %d: %w", v.id, err)
		}
		v.h = nil
	}
	if v.block.Length() != 0 {
		v.p.mf.DecRef(v.block)
		v.block = memfile.FileRange{}
	}
	return first
}
