package guest

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/ringbox/ringbox/arch"
)

// decodeSlot decodes the first n instructions of slot s in GNU syntax, with
// the offset of each.
func decodeSlot(t *testing.T, code []byte, s, n int) ([]string, []int) {
	t.Helper()
	var insts []string
	var offs []int
	off := s * SlotSize
	for i := 0; i < n; i++ {
		inst, err := x86asm.Decode(code[off:(s+1)*SlotSize], 64)
		if err != nil {
			t.Fatalf("slot %d: decode at %#x: %v", s, off, err)
		}
		insts = append(insts, x86asm.GNUSyntax(inst, 0, nil))
		offs = append(offs, off-s*SlotSize)
		off += inst.Len
	}
	return insts, offs
}

func TestCodeLayout(t *testing.T) {
	code := Code()
	if got, want := len(code), CodeSize; got != want {
		t.Fatalf("len(Code()) = %d, want %d", got, want)
	}
	if got := endMarker(); got != 0xcc {
		t.Errorf("byte after the last slot = %#x, want 0xcc: a slot outgrew %d bytes", got, SlotSize)
	}
	port := func(p int) string { return fmt.Sprintf("out %%al,$0x%x", p) }
	cases := []struct {
		name string
		slot int
		want []string
		// outOff is the offset of the out, -1 if none.
		outOff int
	}{
		// x86asm spells the REX.W prefix that makes sysret return to 64-bit
		// mode; without it the test fails (32-bit sysretl).
		{"syscall", SlotSyscall, []string{port(SyscallPort), "rex.W sysretq"}, SyscallOutOffset},
		{"iret", SlotIret, []string{"iretq"}, -1},
		{"iret+flush", SlotIretFlush, []string{"push %rax", "mov %cr3,%rax", "mov %rax,%cr3", "pop %rax", "iretq"}, -1},
	}
	for v := arch.Vector(0); v < arch.NumExceptions; v++ {
		want := []string{fmt.Sprintf("pushq $0x%x", int(v)), port(ExceptionPort), "add $0x10,%rsp", "iretq"}
		if !v.HasErrorCode() {
			want = append([]string{"pushq $0x0"}, want...)
		}
		cases = append(cases, struct {
			name   string
			slot   int
			want   []string
			outOff int
		}{fmt.Sprintf("vector %d", v), SlotException(v), want, ExceptionOutOffset(v)})
	}
	for _, c := range cases {
		got, offs := decodeSlot(t, code, c.slot, len(c.want))
		if strings.Join(got, "; ") != strings.Join(c.want, "; ") {
			t.Errorf("%s slot %d = %q, want %q", c.name, c.slot, got, c.want)
			continue
		}
		if c.outOff >= 0 {
			for i, g := range got {
				if strings.HasPrefix(g, "out ") && offs[i] != c.outOff {
					t.Errorf("%s: out at offset %d, want %d", c.name, offs[i], c.outOff)
				}
			}
		}
	}
	// The sysretq must follow the out directly: KVM resumes there.
	_, offs := decodeSlot(t, code, SlotSyscall, 2)
	if offs[1] != SysretOffset {
		t.Errorf("sysretq at offset %d, want %d", offs[1], SysretOffset)
	}
}

func TestExceptionOfSlot(t *testing.T) {
	for _, c := range []struct {
		off  uint64
		want arch.Vector
		ok   bool
	}{
		{0, 0, false},
		{SlotIretFlush*SlotSize + 5, 0, false},
		{uint64(SlotException(0) * SlotSize), 0, true},
		{uint64(SlotException(arch.VectorPF)*SlotSize + 2), arch.VectorPF, true},
		{uint64(SlotException(31)*SlotSize + 31), 31, true},
		{CodeSize, 0, false},
	} {
		got, ok := ExceptionOfSlot(c.off)
		if got != c.want || ok != c.ok {
			t.Errorf("ExceptionOfSlot(%#x) = %d, %v, want %d, %v", c.off, got, ok, c.want, c.ok)
		}
	}
}
