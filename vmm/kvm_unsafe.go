package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// System: the /dev/kvm handle.
type system struct{ fd int }

// vmHandle is a VM file descriptor from KVM_CREATE_VM.
type vmHandle struct{ fd int }

// vcpuHandle is a vCPU file descriptor from KVM_CREATE_VCPU.
type vcpuHandle struct{ fd int }

// ioctl issues one ioctl and returns its result or errno. The pointer
// argument stays live for the call (unsafe.Pointer rule 4).
//
// Every KVM ioctl but KVM_RUN (vcpuHandle.run, whose EINTR is an exit to
// decode) is retried on EINTR: the Go runtime signals its threads (SIGURG
// for preemption), and KVM returns EINTR rather than restarting when a
// signal is pending, e.g. KVM_CREATE_VM while it registers its MMU
// notifier; such a call did nothing and may be made again.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		// The conversion stays in the call expression (rule 4).
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, errno
	}
}

// ioctlInt issues an ioctl whose argument is an integer, retrying EINTR
// as ioctl does.
func ioctlInt(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		switch errno {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, errno
	}
}

// openSystem opens /dev/kvm. Errors wrap the errno (ENOENT: no KVM module
// or device; EACCES: not in the kvm group) so that callers can name the fix.
func openSystem() (*system, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/kvm: %w", err)
	}
	s := &system{fd: fd}
	v, err := ioctlInt(fd, kvmGetAPIVersion, 0)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != kvmAPIVersion {
		s.close()
		return nil, fmt.Errorf("KVM API version %d, want %d", v, kvmAPIVersion)
	}
	return s, nil
}

func (s *system) close() error { return unix.Close(s.fd) }

// checkExtension returns KVM_CHECK_EXTENSION's answer for capability c.
func (s *system) checkExtension(c uintptr) (uintptr, error) {
	r, err := ioctlInt(s.fd, kvmCheckExtension, c)
	if err != nil {
		return 0, fmt.Errorf("KVM_CHECK_EXTENSION(%d): %w", c, err)
	}
	return r, nil
}

// vcpuMMapSize is the size of the kvm_run mapping.
func (s *system) vcpuMMapSize() (int, error) {
	r, err := ioctlInt(s.fd, kvmGetVCPUMMapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	if r < uintptr(unsafe.Sizeof(kvmRun{})) {
		return 0, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE = %d, smaller than kvm_run with sync regs (%d)", r, unsafe.Sizeof(kvmRun{}))
	}
	return int(r), nil
}

// cpuidEntrySize is sizeof(struct kvm_cpuid_entry2).
const cpuidEntrySize = 40

// supportedCPUID returns KVM_GET_SUPPORTED_CPUID as struct kvm_cpuid2
// bytes (header and entries), growing the buffer on E2BIG.
func (s *system) supportedCPUID() ([]kvm.CPUIDEntry2, error) {
	for n := 128; n <= 4096; n *= 2 {
		buf := make([]byte, 8+n*cpuidEntrySize)
		binary.LittleEndian.PutUint32(buf, uint32(n))
		_, err := ioctl(s.fd, kvmGetSupportedCPUID, unsafe.Pointer(&buf[0]))
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		got := int(binary.LittleEndian.Uint32(buf))
		entries := make([]kvm.CPUIDEntry2, got)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(entries))), got*cpuidEntrySize), buf[8:])
		return entries, nil
	}
	return nil, errors.New("KVM_GET_SUPPORTED_CPUID: more than 4096 entries")
}

// createVM creates a VM.
func (s *system) createVM() (*vmHandle, error) {
	fd, err := ioctlInt(s.fd, kvmCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &vmHandle{fd: int(fd)}, nil
}

func (vm *vmHandle) close() error { return unix.Close(vm.fd) }

// setMemory installs memslot slot mapping guest physical [gpa, gpa+size)
// to host memory at hva.
func (vm *vmHandle) setMemory(slot uint32, gpa, size uint64, hva uintptr) error {
	r := kvm.UserspaceMemoryRegion{Slot: slot, GuestPhysAddr: gpa, MemorySize: size, UserspaceAddr: uint64(hva)}
	if _, err := ioctl(vm.fd, kvmSetUserMemoryRegion, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION(slot %d, %#x bytes): %w", slot, size, err)
	}
	return nil
}

// setTSSAddr places the three pages Intel's real-mode emulation needs.
func (vm *vmHandle) setTSSAddr(addr uint64) error {
	if _, err := ioctlInt(vm.fd, kvmSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR(%#x): %w", addr, err)
	}
	return nil
}

// createVCPU creates vCPU id.
func (vm *vmHandle) createVCPU(id int) (*vcpuHandle, error) {
	fd, err := ioctlInt(vm.fd, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU(%d): %w", id, err)
	}
	return &vcpuHandle{fd: int(fd)}, nil
}

func (h *vcpuHandle) close() error { return unix.Close(h.fd) }

// mapRun maps the vCPU's kvm_run page(s).
func (h *vcpuHandle) mapRun(size int) ([]byte, *kvmRun, error) {
	b, err := unix.Mmap(h.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap kvm_run: %w", err)
	}
	return b, (*kvmRun)(unsafe.Pointer(&b[0])), nil
}

// run issues KVM_RUN once. It returns the raw errno: EINTR is an event for
// the caller, never retried here.
func (h *vcpuHandle) run() unix.Errno {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(h.fd), kvmRunIoctl, 0)
	return errno
}

func (h *vcpuHandle) getRegs(r *kvm.Regs) error {
	if _, err := ioctl(h.fd, kvmGetRegs, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	return nil
}

func (h *vcpuHandle) setRegs(r *kvm.Regs) error {
	if _, err := ioctl(h.fd, kvmSetRegs, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

func (h *vcpuHandle) getSregs(s *kvm.Sregs) error {
	if _, err := ioctl(h.fd, kvmGetSregs, unsafe.Pointer(s)); err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	return nil
}

func (h *vcpuHandle) setSregs(s *kvm.Sregs) error {
	if _, err := ioctl(h.fd, kvmSetSregs, unsafe.Pointer(s)); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	return nil
}

// setCPUID installs the guest's CPUID table.
func (h *vcpuHandle) setCPUID(entries []kvm.CPUIDEntry2) error {
	buf := make([]byte, 8+len(entries)*cpuidEntrySize)
	binary.LittleEndian.PutUint32(buf, uint32(len(entries)))
	copy(buf[8:], unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(entries))), len(entries)*cpuidEntrySize))
	if _, err := ioctl(h.fd, kvmSetCPUID2, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2(%d entries): %w", len(entries), err)
	}
	return nil
}

// setMSRs writes MSRs; KVM returns how many it set, which must be all.
func (h *vcpuHandle) setMSRs(msrs []msrEntry) error {
	buf := make([]byte, 8+len(msrs)*16)
	binary.LittleEndian.PutUint32(buf, uint32(len(msrs)))
	for i, m := range msrs {
		binary.LittleEndian.PutUint32(buf[8+16*i:], m.index)
		binary.LittleEndian.PutUint64(buf[8+16*i+8:], m.data)
	}
	n, err := ioctl(h.fd, kvmSetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if int(n) != len(msrs) {
		return fmt.Errorf("KVM_SET_MSRS set %d of %d MSRs (MSR %#x refused)", n, len(msrs), msrs[n].index)
	}
	return nil
}

// setXCR0 sets XCR0 (struct kvm_xcrs with one register).
func (h *vcpuHandle) setXCR0(v uint64) error {
	var x kvm.XCRS
	x.NrXRCS = 1
	x.Registers[0] = kvm.XRC{XRC: 0, Value: v}
	if _, err := ioctl(h.fd, kvmSetXCRs, unsafe.Pointer(&x)); err != nil {
		return fmt.Errorf("KVM_SET_XCRS(XCR0=%#x): %w", v, err)
	}
	return nil
}

// getXSave reads the FP/XSAVE state into buf (xsaveSize bytes).
func (h *vcpuHandle) getXSave(buf []byte) error {
	if len(buf) < xsaveSize {
		return fmt.Errorf("KVM_GET_XSAVE: buffer of %d bytes, want %d", len(buf), xsaveSize)
	}
	if _, err := ioctl(h.fd, kvmGetXSave, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_GET_XSAVE: %w", err)
	}
	return nil
}

// setXSave loads the FP/XSAVE state from buf (xsaveSize bytes).
func (h *vcpuHandle) setXSave(buf []byte) error {
	if len(buf) < xsaveSize {
		return fmt.Errorf("KVM_SET_XSAVE: buffer of %d bytes, want %d", len(buf), xsaveSize)
	}
	if _, err := ioctl(h.fd, kvmSetXSave, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_SET_XSAVE: %w", err)
	}
	return nil
}

func (h *vcpuHandle) getDebugRegs(d *kvm.DebugRegs) error {
	if _, err := ioctl(h.fd, kvmGetDebugRegs, unsafe.Pointer(d)); err != nil {
		return fmt.Errorf("KVM_GET_DEBUGREGS: %w", err)
	}
	return nil
}

func (h *vcpuHandle) setDebugRegs(d *kvm.DebugRegs) error {
	if _, err := ioctl(h.fd, kvmSetDebugRegs, unsafe.Pointer(d)); err != nil {
		return fmt.Errorf("KVM_SET_DEBUGREGS: %w", err)
	}
	return nil
}

// exitIO returns the io member of the exit union.
func (r *kvmRun) exitIO() *ioExit { return (*ioExit)(unsafe.Pointer(&r.exit[0])) }

// exitInternal returns the internal member of the exit union.
func (r *kvmRun) exitInternal() *internalError { return (*internalError)(unsafe.Pointer(&r.exit[0])) }

// exitU64 returns the first word of the exit union (hw.hardware_exit_reason,
// fail_entry.hardware_entry_failure_reason).
func (r *kvmRun) exitU64() uint64 { return binary.LittleEndian.Uint64(r.exit[:]) }

// setImmediateExit sets kvm_run.immediate_exit. It is written by other
// threads (kicks) while the vCPU thread may be entering KVM_RUN; the byte is
// stored atomically with the padding word around it, which KVM never
// writes and request_interrupt_window, which ringbox keeps zero.
func (r *kvmRun) setImmediateExit(on bool) {
	var v uint32
	if on {
		v = 1 << 8
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(r)), v)
}
