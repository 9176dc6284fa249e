package platformtest

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// kvmGetAPIVersion is KVM_GET_API_VERSION, _IO(KVMIO, 0x00) with KVMIO
// 0xAE (Linux: include/uapi/linux/kvm.h).
const kvmGetAPIVersion = 0xae00

// kvmAPIVersion is the only API version KVM has ever reported
// (KVM_API_VERSION in include/uapi/linux/kvm.h).
const kvmAPIVersion = 12

// RequireKVM skips t, saying why, unless /dev/kvm can be opened read-write
// and answers KVM_GET_API_VERSION with the stable API version. It is the
// one gate every KVM test goes through, so that `go test ./...` passes on
// hosts without KVM (containers, CI runners, nested guests without VMX/SVM).
func RequireKVM(t testing.TB) {
	t.Helper()
	if reason := kvmUnusable(); reason != "" {
		t.Skip("KVM unavailable: " + reason)
	}
}

// kvmUnusable returns why /dev/kvm cannot be used, or "" when it can.
func kvmUnusable() string {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return "/dev/kvm does not exist"
	case err != nil:
		return "open /dev/kvm: " + err.Error()
	}
	defer unix.Close(fd)
	v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if errno != 0 {
		return "KVM_GET_API_VERSION: " + errno.Error()
	}
	if v != kvmAPIVersion {
		return "KVM_GET_API_VERSION returned " + strconv.Itoa(int(v)) + ", want " + strconv.Itoa(kvmAPIVersion)
	}
	return ""
}

// hasKVMDevice reports whether /dev/kvm exists at all; the test of
// RequireKVM uses it to know which outcome to expect.
func hasKVMDevice() bool {
	_, err := os.Stat("/dev/kvm")
	return err == nil
}
