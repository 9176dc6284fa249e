package arch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// Unit tests of the ptrace ABI, runnable anywhere; ptrace_oracle_test.go
// compares the same functions with the host kernel.

// testRegs returns registers whose every word is distinct.
func testRegs() Registers {
	var r Registers
	for off := uint64(0); off < RegistersSize; off += 8 {
		*regWord(&r, off) = 0x1000 + off
	}
	r.Cs, r.Ss, r.Eflags = UserCS, UserDS, FlagIF|FlagReserved
	r.Ds, r.Es, r.Fs, r.Gs = 0, 0, 0, 0
	return r
}

func TestRegistersEncodeDecode(t *testing.T) {
	r := testRegs()
	b := make([]byte, RegistersSize)
	EncodeRegisters(&r, b)
	for _, c := range []struct {
		name string
		off  int
		want uint64
	}{
		{"r15", 0, r.R15}, {"rax", 80, r.Rax}, {"orig_rax", 120, r.OrigRax},
		{"rip", 128, r.Rip}, {"fs_base", 168, r.FsBase}, {"gs", 208, r.Gs},
	} {
		if got := binary.LittleEndian.Uint64(b[c.off:]); got != c.want {
			t.Errorf("%s at %d = %#x, want %#x", c.name, c.off, got, c.want)
		}
	}
	var back Registers
	DecodeRegisters(b, &back)
	if back != r {
		t.Errorf("DecodeRegisters(EncodeRegisters(r)) = %+v, want %+v", back, r)
	}
}

func TestPeekUser(t *testing.T) {
	st := State{Regs: testRegs()}
	st.DebugRegs = [8]uint64{0x10, 0x20, 0x30, 0x40, 0x50, 0x60, DR6BS, 0x1}
	for _, c := range []struct {
		off     uint64
		want    uint64
		wantErr error
	}{
		{0, st.Regs.R15, nil},
		{120, st.Regs.OrigRax, nil},
		{208, st.Regs.Gs, nil},
		{216, 0, nil}, // u_fpvalid and the i387 area read as 0
		{600, 0, nil},
		{UserDebugRegOff, 0x10, nil},
		{UserDebugRegOff + 3*8, 0x40, nil},
		{UserDebugRegOff + 4*8, 0, nil}, // DR4, DR5: no such registers
		{UserDebugRegOff + 5*8, 0, nil},
		{UserDebugRegOff + 6*8, DR6Reserved | DR6BS, nil},
		{UserDebugRegOff + 7*8, 0x1, nil},
		{UserAreaSize - 8, 0, nil}, // fault_address
		{UserAreaSize, 0, unix.EIO},
		{4, 0, unix.EIO},
		{1<<64 - 8, 0, unix.EIO},
	} {
		got, err := PeekUser(&st, c.off)
		if got != c.want || err != c.wantErr {
			t.Errorf("PeekUser(%d) = %#x, %v, want %#x, %v", c.off, got, err, c.want, c.wantErr)
		}
	}
	if got, _ := PeekUser(&State{}, UserDebugRegOff+6*8); got != DR6Reserved {
		t.Errorf("PeekUser(DR6) of a fresh thread = %#x, want %#x", got, DR6Reserved)
	}
}

func TestPokeUserRegisters(t *testing.T) {
	for _, c := range []struct {
		name    string
		off     uint64
		val     uint64
		wantErr error
		want    func(r *Registers) uint64
		wantVal uint64
	}{
		{"r15", 0, 7, nil, func(r *Registers) uint64 { return r.R15 }, 7},
		{"orig_rax -1", 120, 1<<64 - 1, nil, func(r *Registers) uint64 { return r.OrigRax }, 1<<64 - 1},
		{"rip non-canonical", 128, 1 << 63, nil, func(r *Registers) uint64 { return r.Rip }, 1 << 63},
		{"cs 32-bit", regCSOff, 0x23, nil, func(r *Registers) uint64 { return r.Cs }, 0x23},
		{"cs null", regCSOff, 0, unix.EIO, func(r *Registers) uint64 { return r.Cs }, UserCS},
		{"cs rpl 0", regCSOff, 0x30, unix.EIO, func(r *Registers) uint64 { return r.Cs }, UserCS},
		{"cs truncated to 16 bits", regCSOff, 1<<32 | 0x2b, nil, func(r *Registers) uint64 { return r.Cs }, 0x2b},
		{"ss null", regSSOff, 0, unix.EIO, func(r *Registers) uint64 { return r.Ss }, UserDS},
		{"ds null", regDSOff, 0, nil, func(r *Registers) uint64 { return r.Ds }, 0},
		{"ds rpl 1", regDSOff, 1, unix.EIO, func(r *Registers) uint64 { return r.Ds }, testRegs().Ds},
		{"gs ldt rpl 3", regGSOff, 7, nil, func(r *Registers) uint64 { return r.Gs }, 7},
		{"eflags all ones", regEflagsOff, 1<<64 - 1, nil, func(r *Registers) uint64 { return r.Eflags }, FlagIF | FlagReserved | PtraceFlagMask},
		{"eflags zero keeps IF", regEflagsOff, 0, nil, func(r *Registers) uint64 { return r.Eflags }, FlagIF | FlagReserved},
		{"fs_base top", regFSBaseOff, MaxUserAddress - 1, nil, func(r *Registers) uint64 { return r.FsBase }, MaxUserAddress - 1},
		{"fs_base TASK_SIZE_MAX", regFSBaseOff, MaxUserAddress, unix.EIO, func(r *Registers) uint64 { return r.FsBase }, testRegs().FsBase},
		{"gs_base kernel", regGSBaseOff, 1<<64 - 1, unix.EIO, func(r *Registers) uint64 { return r.GsBase }, testRegs().GsBase},
	} {
		st := State{Regs: testRegs()}
		err := PokeUser(&st, c.off, c.val)
		if err != c.wantErr {
			t.Errorf("%s: PokeUser(%d, %#x) = %v, want %v", c.name, c.off, c.val, err, c.wantErr)
		}
		if got := c.want(&st.Regs); got != c.wantVal {
			t.Errorf("%s: register = %#x, want %#x", c.name, got, c.wantVal)
		}
	}
	for _, off := range []uint64{216, 512, UserDebugRegOff - 8, UserDebugRegOff + 64, UserAreaSize, 9} {
		if err := PokeUser(&State{}, off, 1); err != unix.EIO {
			t.Errorf("PokeUser(%d) = %v, want EIO", off, err)
		}
	}
}

func TestSetRegsStopsAtFirstError(t *testing.T) {
	st := State{Regs: testRegs()}
	r := testRegs()
	r.R15, r.Rip, r.Cs, r.Rsp = 1, 2, 0, 3
	if err := SetRegs(&st, &r); err != unix.EIO {
		t.Fatalf("SetRegs with cs 0 = %v, want EIO", err)
	}
	// Linux writes in struct order and stops at the refused register.
	if st.Regs.R15 != 1 || st.Regs.Rip != 2 {
		t.Errorf("r15, rip = %#x, %#x, want 1, 2 (written before cs)", st.Regs.R15, st.Regs.Rip)
	}
	if st.Regs.Cs != UserCS || st.Regs.Rsp != testRegs().Rsp {
		t.Errorf("cs, rsp = %#x, %#x, want unchanged %#x, %#x", st.Regs.Cs, st.Regs.Rsp, UserCS, testRegs().Rsp)
	}
	r.Cs = UserCS
	if err := SetRegs(&st, &r); err != nil {
		t.Fatalf("SetRegs = %v", err)
	}
	if st.Regs != r {
		t.Errorf("after SetRegs: %+v, want %+v", st.Regs, r)
	}
}

func TestDebugRegisterWrites(t *testing.T) {
	type poke struct {
		n       int
		val     uint64
		wantErr error
	}
	const top = MaxUserAddress
	for _, c := range []struct {
		name  string
		pokes []poke
		want  [8]uint64 // DebugRegs afterwards
	}{
		{"address limit", []poke{{0, top - 1, nil}, {1, top, unix.EINVAL}, {2, 1<<64 - 1, unix.EINVAL}}, [8]uint64{0: top - 1}},
		{"dr4 and dr5", []poke{{4, 1, unix.EIO}, {5, 0, unix.EIO}}, [8]uint64{}},
		{"dr6 any value", []poke{{6, 0, nil}}, [8]uint64{6: DR6Reserved}},
		{"dr7 reserved bits kept", []poke{{7, 0xffffffff0000fc00, nil}}, [8]uint64{7: 0xffffffff0000fc00}},
		{"exec needs len 1", []poke{{0, 0x1000, nil}, {7, 0x40001, unix.EINVAL}, {7, 0x00001, nil}}, [8]uint64{0: 0x1000, 7: 1}},
		{"no io breakpoints", []poke{{1, 0x1000, nil}, {7, 0x200000, unix.EINVAL}}, [8]uint64{1: 0x1000}},
		{"disabled unused slot unchecked", []poke{{7, 0xc0000000, nil}}, [8]uint64{7: 0xc0000000}},
		{"len 8 alignment", []poke{{0, 0x1001, nil}, {7, 0x90001, unix.EINVAL}, {0, 0x1008, nil}, {7, 0x90001, nil}, {0, 0x1004, unix.EINVAL}},
			[8]uint64{0: 0x1008, 7: 0x90001}},
		{"len 4 range end", []poke{{3, top - 4, nil}, {7, 0xd0000040, nil}, {3, top - 3, unix.EINVAL}},
			[8]uint64{3: top - 4, 7: 0xd0000040}},
		{"rw len 8 at the top", []poke{{2, top - 8, nil}, {7, 0xb000010, nil}}, [8]uint64{2: top - 8, 7: 0xb000010}},
	} {
		var st State
		for _, p := range c.pokes {
			if err := PokeUser(&st, UserDebugRegOff+8*uint64(p.n), p.val); err != p.wantErr {
				t.Errorf("%s: poke DR%d = %#x: %v, want %v", c.name, p.n, p.val, err, p.wantErr)
			}
		}
		if st.DebugRegs != c.want {
			t.Errorf("%s: DebugRegs = %#x, want %#x", c.name, st.DebugRegs, c.want)
		}
		if got, want := st.DebugDirty, c.want != [8]uint64{}; got != want {
			t.Errorf("%s: DebugDirty = %v, want %v", c.name, got, want)
		}
	}
}

func TestActiveDR7(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 0},
		{0xffffffff0000fc00, 0},           // reserved bits and GD
		{0x300, 0},                        // LE, GE
		{0xf0000, 0},                      // fields of a disabled breakpoint
		{0x90001, 0x90001},                // L0, write, 8 bytes
		{0xd0000080 | 0x2000, 0xd0000080}, // G3, 4-byte write; GD dropped
	} {
		if got := ActiveDR7(c.in); got != c.want {
			t.Errorf("ActiveDR7(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

func TestDebugStatusLifecycle(t *testing.T) {
	var st State
	SetDebugStatus(&st, DR6Reserved|DR6BS|0x2)
	if got, _ := PeekUser(&st, UserDebugRegOff+6*8); got != DR6Reserved|DR6BS|0x2 {
		t.Errorf("DR6 after a single-step over breakpoint 1 = %#x, want %#x", got, DR6Reserved|DR6BS|0x2)
	}
	st.DebugRegs[0], st.DebugRegs[7] = 0x1000, 1
	if got, want := ForkDebugRegs(st.DebugRegs), [8]uint64{6: DR6BS | 0x2}; got != want {
		t.Errorf("ForkDebugRegs = %#x, want %#x", got, want)
	}
	st.DebugDirty = false
	FlushDebugRegs(&st)
	if st.DebugRegs != [8]uint64{} || !st.DebugDirty {
		t.Errorf("after FlushDebugRegs: %#x, dirty %v; want zero, dirty", st.DebugRegs, st.DebugDirty)
	}
	st.DebugDirty = false
	FlushDebugRegs(&st)
	if st.DebugDirty {
		t.Errorf("FlushDebugRegs of clear registers set DebugDirty")
	}
}

// testLayout is an x87+SSE+AVX image as Intel and AMD lay it out.
func testLayout() XSaveLayout {
	l := XSaveLayout{Size: 832, Features: 0x7, MXCSRMask: DefaultMXCSRMask}
	l.Offset[2], l.Len[2] = 576, 256
	return l
}

func TestRegsetLen(t *testing.T) {
	xl := testLayout()
	for _, c := range []struct {
		note    int
		iov     uint64
		want    uint64
		wantErr error
	}{
		{unix.NT_PRSTATUS, 216, 216, nil},
		{unix.NT_PRSTATUS, 4096, 216, nil},
		{unix.NT_PRSTATUS, 16, 16, nil},
		{unix.NT_PRSTATUS, 0, 0, nil},
		{unix.NT_PRSTATUS, 12, 0, unix.EINVAL},
		{unix.NT_PRFPREG, 520, 512, nil},
		{unix.NT_X86_XSTATE, 1 << 20, 832, nil},
		{unix.NT_386_IOPERM, 1 << 20, IOPermRegsetSize, nil},
		{unix.NT_386_TLS, 8, 0, unix.EINVAL},
		{unix.NT_X86_SHSTK, 8, 0, unix.EINVAL},
		{unix.NT_PRPSINFO, 8, 0, unix.EINVAL},
	} {
		got, err := RegsetLen(&xl, c.note, c.iov)
		if got != c.want || err != c.wantErr {
			t.Errorf("RegsetLen(%#x, %d) = %d, %v, want %d, %v", c.note, c.iov, got, err, c.want, c.wantErr)
		}
	}
}

// testFP returns an image of the test layout with every byte set and the
// header's XSTATE_BV set to xbv.
func testFP(xbv uint64) FPState {
	fp := make(FPState, 832)
	for i := range fp {
		fp[i] = 0xa0 | byte(i&0xf)
	}
	binary.LittleEndian.PutUint32(fp[mxcsrOff:], 0x1f80|0x20)
	clear(fp[XSaveHeaderOff : XSaveHeaderOff+XSaveHeaderLen])
	binary.LittleEndian.PutUint64(fp[XSaveHeaderOff:], xbv)
	return fp
}

func TestGetRegsetShowsInitialComponents(t *testing.T) {
	xl := testLayout()
	initX87 := make([]byte, mxcsrOff)
	initX87[0], initX87[1] = 0x7f, 0x03
	for _, c := range []struct {
		name                 string
		xbv                  uint64
		x87, mxcsr, xmm, ymm bool // whether each comes from the image
	}{
		{"all in use", 0x7, true, true, true, true},
		{"none", 0, false, false, false, false},
		{"x87 only", 0x1, true, false, false, false},
		{"sse only", 0x2, false, true, true, false},
		{"avx only: mxcsr but no xmm", 0x4, false, true, false, true},
		{"a feature outside XCR0 is dropped", 0x1 | 1<<9, true, false, false, false},
	} {
		fp := testFP(c.xbv)
		st := State{FP: fp, FPValid: true}
		xs, err := GetRegset(&st, &xl, unix.NT_X86_XSTATE)
		if err != nil {
			t.Fatalf("%s: GetRegset(NT_X86_XSTATE) = %v", c.name, err)
		}
		fx, err := GetRegset(&st, &xl, unix.NT_PRFPREG)
		if err != nil {
			t.Fatalf("%s: GetRegset(NT_PRFPREG) = %v", c.name, err)
		}
		if len(xs) != xl.Size || len(fx) != FXSaveSize {
			t.Fatalf("%s: sizes %d, %d, want %d, %d", c.name, len(xs), len(fx), xl.Size, FXSaveSize)
		}
		// NT_PRFPREG is the legacy part of NT_X86_XSTATE and 96 zero
		// bytes, but it knows no AVX: MXCSR comes with SSE alone there.
		wantFX := append(bytes.Clone(xs[:fxPaddingOff]), make([]byte, FXSaveSize-fxPaddingOff)...)
		if c.xbv&xfeatureSSE == 0 {
			binary.LittleEndian.PutUint32(wantFX[mxcsrOff:], DefaultMXCSR)
			binary.LittleEndian.PutUint32(wantFX[mxcsrMaskOff:], xl.MXCSRMask)
		}
		if !bytes.Equal(fx, wantFX) {
			t.Errorf("%s: NT_PRFPREG = %x, want %x", c.name, fx, wantFX)
		}
		check := func(part string, from bool, got, image, init []byte) {
			t.Helper()
			want := init
			if from {
				want = image
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s = %x, want %x", c.name, part, got, want)
			}
		}
		check("x87 control", c.x87, xs[:mxcsrOff], fp[:mxcsrOff], initX87)
		mx := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, DefaultMXCSR), DefaultMXCSRMask)
		check("mxcsr", c.mxcsr, xs[mxcsrOff:fxStSpaceOff], fp[mxcsrOff:fxStSpaceOff], mx)
		check("st0-7", c.x87, xs[fxStSpaceOff:fxXMMSpaceOff], fp[fxStSpaceOff:fxXMMSpaceOff], make([]byte, 128))
		check("xmm", c.xmm, xs[fxXMMSpaceOff:fxPaddingOff], fp[fxXMMSpaceOff:fxPaddingOff], make([]byte, 256))
		check("ymm", c.ymm, xs[576:832], fp[576:832], make([]byte, 256))
		sw := binary.LittleEndian.AppendUint64(nil, xl.Features)
		check("sw bytes", true, xs[swReservedOff:FXSaveSize], append(sw, make([]byte, 40)...), nil)
		hdr := binary.LittleEndian.AppendUint64(nil, c.xbv&xl.Features)
		check("header", true, xs[XSaveHeaderOff:XSaveHeaderOff+XSaveHeaderLen], append(hdr, make([]byte, 56)...), nil)
	}
}

func TestSetRegsetXState(t *testing.T) {
	xl := testLayout()
	for _, c := range []struct {
		name    string
		edit    func(b []byte) []byte
		wantErr error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"short", func(b []byte) []byte { return b[:512] }, unix.EFAULT},
		{"long", func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0, 0, 0, 0) }, unix.EFAULT},
		{"feature outside XCR0", func(b []byte) []byte { b[XSaveHeaderOff+1] = 0x2; return b }, unix.EINVAL},
		{"compacted", func(b []byte) []byte { b[xcompBVOff+7] = 0x80; return b }, unix.EINVAL},
		{"reserved header byte", func(b []byte) []byte { b[xhdrRsvdOff+5] = 1; return b }, unix.EINVAL},
		{"reserved mxcsr", func(b []byte) []byte { b[mxcsrOff+2] = 1; return b }, unix.EINVAL},
		{"reserved mxcsr, nothing in use", func(b []byte) []byte {
			b[mxcsrOff+2] = 1
			b[XSaveHeaderOff] = 0
			return b
		}, nil},
	} {
		st := State{FP: NewFPState(xl.Size), FPValid: true}
		before := st.FP.Clone()
		err := SetRegset(&st, &xl, unix.NT_X86_XSTATE, c.edit(testFP(0x7)))
		if err != c.wantErr {
			t.Errorf("%s: SetRegset = %v, want %v", c.name, err, c.wantErr)
		}
		if err != nil && (!bytes.Equal(st.FP, before) || st.FPDirty) {
			t.Errorf("%s: a refused write changed the state", c.name)
		}
		if err == nil && !st.FPDirty {
			t.Errorf("%s: FPDirty not set", c.name)
		}
	}
}

func TestSetRegsetXStateRoundTrip(t *testing.T) {
	xl := testLayout()
	for _, xbv := range []uint64{0, 1, 2, 4, 3, 5, 6, 7} {
		st := State{FP: NewFPState(xl.Size), FPValid: true}
		img := testFP(xbv)
		if err := SetRegset(&st, &xl, unix.NT_X86_XSTATE, img); err != nil {
			t.Fatalf("XSTATE_BV %#x: SetRegset = %v", xbv, err)
		}
		want, _ := GetRegset(&State{FP: img, FPValid: true}, &xl, unix.NT_X86_XSTATE)
		got, _ := GetRegset(&st, &xl, unix.NT_X86_XSTATE)
		if !bytes.Equal(got, want) {
			t.Errorf("XSTATE_BV %#x: read back %x, want %x", xbv, got, want)
		}
	}
}

func TestSetRegsetFPRegs(t *testing.T) {
	xl := testLayout()
	for _, c := range []struct {
		name    string
		n       int
		mxcsr   uint32
		wantErr error
	}{
		{"whole", 512, DefaultMXCSR, nil},
		{"short", 504, DefaultMXCSR, unix.EINVAL},
		{"empty", 0, DefaultMXCSR, unix.EINVAL},
		{"reserved mxcsr", 512, 1 << 16, unix.EINVAL},
	} {
		st := State{FP: NewFPState(xl.Size), FPValid: true}
		binary.LittleEndian.PutUint64(st.FP[XSaveHeaderOff:], XFeatureMaskYMM)
		data := bytes.Repeat([]byte{0x5a}, FXSaveSize)
		binary.LittleEndian.PutUint32(data[mxcsrOff:], c.mxcsr)
		err := SetRegset(&st, &xl, unix.NT_PRFPREG, data[:c.n])
		if err != c.wantErr {
			t.Errorf("%s: SetRegset(NT_PRFPREG, %d bytes) = %v, want %v", c.name, c.n, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(st.FP[:FXSaveSize], data) {
			t.Errorf("%s: legacy area not written", c.name)
		}
		if got := binary.LittleEndian.Uint64(st.FP[XSaveHeaderOff:]); got != XFeatureMaskYMM|XFeatureMaskFPSSE {
			t.Errorf("%s: XSTATE_BV = %#x, want x87 and SSE added to AVX", c.name, got)
		}
	}
}

func TestRegsetErrors(t *testing.T) {
	xl := testLayout()
	stale := State{FP: NewFPState(xl.Size)}
	for _, c := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"get xstate, FP not pulled", func() error { _, err := GetRegset(&stale, &xl, unix.NT_X86_XSTATE); return err }(), ErrFPStale},
		{"set fpregs, FP not pulled", SetRegset(&stale, &xl, unix.NT_PRFPREG, make([]byte, 512)), ErrFPStale},
		{"get ioperm", func() error { _, err := GetRegset(&stale, &xl, unix.NT_386_IOPERM); return err }(), unix.ENXIO},
		{"set ioperm", SetRegset(&stale, &xl, unix.NT_386_IOPERM, make([]byte, 8)), unix.EOPNOTSUPP},
		{"get unknown", func() error { _, err := GetRegset(&stale, &xl, 0x53494749); return err }(), unix.EINVAL},
		{"set unknown", SetRegset(&stale, &xl, unix.NT_386_TLS, nil), unix.EINVAL},
	} {
		if !errors.Is(c.err, c.wantErr) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.wantErr)
		}
	}
}

func TestSetRegsetPrStatusPrefix(t *testing.T) {
	st := State{Regs: testRegs()}
	b := make([]byte, RegistersSize)
	for i := range b {
		b[i] = 0x11
	}
	xl := testLayout()
	if err := SetRegset(&st, &xl, unix.NT_PRSTATUS, b[:16]); err != nil {
		t.Fatalf("SetRegset(NT_PRSTATUS, 16 bytes) = %v", err)
	}
	want := testRegs()
	want.R15, want.R14 = 0x1111111111111111, 0x1111111111111111
	if st.Regs != want {
		t.Errorf("after a 16-byte write: %+v, want only r15 and r14 changed: %+v", st.Regs, want)
	}
}

func TestSyscallInfo(t *testing.T) {
	neg := func(v uint64) uint64 { return -v }
	r := testRegs()
	r.OrigRax, r.Rip, r.Rsp = 110, 0x401000, 0x7ffd0000
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = 1, 2, 3, 4, 5, 6
	for _, c := range []struct {
		name    string
		op      uint8
		rax     uint64
		size    int
		nr      uint64
		rval    int64
		isError bool
		retData uint32
	}{
		{"none", unix.PTRACE_SYSCALL_INFO_NONE, 0, 24, 0, 0, false, 0},
		{"entry", unix.PTRACE_SYSCALL_INFO_ENTRY, 0, 80, 110, 0, false, 0},
		{"exit ok", unix.PTRACE_SYSCALL_INFO_EXIT, 42, 33, 0, 42, false, 0},
		{"exit -EBADF", unix.PTRACE_SYSCALL_INFO_EXIT, neg(uint64(unix.EBADF)), 33, 0, -int64(unix.EBADF), true, 0},
		{"exit -4095", unix.PTRACE_SYSCALL_INFO_EXIT, neg(4095), 33, 0, -4095, true, 0},
		{"exit -4096 is a value", unix.PTRACE_SYSCALL_INFO_EXIT, neg(4096), 33, 0, -4096, false, 0},
		{"seccomp", unix.PTRACE_SYSCALL_INFO_SECCOMP, 0, 84, 110, 0, false, 0x1234},
	} {
		r.Rax = c.rax
		si := NewSyscallInfo(c.op, &r, 0x1234)
		b := si.Encode()
		if len(b) != c.size || si.Size() != c.size {
			t.Errorf("%s: len(Encode()) = %d, Size() = %d, want %d", c.name, len(b), si.Size(), c.size)
			continue
		}
		le := binary.LittleEndian
		if b[0] != c.op || le.Uint32(b[4:]) != unix.AUDIT_ARCH_X86_64 || le.Uint64(b[8:]) != r.Rip || le.Uint64(b[16:]) != r.Rsp {
			t.Errorf("%s: head = %x, want op %d, AUDIT_ARCH_X86_64, rip, rsp", c.name, b[:24], c.op)
		}
		switch c.op {
		case unix.PTRACE_SYSCALL_INFO_ENTRY, unix.PTRACE_SYSCALL_INFO_SECCOMP:
			if le.Uint64(b[24:]) != c.nr || le.Uint64(b[32:]) != 1 || le.Uint64(b[72:]) != 6 {
				t.Errorf("%s: nr and args = %x, want %d, 1..6", c.name, b[24:80], c.nr)
			}
			if c.op == unix.PTRACE_SYSCALL_INFO_SECCOMP && le.Uint32(b[80:]) != c.retData {
				t.Errorf("%s: ret_data = %#x, want %#x", c.name, le.Uint32(b[80:]), c.retData)
			}
		case unix.PTRACE_SYSCALL_INFO_EXIT:
			if int64(le.Uint64(b[24:])) != c.rval || (b[32] == 1) != c.isError {
				t.Errorf("%s: rval, is_error = %d, %d, want %d, %v", c.name, int64(le.Uint64(b[24:])), b[32], c.rval, c.isError)
			}
		}
	}
}

func TestDecodePeekSiginfoArgs(t *testing.T) {
	enc := func(off uint64, flags uint32, nr int32) []byte {
		b := binary.LittleEndian.AppendUint64(nil, off)
		b = binary.LittleEndian.AppendUint32(b, flags)
		return binary.LittleEndian.AppendUint32(b, uint32(nr))
	}
	for _, c := range []struct {
		name    string
		b       []byte
		want    PeekSiginfoArgs
		wantErr error
	}{
		{"private", enc(3, 0, 2), PeekSiginfoArgs{Off: 3, Nr: 2}, nil},
		{"shared", enc(0, unix.PTRACE_PEEKSIGINFO_SHARED, 1), PeekSiginfoArgs{Flags: unix.PTRACE_PEEKSIGINFO_SHARED, Nr: 1}, nil},
		{"huge offset", enc(1<<63, 0, 0), PeekSiginfoArgs{Off: 1 << 63}, nil},
		{"unknown flag", enc(0, 2, 1), PeekSiginfoArgs{Flags: 2, Nr: 1}, unix.EINVAL},
		{"negative nr", enc(0, 0, -1), PeekSiginfoArgs{Nr: -1}, unix.EINVAL},
		{"short", make([]byte, 15), PeekSiginfoArgs{}, unix.EFAULT},
	} {
		got, err := DecodePeekSiginfoArgs(c.b)
		if got != c.want || err != c.wantErr {
			t.Errorf("%s: DecodePeekSiginfoArgs = %+v, %v, want %+v, %v", c.name, got, err, c.want, c.wantErr)
		}
	}
}

func TestSetSyscallInfo(t *testing.T) {
	base := testRegs()
	base.OrigRax, base.Rax = 39, 0
	entry := func(nr uint64, args ...uint64) []byte {
		si := SyscallInfo{Op: unix.PTRACE_SYSCALL_INFO_ENTRY, Nr: nr}
		copy(si.Args[:], args)
		return append(si.Encode(), make([]byte, SyscallInfoSize-si.Size())...)
	}
	exit := func(rval int64, isError bool) []byte {
		si := SyscallInfo{Op: unix.PTRACE_SYSCALL_INFO_EXIT, RVal: rval, IsError: isError}
		return append(si.Encode(), make([]byte, SyscallInfoSize-si.Size())...)
	}
	withByte := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	for _, c := range []struct {
		name    string
		stop    uint8
		b       []byte
		wantErr error
		want    func(r *Registers)
	}{
		{"entry", unix.PTRACE_SYSCALL_INFO_ENTRY, entry(110, 1, 2, 3, 4, 5, 6), nil, func(r *Registers) {
			r.OrigRax, r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = 110, 1, 2, 3, 4, 5, 6
		}},
		{"entry skip keeps args", unix.PTRACE_SYSCALL_INFO_ENTRY, entry(1<<64-1, 9, 9), nil, func(r *Registers) { r.OrigRax = 1<<64 - 1 }},
		{"entry nr not an int", unix.PTRACE_SYSCALL_INFO_ENTRY, entry(1 << 32), unix.ERANGE, nil},
		{"seccomp is entry", unix.PTRACE_SYSCALL_INFO_SECCOMP, withByte(entry(2, 7), 0, unix.PTRACE_SYSCALL_INFO_SECCOMP), nil, func(r *Registers) {
			r.OrigRax, r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = 2, 7, 0, 0, 0, 0, 0
		}},
		{"exit value", unix.PTRACE_SYSCALL_INFO_EXIT, exit(1<<40, false), nil, func(r *Registers) { r.Rax = 1 << 40 }},
		{"exit error", unix.PTRACE_SYSCALL_INFO_EXIT, exit(-int64(unix.EPERM), true), nil, func(r *Registers) { r.Rax = ^uint64(unix.EPERM - 1) }},
		{"exit error is an int", unix.PTRACE_SYSCALL_INFO_EXIT, exit(1<<32|5, true), nil, func(r *Registers) { r.Rax = 5 }},
		{"op differs from the stop", unix.PTRACE_SYSCALL_INFO_EXIT, entry(1), unix.EINVAL, nil},
		{"no syscall stop", unix.PTRACE_SYSCALL_INFO_NONE, withByte(entry(1), 0, 0), unix.EINVAL, nil},
		{"flags", unix.PTRACE_SYSCALL_INFO_ENTRY, withByte(entry(1), 2, 1), unix.EINVAL, nil},
		{"reserved", unix.PTRACE_SYSCALL_INFO_ENTRY, withByte(entry(1), 1, 1), unix.EINVAL, nil},
		{"short", unix.PTRACE_SYSCALL_INFO_ENTRY, entry(1)[:80], unix.EINVAL, nil},
	} {
		r := base
		err := SetSyscallInfo(&r, c.stop, c.b)
		if err != c.wantErr {
			t.Errorf("%s: SetSyscallInfo = %v, want %v", c.name, err, c.wantErr)
		}
		want := base
		if c.want != nil {
			c.want(&want)
		}
		if r != want {
			t.Errorf("%s: registers %+v, want %+v", c.name, r, want)
		}
	}
}
