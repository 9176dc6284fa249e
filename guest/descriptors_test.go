package guest

import (
	"encoding/binary"
	"testing"

	"github.com/ringbox/ringbox/arch"
)

// The expected values below are computed by hand from Intel SDM Vol. 3,
// figures 3-8 (segment descriptor), 8-4 (64-bit TSS descriptor), 6-8 (64-bit
// IDT gate) and 8-11 (64-bit TSS); the segment values are also those Linux
// puts in its GDT (GDT_ENTRY_INIT in arch/x86/kernel/cpu/common.c: 0xa09b,
// 0xc093, 0xa0fb, 0xc0f3 flags with limit 0xfffff, plus the accessed bit).
func TestSegmentDescriptors(t *testing.T) {
	for _, c := range []struct {
		name string
		got  Descriptor
		want uint64
	}{
		{"kernel code", CodeSegment64(0), 0x00af9b000000ffff},
		{"user code", CodeSegment64(3), 0x00affb000000ffff},
		{"kernel data", DataSegment(0), 0x00cf93000000ffff},
		{"user data", DataSegment(3), 0x00cff3000000ffff},
	} {
		if uint64(c.got) != c.want {
			t.Errorf("%s = %#016x, want %#016x", c.name, uint64(c.got), c.want)
		}
	}
}

func TestTSSDescriptor(t *testing.T) {
	// base 0xffffff80_12_345080: bits 23:0 = 0x345080 at 16, type 0xb and P
	// (0x8b) at 40, bits 31:24 = 0x12 at 56, bits 63:32 in the high word.
	got := TSSDescriptor(0xffffff8012345080, 0x67)
	want := [2]uint64{0x12008b3450800067, 0x00000000ffffff80}
	if got != want {
		t.Errorf("TSSDescriptor = %#016x, want %#016x", got, want)
	}
}

func TestGateEncode(t *testing.T) {
	for _, c := range []struct {
		g      Gate
		lo, hi uint64
	}{
		{Gate{Offset: 0xffffff8000000060, Selector: 0x10}, 0x00008e0000100060, 0xffffff80},
		{Gate{Offset: 0xffffff8000012345, Selector: 0x10, IST: 1}, 0x00018e0100102345, 0xffffff80},
		{Gate{Offset: 0x1234567, Selector: 0x10, DPL: 3}, 0x0123ee0000104567, 0},
	} {
		b := c.g.Encode()
		if lo, hi := binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]); lo != c.lo || hi != c.hi {
			t.Errorf("%+v.Encode() = %#016x %#016x, want %#016x %#016x", c.g, lo, hi, c.lo, c.hi)
		}
	}
}

func TestTSSEncode(t *testing.T) {
	tss := TSS{RSP: [3]uint64{0x1111}, IST: [7]uint64{0x2222, 0x3333, 0, 0, 0, 0, 0x7777}}
	b := tss.Encode()
	for _, c := range []struct {
		name string
		off  int
		want uint64
	}{
		{"RSP0", 4, 0x1111},
		{"IST1", 36, 0x2222},
		{"IST2", 44, 0x3333},
		{"IST7", 84, 0x7777},
	} {
		if got := binary.LittleEndian.Uint64(b[c.off:]); got != c.want {
			t.Errorf("%s at %d = %#x, want %#x", c.name, c.off, got, c.want)
		}
	}
	if got := binary.LittleEndian.Uint16(b[102:]); got != TSSSize {
		t.Errorf("I/O map base = %d, want %d (no bitmap)", got, TSSSize)
	}
	if got := b[0] | b[1] | b[2] | b[3]; got != 0 {
		t.Errorf("reserved bytes 0-3 not zero")
	}
}

func TestSTAR(t *testing.T) {
	// sysretq: CS = STAR[63:48]+16, SS = STAR[63:48]+8, RPL 3.
	base := STAR >> 48
	if got, want := (base+16)|3, uint64(arch.UserCS); got != want {
		t.Errorf("sysret CS = %#x, want %#x", got, want)
	}
	if got, want := (base+8)|3, uint64(arch.UserDS); got != want {
		t.Errorf("sysret SS = %#x, want %#x", got, want)
	}
	if got, want := STAR>>32&0xffff, uint64(KernelCS); got != want {
		t.Errorf("syscall CS = %#x, want %#x", got, want)
	}
}

func TestGDT(t *testing.T) {
	b := GDT(0xffffff8000010080)
	entry := func(sel int) uint64 { return binary.LittleEndian.Uint64(b[sel&^7:]) }
	for _, c := range []struct {
		name string
		sel  int
		want uint64
	}{
		{"null", 0, 0},
		{"user32 (absent)", 0x20, 0},
		{"kernel CS", KernelCS, uint64(CodeSegment64(0))},
		{"kernel DS", KernelDS, uint64(DataSegment(0))},
		{"user CS", UserCS, uint64(CodeSegment64(3))},
		{"user DS", UserDS, uint64(DataSegment(3))},
		{"TSS high", TSSSel + 8, 0xffffff80},
	} {
		if got := entry(c.sel); got != c.want {
			t.Errorf("GDT[%s] = %#016x, want %#016x", c.name, got, c.want)
		}
	}
	if got, want := len(b), GDTLimit+1; got != want {
		t.Errorf("len(GDT) = %d, want %d", got, want)
	}
}

func TestIDT(t *testing.T) {
	const base = 0xffffff8000000000
	b := IDT(base)
	for _, c := range []struct {
		v          arch.Vector
		ist, dpl   uint8
		wantOffset uint64
	}{
		{arch.VectorDE, 0, 0, base + 3*32},
		{arch.VectorBP, 0, 3, base + 6*32},
		{arch.VectorDF, ISTDoubleFault, 0, base + 11*32},
		{arch.VectorNMI, ISTNMI, 0, base + 5*32},
		{arch.VectorMC, ISTMachineCheck, 0, base + 21*32},
		{arch.VectorPF, 0, 0, base + 17*32},
	} {
		e := b[int(c.v)*GateSize:]
		lo, hi := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:])
		off := lo&0xffff | (lo>>48)<<16 | hi<<32
		if off != c.wantOffset {
			t.Errorf("vector %d offset = %#x, want %#x", c.v, off, c.wantOffset)
		}
		if got := uint8(lo >> 32 & 7); got != c.ist {
			t.Errorf("vector %d IST = %d, want %d", c.v, got, c.ist)
		}
		if got := uint8(lo >> 45 & 3); got != c.dpl {
			t.Errorf("vector %d DPL = %d, want %d", c.v, got, c.dpl)
		}
		if got := uint16(lo >> 16); got != KernelCS {
			t.Errorf("vector %d selector = %#x, want %#x", c.v, got, KernelCS)
		}
	}
}
