package vmm

import (
	"github.com/bobuhiro11/gokvm/kvm"
)

// KVM API constants (Linux: include/uapi/linux/kvm.h and arch/x86/include/
// uapi/asm/kvm.h). golang.org/x/sys/unix has none of them; kvm_test.go checks
// every ioctl number against the value the header gives.
const (
	kvmAPIVersion = 12

	// ioctl numbers (nr in the KVMIO space).
	nrGetAPIVersion       = 0x00
	nrCreateVM            = 0x01
	nrCheckExtension      = 0x03
	nrGetVCPUMMapSize     = 0x04
	nrGetSupportedCPUID   = 0x05
	nrCreateVCPU          = 0x41
	nrSetUserMemoryRegion = 0x46
	nrSetTSSAddr          = 0x47
	nrRun                 = 0x80
	nrGetRegs             = 0x81
	nrSetRegs             = 0x82
	nrGetSregs            = 0x83
	nrSetSregs            = 0x84
	nrSetMSRs             = 0x89
	nrSetCPUID2           = 0x90
	nrGetDebugRegs        = 0xa1
	nrSetDebugRegs        = 0xa2
	nrGetXSave            = 0xa4
	nrSetXSave            = 0xa5
	nrSetXCRs             = 0xa7

	// Capabilities.
	capUserMemory    = 3
	capSetTSSAddr    = 4
	capDebugRegs     = 50
	capXSave         = 55
	capXCRs          = 56
	capNrVCPUs       = 9
	capMaxVCPUs      = 66
	capSyncRegs      = 74
	capImmediateExit = 136

	// kvm_run.kvm_valid_regs / kvm_dirty_regs bits.
	syncRegs   = 1 << 0 // KVM_SYNC_X86_REGS
	syncSregs  = 1 << 1 // KVM_SYNC_X86_SREGS
	syncEvents = 1 << 2 // KVM_SYNC_X86_EVENTS

	// Exit reasons.
	exitUnknown       = 0
	exitException     = 1
	exitIO            = 2
	exitDebug         = 4
	exitHLT           = 5
	exitMMIO          = 6
	exitShutdown      = 8
	exitFailEntry     = 9
	exitIntr          = 10
	exitInternalError = 17

	exitIOOut = 1 // KVM_EXIT_IO_OUT

	// xsaveSize is sizeof(struct kvm_xsave).
	xsaveSize = 4096
)

// Ioctl request numbers, composed as linux/ioctl.h's _IO/_IOR/_IOW do.
var (
	kvmGetAPIVersion       = kvm.IIO(nrGetAPIVersion)
	kvmCreateVM            = kvm.IIO(nrCreateVM)
	kvmCheckExtension      = kvm.IIO(nrCheckExtension)
	kvmGetVCPUMMapSize     = kvm.IIO(nrGetVCPUMMapSize)
	kvmGetSupportedCPUID   = kvm.IIOWR(nrGetSupportedCPUID, 8) // struct kvm_cpuid2 header
	kvmCreateVCPU          = kvm.IIO(nrCreateVCPU)
	kvmSetUserMemoryRegion = kvm.IIOW(nrSetUserMemoryRegion, 32)
	kvmSetTSSAddr          = kvm.IIO(nrSetTSSAddr)
	kvmRunIoctl            = kvm.IIO(nrRun)
	kvmGetRegs             = kvm.IIOR(nrGetRegs, regsSize)
	kvmSetRegs             = kvm.IIOW(nrSetRegs, regsSize)
	kvmGetSregs            = kvm.IIOR(nrGetSregs, sregsSize)
	kvmSetSregs            = kvm.IIOW(nrSetSregs, sregsSize)
	kvmSetMSRs             = kvm.IIOW(nrSetMSRs, 8) // struct kvm_msrs header
	kvmSetCPUID2           = kvm.IIOW(nrSetCPUID2, 8)
	kvmGetDebugRegs        = kvm.IIOR(nrGetDebugRegs, debugRegsSize)
	kvmSetDebugRegs        = kvm.IIOW(nrSetDebugRegs, debugRegsSize)
	kvmGetXSave            = kvm.IIOR(nrGetXSave, xsaveSize)
	kvmSetXSave            = kvm.IIOW(nrSetXSave, xsaveSize)
	kvmSetXCRs             = kvm.IIOW(nrSetXCRs, xcrsSize)
)

// Offsets in struct kvm_vcpu_events of the bytes that say an event is on
// its way into the guest: exception.injected, exception.pending,
// interrupt.injected, nmi.injected. Checked in kvm_test.go.
const (
	eventsExceptionInjected = 0
	eventsExceptionPending  = 3
	eventsInterruptInjected = 8
	eventsNMIInjected       = 12
)

// Sizes of the structures exchanged, checked in kvm_test.go.
const (
	regsSize      = 0x90  // struct kvm_regs
	sregsSize     = 0x138 // struct kvm_sregs
	debugRegsSize = 0x80  // struct kvm_debugregs
	xcrsSize      = 0x188 // struct kvm_xcrs
	eventsSize    = 0x40  // struct kvm_vcpu_events
)

// kvmRun is the head of struct kvm_run, the vCPU's shared page, up to the
// synced registers (KVM_CAP_SYNC_REGS). Offsets are checked in kvm_test.go
// against the header.
type kvmRun struct {
	requestInterruptWindow     uint8
	immediateExit              uint8
	_                          [6]uint8
	exitReason                 uint32
	readyForInterruptInjection uint8
	ifFlag                     uint8
	flags                      uint16
	cr8                        uint64
	apicBase                   uint64
	// exit is the union of exit-specific data.
	exit         [256]byte
	kvmValidRegs uint64
	kvmDirtyRegs uint64
	// The synced registers: struct kvm_sync_regs.
	regs   kvm.Regs
	sregs  kvm.Sregs
	events [eventsSize]byte
}

// ioExit is the io member of kvm_run's exit union.
type ioExit struct {
	direction  uint8
	size       uint8
	port       uint16
	count      uint32
	dataOffset uint64
}

// internalError is the internal member of kvm_run's exit union.
type internalError struct {
	suberror uint32
	ndata    uint32
	data     [16]uint64
}

// msrEntry is struct kvm_msr_entry.
type msrEntry struct {
	index    uint32
	reserved uint32
	data     uint64
}

// MSR numbers (Intel SDM Vol. 4; Linux: arch/x86/include/asm/msr-index.h).
const (
	msrSTAR         = 0xc0000081
	msrLSTAR        = 0xc0000082
	msrCSTAR        = 0xc0000083
	msrSyscallMask  = 0xc0000084
	msrKernelGSBase = 0xc0000102
)

// Control register and EFER bits (Intel SDM Vol. 3, 2.5 and 2.2.1).
const (
	cr0PE = 1 << 0
	cr0MP = 1 << 1
	cr0ET = 1 << 4
	cr0NE = 1 << 5
	cr0WP = 1 << 16
	cr0PG = 1 << 31

	cr4PAE        = 1 << 5
	cr4OSFXSR     = 1 << 9
	cr4OSXMMEXCPT = 1 << 10
	cr4OSXSAVE    = 1 << 18
	cr4SMEP       = 1 << 20
	cr4SMAP       = 1 << 21

	eferSCE = 1 << 0
	eferLME = 1 << 8
	eferLMA = 1 << 10
	eferNXE = 1 << 11
)

// The guest's control registers: long mode with paging, write protection
// honoured in ring 0, SSE enabled for user code; guestCR4 adds what the
// guest CPUID offers.
//
// TODO: Linux also sets CR0.AM (alignment checks when user code sets
// EFLAGS.AC) and CR4.UMIP (then emulates SGDT, SIDT and SMSW for user
// space, arch/x86/kernel/umip.c); ringbox's guest leaves both off, so a
// program that relies on #AC sees none and SGDT shows the real GDT base.
const (
	guestCR0      = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0PG
	guestCR4Fixed = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT
	guestEFER     = eferSCE | eferLME | eferLMA | eferNXE
)

// guestCR4 returns CR4 for a guest with the given CPUID: OSXSAVE when XCR0
// is set up (xcr0 != 0), and SMEP and SMAP when available, so that ring 0
// can neither execute nor touch user pages (the trap code never needs to;
// a bug that tries faults instead of running program-controlled code or
// data). KVM refuses CR4 bits the guest CPUID lacks.
func guestCR4(cpuid []kvm.CPUIDEntry2, xcr0 uint64) uint64 {
	cr4 := uint64(guestCR4Fixed)
	if xcr0 != 0 {
		cr4 |= cr4OSXSAVE
	}
	for _, e := range cpuid {
		if e.Function == 7 && e.Index == 0 {
			if e.Ebx&(1<<7) != 0 {
				cr4 |= cr4SMEP
			}
			if e.Ebx&(1<<20) != 0 {
				cr4 |= cr4SMAP
			}
		}
	}
	return cr4
}

// syscallMask is MSR_SYSCALL_MASK: the RFLAGS bits syscall clears on entry,
// as Linux sets them (arch/x86/kernel/cpu/common.c:idt_syscall_init()):
// CF PF AF ZF SF TF IF DF OF IOPL NT RF AC ID.
const syscallMask = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x3000 | 0x4000 | 0x10000 | 0x40000 | 0x200000

// maxVCPUs returns how many vCPUs a VM may have: KVM_CAP_MAX_VCPUS, or
// KVM_CAP_NR_VCPUS where that is missing, or 4 where both are, as the KVM
// API documentation (Documentation/virt/kvm/api.rst, KVM_CREATE_VCPU)
// says.
func (s *system) maxVCPUs() (int, error) {
	for _, c := range []uintptr{capMaxVCPUs, capNrVCPUs} {
		n, err := s.checkExtension(c)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return int(n), nil
		}
	}
	return 4, nil
}

// eventInFlight reports whether KVM holds an event it has yet to deliver
// to the guest, as KVM_SYNC_X86_EVENTS left it in kvm_run: an exception,
// interrupt or NMI whose delivery a VM exit interrupted (re-injected on
// the next entry whatever the registers then are) or an exception queued
// but not delivered yet.
func (r *kvmRun) eventInFlight() bool {
	e := &r.events
	return e[eventsExceptionInjected] != 0 || e[eventsExceptionPending] != 0 ||
		e[eventsInterruptInjected] != 0 || e[eventsNMIInjected] != 0
}

// cancelEvents clears the events in flight in the synced events; with
// syncEvents in kvm_dirty_regs, the next KVM_RUN drops them
// (KVM_SET_VCPU_EVENTS).
func (r *kvmRun) cancelEvents() {
	e := &r.events
	e[eventsExceptionInjected], e[eventsExceptionPending] = 0, 0
	e[eventsInterruptInjected], e[eventsNMIInjected] = 0, 0
}
