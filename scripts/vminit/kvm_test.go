package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKVMIoctlNumbers checks the ioctl numbers against <linux/kvm.h>, by
// compiling a tiny C program (skipped without a C compiler or the header).
func TestKVMIoctlNumbers(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc to read <linux/kvm.h> with")
	}
	if _, err := os.Stat("/usr/include/linux/kvm.h"); err != nil {
		t.Skipf("no kernel headers: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "kvm.c")
	prog := `#include <stdio.h>
#include <linux/kvm.h>
int main(void) { printf("%lu %lu %d\n", (unsigned long)KVM_GET_API_VERSION, (unsigned long)KVM_CREATE_VM, KVM_API_VERSION); return 0; }
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "kvm")
	if out, err := exec.Command(cc, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling the header probe: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the header probe: %v", err)
	}
	f := strings.Fields(string(out))
	want := []int{kvmGetAPIVersion, kvmCreateVM, kvmAPIVersion}
	names := []string{"KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_API_VERSION"}
	if len(f) != len(want) {
		t.Fatalf("header probe printed %q, want %d numbers", out, len(want))
	}
	for i, w := range want {
		got, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatalf("header probe printed %q: %v", out, err)
		}
		if got != w {
			t.Errorf("%s: header says %#x, vminit uses %#x", names[i], got, w)
		}
	}
}

// TestCheckKVM runs the self-check where KVM exists (in the test VM:
// go run ./scripts/testvm -gotest ./scripts/vminit).
func TestCheckKVM(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skipf("no /dev/kvm: %v", err)
	}
	version, err := checkKVM("/dev/kvm")
	if err != nil {
		t.Fatalf("checkKVM: %v", err)
	}
	t.Logf("KVM API version %d", version)
}

func TestCheckKVMNotKVM(t *testing.T) {
	if _, err := checkKVM("/dev/null"); err == nil || !strings.Contains(err.Error(), "KVM_GET_API_VERSION") {
		t.Errorf("checkKVM(/dev/null): got error %v, want a KVM_GET_API_VERSION error", err)
	}
	if _, err := checkKVM("/nonexistent"); err == nil {
		t.Errorf("checkKVM(/nonexistent): got nil error, want one")
	}
}
