package vmm

import (
	"testing"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
)

// The expected values were taken from the Linux UAPI headers
// (linux/kvm.h, asm/kvm.h of linux-libc-dev 6.1) with a C program printing
// the macros, sizeof and offsetof.
func TestIoctlNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, 0xae00},
		{"KVM_CREATE_VM", kvmCreateVM, 0xae01},
		{"KVM_CHECK_EXTENSION", kvmCheckExtension, 0xae03},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMMapSize, 0xae04},
		{"KVM_GET_SUPPORTED_CPUID", kvmGetSupportedCPUID, 0xc008ae05},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, 0xae41},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemoryRegion, 0x4020ae46},
		{"KVM_SET_TSS_ADDR", kvmSetTSSAddr, 0xae47},
		{"KVM_RUN", kvmRunIoctl, 0xae80},
		{"KVM_GET_REGS", kvmGetRegs, 0x8090ae81},
		{"KVM_SET_REGS", kvmSetRegs, 0x4090ae82},
		{"KVM_GET_SREGS", kvmGetSregs, 0x8138ae83},
		{"KVM_SET_SREGS", kvmSetSregs, 0x4138ae84},
		{"KVM_SET_MSRS", kvmSetMSRs, 0x4008ae89},
		{"KVM_SET_CPUID2", kvmSetCPUID2, 0x4008ae90},
		{"KVM_GET_DEBUGREGS", kvmGetDebugRegs, 0x8080aea1},
		{"KVM_SET_DEBUGREGS", kvmSetDebugRegs, 0x4080aea2},
		{"KVM_GET_XSAVE", kvmGetXSave, 0x9000aea4},
		{"KVM_SET_XSAVE", kvmSetXSave, 0x5000aea5},
		{"KVM_SET_XCRS", kvmSetXCRs, 0x4188aea7},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestCapabilityNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_CAP_USER_MEMORY", capUserMemory, 0x3},
		{"KVM_CAP_SET_TSS_ADDR", capSetTSSAddr, 0x4},
		{"KVM_CAP_DEBUGREGS", capDebugRegs, 0x32},
		{"KVM_CAP_XSAVE", capXSave, 0x37},
		{"KVM_CAP_XCRS", capXCRs, 0x38},
		{"KVM_CAP_NR_VCPUS", capNrVCPUs, 0x9},
		{"KVM_CAP_MAX_VCPUS", capMaxVCPUs, 0x42},
		{"KVM_CAP_SYNC_REGS", capSyncRegs, 0x4a},
		{"KVM_CAP_IMMEDIATE_EXIT", capImmediateExit, 0x88},
		{"KVM_EXIT_IO", exitIO, 0x2},
		{"KVM_EXIT_SHUTDOWN", exitShutdown, 0x8},
		{"KVM_EXIT_FAIL_ENTRY", exitFailEntry, 0x9},
		{"KVM_EXIT_INTR", exitIntr, 0xa},
		{"KVM_SYNC_X86_EVENTS", syncEvents, 0x4},
		{"KVM_EXIT_INTERNAL_ERROR", exitInternalError, 0x11},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestStructLayouts(t *testing.T) {
	var r kvmRun
	var io ioExit
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(kvm_regs)", unsafe.Sizeof(kvm.Regs{}), regsSize},
		{"sizeof(kvm_sregs)", unsafe.Sizeof(kvm.Sregs{}), sregsSize},
		{"sizeof(kvm_debugregs)", unsafe.Sizeof(kvm.DebugRegs{}), debugRegsSize},
		{"sizeof(kvm_xcrs)", unsafe.Sizeof(kvm.XCRS{}), xcrsSize},
		{"sizeof(kvm_cpuid_entry2)", unsafe.Sizeof(kvm.CPUIDEntry2{}), cpuidEntrySize},
		{"sizeof(kvm_userspace_memory_region)", unsafe.Sizeof(kvm.UserspaceMemoryRegion{}), 0x20},
		{"kvm_run.immediate_exit", unsafe.Offsetof(r.immediateExit), 0x1},
		{"kvm_run.exit_reason", unsafe.Offsetof(r.exitReason), 0x8},
		{"kvm_run.flags", unsafe.Offsetof(r.flags), 0xe},
		{"kvm_run.io", unsafe.Offsetof(r.exit), 0x20},
		{"kvm_run.kvm_valid_regs", unsafe.Offsetof(r.kvmValidRegs), 0x120},
		{"kvm_run.kvm_dirty_regs", unsafe.Offsetof(r.kvmDirtyRegs), 0x128},
		{"kvm_run.s.regs.regs", unsafe.Offsetof(r.regs), 0x130},
		{"kvm_run.s.regs.sregs", unsafe.Offsetof(r.sregs), 0x130 + 0x90},
		{"kvm_run.s.regs.events", unsafe.Offsetof(r.events), 0x130 + 0x1c8},
		{"kvm_vcpu_events.exception.injected", eventsExceptionInjected, 0x0},
		{"kvm_vcpu_events.exception.pending", eventsExceptionPending, 0x3},
		{"kvm_vcpu_events.interrupt.injected", eventsInterruptInjected, 0x8},
		{"kvm_vcpu_events.nmi.injected", eventsNMIInjected, 0xc},
		{"kvm_run.io.port", unsafe.Offsetof(io.port), 2},
		{"kvm_run.io.data_offset", unsafe.Offsetof(io.dataOffset), 8},
		{"sizeof(kvm_msr_entry)", unsafe.Sizeof(msrEntry{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestSetImmediateExit(t *testing.T) {
	var r kvmRun
	r.setImmediateExit(true)
	if r.immediateExit != 1 || r.requestInterruptWindow != 0 {
		t.Errorf("after set: immediate_exit = %d, request_interrupt_window = %d, want 1, 0", r.immediateExit, r.requestInterruptWindow)
	}
	r.setImmediateExit(false)
	if r.immediateExit != 0 {
		t.Errorf("after clear: immediate_exit = %d, want 0", r.immediateExit)
	}
}

func TestGuestXCR0(t *testing.T) {
	leaf1 := kvm.CPUIDEntry2{Function: 1, Ecx: 1 << 26}
	for _, c := range []struct {
		name      string
		supported uint64
		xsave     bool
		want      uint64
		wantErr   bool
	}{
		{"sse only", 0x3, true, 0x3, false},
		{"avx", 0x7, true, 0x7, false},
		{"avx512 and mpx pkru", 0x2ff, true, 0xe7, false},
		{"partial avx512", 0x27, true, 0x7, false},
		{"no xsave", 0x7, false, 0, false},
		{"no sse state", 0x1, true, 0, true},
	} {
		cpuid := []kvm.CPUIDEntry2{{Function: 0xd, Index: 0, Eax: uint32(c.supported), Edx: uint32(c.supported >> 32)}}
		if c.xsave {
			cpuid = append(cpuid, leaf1)
		}
		got, err := guestXCR0(cpuid)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("%s: guestXCR0 = %#x, %v, want %#x, error %v", c.name, got, err, c.want, c.wantErr)
		}
	}
}

func TestCPUIDForVCPU(t *testing.T) {
	in := []kvm.CPUIDEntry2{{Function: 1, Ebx: 0xaa123456}, {Function: 0xb, Edx: 7}, {Function: 0, Ebx: 0x756e6547}}
	out := cpuidForVCPU(in, 3)
	if got, want := out[0].Ebx, uint32(0x03123456); got != want {
		t.Errorf("leaf 1 EBX = %#x, want %#x", got, want)
	}
	if got, want := out[1].Edx, uint32(3); got != want {
		t.Errorf("leaf 0xb EDX = %d, want %d", got, want)
	}
	if got, want := out[2].Ebx, in[2].Ebx; got != want {
		t.Errorf("leaf 0 EBX changed to %#x", got)
	}
	if in[0].Ebx != 0xaa123456 {
		t.Errorf("input table modified")
	}
}

func TestGuestCR4(t *testing.T) {
	leaf7 := func(ebx uint32) []kvm.CPUIDEntry2 { return []kvm.CPUIDEntry2{{Function: 7, Ebx: ebx}} }
	for _, c := range []struct {
		name  string
		cpuid []kvm.CPUIDEntry2
		xcr0  uint64
		want  uint64
	}{
		{"bare", nil, 0, guestCR4Fixed},
		{"xsave", nil, 0x7, guestCR4Fixed | cr4OSXSAVE},
		{"smep smap", leaf7(1<<7 | 1<<20), 0, guestCR4Fixed | cr4SMEP | cr4SMAP},
		{"smep only", leaf7(1 << 7), 0x3, guestCR4Fixed | cr4SMEP | cr4OSXSAVE},
	} {
		if got := guestCR4(c.cpuid, c.xcr0); got != c.want {
			t.Errorf("%s: guestCR4 = %#x, want %#x", c.name, got, c.want)
		}
	}
}
