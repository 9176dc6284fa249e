package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KVM ioctl numbers, from include/uapi/linux/kvm.h (KVMIO is 0xAE). x/sys/unix
// does not define them; kvm_test.go checks them against the installed
// header.
const (
	kvmio = 0xAE
	// kvmGetAPIVersion is KVM_GET_API_VERSION, _IO(KVMIO, 0x00).
	kvmGetAPIVersion = kvmio<<8 | 0x00
	// kvmCreateVM is KVM_CREATE_VM, _IO(KVMIO, 0x01).
	kvmCreateVM = kvmio<<8 | 0x01
)

// kvmAPIVersion is the only API version KVM has ever reported: "Applications
// should refuse to run if KVM_GET_API_VERSION returns a value other than 12."
// - Documentation/virt/kvm/api.rst.
const kvmAPIVersion = 12

// kvmSelfCheck proves that the loaded modules give a working KVM: it opens
// /dev/kvm, checks the API version and creates (and closes) a VM, the
// smallest step that needs the hardware virtualization support (here, QEMU's
// emulated SVM).
func kvmSelfCheck() error {
	version, err := checkKVM("/dev/kvm")
	if err != nil {
		return err
	}
	logf("kvm: /dev/kvm API version %d, KVM_CREATE_VM ok", version)
	return nil
}

// checkKVM opens dev, checks KVM_GET_API_VERSION and KVM_CREATE_VM, and
// returns the API version.
func checkKVM(dev string) (int, error) {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd) // nothing was written through it
	version, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if version != kvmAPIVersion {
		return version, fmt.Errorf("KVM_GET_API_VERSION: got %d, want %d", version, kvmAPIVersion)
	}
	// The argument is the machine type; 0 is the default on x86.
	vm, err := unix.IoctlRetInt(fd, kvmCreateVM)
	if err != nil {
		return version, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	if err := unix.Close(vm); err != nil {
		return version, fmt.Errorf("closing the VM fd: %w", err)
	}
	return version, nil
}
