package main

import (
	"strings"
	"testing"
)

func TestParseQEMUVersion(t *testing.T) {
	for _, c := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright", 10, 0, true},
		{"QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n", 7, 2, true},
		{"not qemu", 0, 0, false},
	} {
		major, minor, err := parseQEMUVersion(c.in)
		if (err == nil) != c.ok || major != c.major || minor != c.minor {
			t.Errorf("parseQEMUVersion(%q) = %d, %d, %v", c.in, major, minor, err)
		}
	}
	if qemuArmsNestedDR7(7) || !qemuArmsNestedDR7(10) {
		t.Error("qemuArmsNestedDR7: 7 must not, 10 must")
	}
}

func TestKernelCmdlineNoHWBreakpoints(t *testing.T) {
	s, err := kernelCmdline(vmConfig{noHWBreakpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "ringbox.nohwbp=1") {
		t.Errorf("cmdline %q lacks ringbox.nohwbp=1", s)
	}
	s, _ = kernelCmdline(vmConfig{})
	if strings.Contains(s, "nohwbp") {
		t.Errorf("cmdline %q has nohwbp", s)
	}
}
