package arch

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestRegistersMatchPtraceRegs(t *testing.T) {
	var r Registers
	var p unix.PtraceRegs
	if got, want := unsafe.Sizeof(r), unsafe.Sizeof(p); got != want {
		t.Fatalf("sizeof(Registers) = %d, want %d", got, want)
	}
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"R15", unsafe.Offsetof(r.R15), unsafe.Offsetof(p.R15)},
		{"Rbx", unsafe.Offsetof(r.Rbx), unsafe.Offsetof(p.Rbx)},
		{"Rax", unsafe.Offsetof(r.Rax), unsafe.Offsetof(p.Rax)},
		{"OrigRax", unsafe.Offsetof(r.OrigRax), unsafe.Offsetof(p.Orig_rax)},
		{"Rip", unsafe.Offsetof(r.Rip), unsafe.Offsetof(p.Rip)},
		{"Eflags", unsafe.Offsetof(r.Eflags), unsafe.Offsetof(p.Eflags)},
		{"Rsp", unsafe.Offsetof(r.Rsp), unsafe.Offsetof(p.Rsp)},
		{"FsBase", unsafe.Offsetof(r.FsBase), unsafe.Offsetof(p.Fs_base)},
		{"Gs", unsafe.Offsetof(r.Gs), unsafe.Offsetof(p.Gs)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestFPStateReset(t *testing.T) {
	s := NewFPState(0)
	if got := len(s); got != MinFPStateSize {
		t.Fatalf("len = %d, want %d", got, MinFPStateSize)
	}
	if got := s.MXCSR(); got != DefaultMXCSR {
		t.Errorf("MXCSR = %#x, want %#x", got, DefaultMXCSR)
	}
	if got := uint16(s[0]) | uint16(s[1])<<8; got != DefaultFCW {
		t.Errorf("FCW = %#x, want %#x", got, DefaultFCW)
	}
}

func TestHasErrorCode(t *testing.T) {
	with := map[Vector]bool{VectorDF: true, VectorTS: true, VectorNP: true, VectorSS: true, VectorGP: true, VectorPF: true, VectorAC: true, VectorCP: true, VectorVC: true, VectorSX: true}
	for v := Vector(0); v < NumExceptions; v++ {
		if got, want := v.HasErrorCode(), with[v]; got != want {
			t.Errorf("Vector(%d).HasErrorCode() = %v, want %v", v, got, want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct {
		a    uint64
		want bool
	}{{0, true}, {0x7fffffffffff, true}, {0x800000000000, false}, {0xffff800000000000, true}, {0xfffe800000000000, false}} {
		if got := IsCanonical(c.a); got != c.want {
			t.Errorf("IsCanonical(%#x) = %v, want %v", c.a, got, c.want)
		}
	}
}
