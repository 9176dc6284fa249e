package arch

import (
	"encoding/binary"
	"errors"
)

// SignalStack is stack_t (sigaltstack(2)).
type SignalStack struct {
	Sp    uint64
	Flags uint32
	Size  uint64
}

// sigaltstack flags (Linux: include/uapi/linux/signal.h).
const (
	SS_ONSTACK    = 1
	SS_DISABLE    = 2
	SS_AUTODISARM = 1 << 31
)

// Contains reports whether sp is on the stack (Linux: on_sig_stack()).
func (s SignalStack) Contains(sp uint64) bool {
	return s.Flags&SS_DISABLE == 0 && s.Size != 0 && sp > s.Sp && sp-s.Sp <= s.Size
}

// Signal frame layout of a 64-bit process (Linux: arch/x86/include/asm/
// sigframe.h struct rt_sigframe, uapi/asm/sigcontext.h struct sigcontext_64,
// uapi/asm-generic/ucontext.h).
const (
	// frame: pretcode, ucontext, siginfo.
	framePretcodeOff = 0
	frameUCOff       = 8
	ucFlagsOff       = frameUCOff + 0
	ucLinkOff        = frameUCOff + 8
	ucStackOff       = frameUCOff + 16 // stack_t: sp, flags(+pad), size
	ucMcontextOff    = frameUCOff + 40 // struct sigcontext, 256 bytes
	ucSigmaskOff     = frameUCOff + 296
	frameInfoOff     = frameUCOff + 304
	// SigFrameSize is sizeof(struct rt_sigframe).
	SigFrameSize = frameInfoOff + SignalInfoSize

	// sigcontext members, from the start of the sigcontext.
	scR8      = 0
	scRdi     = 64
	scRsi     = 72
	scRbp     = 80
	scRbx     = 88
	scRdx     = 96
	scRax     = 104
	scRcx     = 112
	scRsp     = 120
	scRip     = 128
	scEflags  = 136
	scCs      = 144 // u16 cs, gs, fs, ss
	scErr     = 152
	scTrapno  = 160
	scOldmask = 168
	scCr2     = 176
	scFpstate = 184

	// redZone is the 128 bytes below rsp the ABI lets leaf functions use.
	redZone = 128

	// uc_flags (Linux: arch/x86/include/uapi/asm/ucontext.h).
	UC_FP_XSTATE         = 0x1
	UC_SIGCONTEXT_SS     = 0x2
	UC_STRICT_RESTORE_SS = 0x4

	// FP_XSTATE_MAGIC1/2 mark an XSAVE image in a signal frame (Linux:
	// arch/x86/include/uapi/asm/sigcontext.h).
	FP_XSTATE_MAGIC1 = 0x46505853
	FP_XSTATE_MAGIC2 = 0x46505845
	// swReservedOff is struct _fpx_sw_bytes inside the FXSAVE area.
	swReservedOff = 464
)

// FixEflags are the RFLAGS bits sigreturn restores from the frame (Linux:
// arch/x86/kernel/signal.c FIX_EFLAGS).
const FixEflags = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x10000 | 0x200000

// SigFrame is what a signal frame carries.
type SigFrame struct {
	Regs Registers
	// FP is the XSAVE image of the interrupted code; XFeatures the
	// feature mask (XCR0) the image may use.
	FP        FPState
	XFeatures uint64
	// Mask is the signal mask to restore at sigreturn.
	Mask uint64
	// Stack is the alternate signal stack at delivery.
	Stack SignalStack
	Info  SignalInfo
	// Trapno, Err and Cr2 describe the exception that raised the signal.
	Trapno, Err, Cr2 uint64
}

// SigFrameLayout says where the pieces of a frame go.
type SigFrameLayout struct {
	// Frame is the address of struct rt_sigframe: the handler's rsp.
	Frame uint64
	// FPState is the address of the XSAVE image.
	FPState uint64
	// Bottom and Data are the bytes to write: [Bottom, Bottom+len(Data)).
	Bottom uint64
	Data   []byte
}

// BuildSigFrame lays out a frame below sp (the interrupted rsp, or the top
// of the alternate stack, which the caller chooses: Linux's get_sigframe()
// applies the red zone first, then switches stacks). onAltStack is true
// when sp is the alternate stack's top. It returns the layout and the
// registers the handler starts with.
func BuildSigFrame(sp uint64, onAltStack bool, f *SigFrame, handler, restorer uint64, sig int) (SigFrameLayout, Registers) {
	if !onAltStack {
		sp -= redZone
	}
	fpSize := uint64(len(f.FP))
	// fpu__alloc_mathframe(): the XSAVE image plus FP_XSTATE_MAGIC2, 64-byte
	// aligned.
	fp := (sp - fpSize - 4) &^ 63
	// align_sigframe(): 16-byte aligned minus 8, as if a call pushed the
	// return address.
	frame := ((fp - SigFrameSize) &^ 15) - 8
	top := fp + fpSize + 4
	data := make([]byte, top-frame)
	put64 := func(addr, v uint64) { binary.LittleEndian.PutUint64(data[addr-frame:], v) }
	put32 := func(addr uint64, v uint32) { binary.LittleEndian.PutUint32(data[addr-frame:], v) }
	put16 := func(addr uint64, v uint16) { binary.LittleEndian.PutUint16(data[addr-frame:], v) }

	put64(frame+framePretcodeOff, restorer)
	put64(frame+ucFlagsOff, UC_FP_XSTATE|UC_SIGCONTEXT_SS|UC_STRICT_RESTORE_SS)
	put64(frame+ucLinkOff, 0)
	put64(frame+ucStackOff, f.Stack.Sp)
	put32(frame+ucStackOff+8, uint32(f.Stack.Flags))
	put64(frame+ucStackOff+16, f.Stack.Size)
	sc := frame + ucMcontextOff
	r := &f.Regs
	for i, v := range []uint64{r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15} {
		put64(sc+scR8+uint64(8*i), v)
	}
	put64(sc+scRdi, r.Rdi)
	put64(sc+scRsi, r.Rsi)
	put64(sc+scRbp, r.Rbp)
	put64(sc+scRbx, r.Rbx)
	put64(sc+scRdx, r.Rdx)
	put64(sc+scRax, r.Rax)
	put64(sc+scRcx, r.Rcx)
	put64(sc+scRsp, r.Rsp)
	put64(sc+scRip, r.Rip)
	put64(sc+scEflags, r.Eflags)
	put16(sc+scCs, uint16(r.Cs))
	put16(sc+scCs+2, uint16(r.Gs))
	put16(sc+scCs+4, uint16(r.Fs))
	put16(sc+scCs+6, uint16(r.Ss))
	put64(sc+scErr, f.Err)
	put64(sc+scTrapno, f.Trapno)
	put64(sc+scOldmask, f.Mask)
	put64(sc+scCr2, f.Cr2)
	put64(sc+scFpstate, fp)
	put64(frame+ucSigmaskOff, f.Mask)
	f.Info.Encode(data[frame+frameInfoOff-frame:])

	// The XSAVE image with its software-reserved bytes and end magic.
	copy(data[fp-frame:], f.FP)
	sw := fp + swReservedOff
	put32(sw, FP_XSTATE_MAGIC1)
	put32(sw+4, uint32(fpSize+4))
	put64(sw+8, f.XFeatures)
	put32(sw+16, uint32(fpSize))
	for i := uint64(20); i < 48; i += 4 {
		put32(sw+i, 0)
	}
	put32(fp+fpSize, FP_XSTATE_MAGIC2)

	// The handler's registers (Linux: arch/x86/kernel/signal_64.c
	// x64_setup_rt_frame()): rdi = sig, rsi = &info, rdx = &uc, rax = 0
	// (no vector registers used for varargs), TF and DF cleared.
	nr := f.Regs
	nr.Rdi = uint64(sig)
	nr.Rsi = frame + frameInfoOff
	nr.Rdx = frame + frameUCOff
	nr.Rax = 0
	nr.Rsp = frame
	nr.Rip = handler
	nr.Eflags &^= FlagTF | FlagDF | FlagRF
	nr.Cs = UserCS
	nr.Ss = UserDS
	return SigFrameLayout{Frame: frame, FPState: fp, Bottom: frame, Data: data}, nr
}

// ErrBadFrame is returned for a frame sigreturn cannot use.
var ErrBadFrame = errors.New("bad signal frame")

// ParsedSigFrame is what rt_sigreturn takes back from a frame.
type ParsedSigFrame struct {
	Regs    Registers
	Mask    uint64
	Stack   SignalStack
	FPState uint64 // address of the FP image, 0 for none
}

// ParseSigFrame decodes the ucontext part of a frame (frame is the bytes
// from the frame's address, at least SigFrameSize). cur are the current
// registers: sigreturn keeps the bits of RFLAGS the frame may not change.
func ParseSigFrame(frame []byte, cur *Registers) (ParsedSigFrame, error) {
	if len(frame) < SigFrameSize {
		return ParsedSigFrame{}, ErrBadFrame
	}
	get64 := func(off uint64) uint64 { return binary.LittleEndian.Uint64(frame[off:]) }
	get16 := func(off uint64) uint16 { return binary.LittleEndian.Uint16(frame[off:]) }
	var p ParsedSigFrame
	sc := uint64(ucMcontextOff)
	r := *cur
	regs := []*uint64{&r.R8, &r.R9, &r.R10, &r.R11, &r.R12, &r.R13, &r.R14, &r.R15}
	for i, reg := range regs {
		*reg = get64(sc + scR8 + uint64(8*i))
	}
	r.Rdi = get64(sc + scRdi)
	r.Rsi = get64(sc + scRsi)
	r.Rbp = get64(sc + scRbp)
	r.Rbx = get64(sc + scRbx)
	r.Rdx = get64(sc + scRdx)
	r.Rax = get64(sc + scRax)
	r.Rcx = get64(sc + scRcx)
	r.Rsp = get64(sc + scRsp)
	r.Rip = get64(sc + scRip)
	r.Eflags = (cur.Eflags &^ FixEflags) | (get64(sc+scEflags) & FixEflags) | FlagReserved
	// Linux forces the user selectors (restore_sigcontext(): cs and ss
	// are set to __USER_CS and __USER_DS, other values would be a way out).
	_ = get16(sc + scCs)
	r.Cs = UserCS
	r.Ss = UserDS
	// No syscall restart after sigreturn.
	r.OrigRax = ^uint64(0)
	p.Regs = r
	p.Mask = get64(ucSigmaskOff)
	p.Stack = SignalStack{
		Sp:    get64(ucStackOff),
		Flags: binary.LittleEndian.Uint32(frame[ucStackOff+8:]),
		Size:  get64(ucStackOff + 16),
	}
	p.FPState = get64(sc + scFpstate)
	return p, nil
}

// ParseFPState validates an FP image read from a frame (at least
// FXSaveSize bytes; more when the software-reserved bytes announce an
// XSAVE image) and returns the state to load, of size bytes. It returns
// how many bytes of the image it needs when img is too short (call again
// with that many).
func ParseFPState(img []byte, size int) (FPState, int, error) {
	if len(img) < FXSaveSize {
		return nil, FXSaveSize, nil
	}
	st := NewFPState(size)
	sw := img[swReservedOff:]
	magic1 := binary.LittleEndian.Uint32(sw)
	extSize := int(binary.LittleEndian.Uint32(sw[4:]))
	xsize := int(binary.LittleEndian.Uint32(sw[16:]))
	if magic1 == FP_XSTATE_MAGIC1 && xsize >= MinFPStateSize && xsize <= 1<<20 && extSize == xsize+4 {
		if len(img) < xsize+4 {
			return nil, xsize + 4, nil
		}
		if binary.LittleEndian.Uint32(img[xsize:]) == FP_XSTATE_MAGIC2 {
			copy(st, img[:min(xsize, size)])
			// The XSAVE header's reserved bytes must be zero or XRSTOR
			// faults; sanitize what the program handed us.
			clear(st[XSaveHeaderOff+16 : XSaveHeaderOff+XSaveHeaderLen])
			fixMXCSR(st)
			return st, 0, nil
		}
	}
	// A legacy FXSAVE image: x87 and SSE only.
	copy(st[:FXSaveSize], img[:FXSaveSize])
	clear(st[swReservedOff:FXSaveSize])
	binary.LittleEndian.PutUint64(st[XSaveHeaderOff:], XFeatureMaskFPSSE)
	fixMXCSR(st)
	return st, 0, nil
}

// fixMXCSR clears MXCSR bits the CPU would fault on (Linux masks them with
// mxcsr_feature_mask).
func fixMXCSR(st FPState) {
	m := binary.LittleEndian.Uint32(st[mxcsrOff:])
	binary.LittleEndian.PutUint32(st[mxcsrOff:], m&0xffff)
	binary.LittleEndian.PutUint32(st[mxcsrMaskOff:], 0xffff)
}
