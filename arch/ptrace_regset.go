package arch

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"golang.org/x/sys/unix"
)

// The regsets of a 64-bit tracee, for PTRACE_GETREGSET and
// PTRACE_SETREGSET (Linux: arch/x86/kernel/ptrace.c x86_64_regsets, and
// kernel/ptrace.c:ptrace_regset()), and PTRACE_GETFPREGS/SETFPREGS, which
// are NT_PRFPREG with a whole buffer:
//
//	NT_PRSTATUS    struct user_regs_struct, 216 bytes
//	NT_PRFPREG     struct user_fpregs_struct: the 512-byte FXSAVE image
//	NT_X86_XSTATE  the standard-format XSAVE image, XSaveLayout.Size bytes
//	NT_386_IOPERM  the I/O permission bitmap, 8192 bytes; ringbox tasks
//	               have none, so reads are ENXIO and writes EOPNOTSUPP
//
// Any other note type is EINVAL, as NT_386_TLS (32-bit view only) is for a
// 64-bit tracee on Linux, and NT_X86_SHSTK is without user shadow stacks.
//
// The kernel's side of a request is:
//
//	n, err := RegsetLen(xl, note, iov.iov_len)  // EINVAL?
//	GET: b, err := GetRegset(st, xl, note); copy b[:n] out
//	SET: copy n bytes in; err := SetRegset(st, xl, note, data)
//	then, if err == nil, store n in iov.iov_len
//
// Linux answers PTRACE_SETREGSET with the length it used, like
// PTRACE_GETREGSET.

// Sizes of the legacy regsets.
const (
	// IOPermRegsetSize is the size of NT_386_IOPERM (Linux:
	// IO_BITMAP_LONGS longs).
	IOPermRegsetSize = 65536 / 8
	// regsetWord is the unit of every x86-64 regset (user_regset.size):
	// an iovec length must be a multiple of it.
	regsetWord = 8
)

// XSAVE layout constants (Intel SDM Vol. 1, 13.4; Linux:
// arch/x86/include/asm/fpu/types.h).
const (
	// XFeatureMaskYMM is the AVX component.
	XFeatureMaskYMM = 1 << 2
	xfeatureFP      = 1 << 0
	xfeatureSSE     = 1 << 1

	fxStSpaceOff  = 32  // ST0-ST7, after the x87 control words and MXCSR
	fxXMMSpaceOff = 160 // XMM0-XMM15
	fxPaddingOff  = 416 // to swReservedOff: zero in what ptrace shows
	xcompBVOff    = XSaveHeaderOff + 8
	xhdrRsvdOff   = XSaveHeaderOff + 16

	// DefaultMXCSRMask is the MXCSR bits every x86-64 CPU implements
	// (FXSAVE's MXCSR_MASK with DAZ).
	DefaultMXCSRMask = 0xffff
)

// ErrFPStale is a kernel error, not an errno: a regset of the FP state was
// asked for while the state lives in the platform (State.FPValid false).
var ErrFPStale = errors.New("arch: FP state not pulled from the platform")

// XSaveLayout describes the XSAVE image a platform exchanges, which is what
// NT_X86_XSTATE shows a tracer.
type XSaveLayout struct {
	// Size is the size of the standard-format image and of the regset
	// (Linux: fpu_user_cfg.max_size).
	Size int
	// Features are the user state components the image may hold: XCR0
	// (Linux: fpu_user_cfg.max_features). A tracer reads them from the
	// image's software-reserved bytes and may set no others.
	Features uint64
	// MXCSRMask are the MXCSR bits a tracer may set (Linux:
	// mxcsr_feature_mask, from the CPU's FXSAVE), and the MXCSR_MASK
	// shown while SSE and AVX are in their initial state.
	//
	// TODO: Linux uses the CPU's MXCSR_MASK, which also has MM (bit 17)
	// on AMD CPUs with misaligned SSE; NewXSaveLayout uses
	// DefaultMXCSRMask, so such a write is EINVAL here.
	MXCSRMask uint32
	// Offset and Len place each extended component i (2 and up) in the
	// standard format: CPUID.(EAX=0DH,ECX=i):EBX and EAX. Components 0
	// (x87) and 1 (SSE) live in the legacy area.
	Offset, Len [64]uint32
}

// NewXSaveLayout returns the layout of an image holding the components in
// features (always at least x87 and SSE), placed as this CPU's CPUID leaf
// 0xD says. The platform knows features: XCR0 of the vCPU, or the host
// XCR0 that the first word of a host NT_X86_XSTATE's software-reserved
// bytes shows.
func NewXSaveLayout(features uint64) XSaveLayout {
	l := XSaveLayout{Size: MinFPStateSize, Features: features | XFeatureMaskFPSSE, MXCSRMask: DefaultMXCSRMask}
	for i := 2; i < 64; i++ {
		if l.Features&(1<<i) == 0 {
			continue
		}
		size, off, _, _ := CPUID(0xd, uint32(i))
		l.Offset[i], l.Len[i] = off, size
		l.Size = max(l.Size, int(off+size))
	}
	return l
}

// RegsetLen returns how many bytes PTRACE_GETREGSET and PTRACE_SETREGSET
// move for an iovec of iovLen bytes: the regset's size at most. It is
// EINVAL for a note that is not a regset of a 64-bit task and for a length
// that is not a multiple of 8 (Linux: kernel/ptrace.c:ptrace_regset()).
func RegsetLen(xl *XSaveLayout, note int, iovLen uint64) (uint64, error) {
	size, ok := regsetSize(xl, note)
	if !ok || iovLen%regsetWord != 0 {
		return 0, unix.EINVAL
	}
	return min(iovLen, uint64(size)), nil
}

func regsetSize(xl *XSaveLayout, note int) (int, bool) {
	switch note {
	case unix.NT_PRSTATUS:
		return RegistersSize, true
	case unix.NT_PRFPREG:
		return FXSaveSize, true
	case unix.NT_X86_XSTATE:
		return xl.Size, true
	case unix.NT_386_IOPERM:
		return IOPermRegsetSize, true
	}
	return 0, false
}

// GetRegset returns the whole regset note of st; PTRACE_GETREGSET copies
// the first RegsetLen bytes of it out. The FP regsets show the state the
// way Linux does (arch/x86/kernel/fpu/xstate.c:__copy_xstate_to_uabi_buf()):
// a component the XSAVE header marks as in its initial configuration
// reads as its initial values, whatever bytes the image holds;
// NT_PRFPREG ends with 96 zero bytes; NT_X86_XSTATE has the user features
// (XCR0) in the first word of its software-reserved bytes, the rest of
// those bytes zero, and a header with only XSTATE_BV.
//
// Preconditions: for NT_PRFPREG and NT_X86_XSTATE, st.FPValid.
func GetRegset(st *State, xl *XSaveLayout, note int) ([]byte, error) {
	switch note {
	case unix.NT_PRSTATUS:
		b := make([]byte, RegistersSize)
		EncodeRegisters(&st.Regs, b)
		return b, nil
	case unix.NT_PRFPREG, unix.NT_X86_XSTATE:
		if !st.FPValid {
			return nil, ErrFPStale
		}
		return uabiXState(st.FP, xl, note == unix.NT_X86_XSTATE), nil
	case unix.NT_386_IOPERM:
		// Linux: arch/x86/kernel/ptrace.c:ioperm_get() without a bitmap.
		return nil, unix.ENXIO
	}
	return nil, unix.EINVAL
}

// uabiXState returns the image of fp that ptrace shows: the legacy area
// only (NT_PRFPREG, 512 bytes) or the whole of it (NT_X86_XSTATE,
// xl.Size bytes).
func uabiXState(fp FPState, xl *XSaveLayout, xsave bool) []byte {
	size := FXSaveSize
	if xsave {
		size = xl.Size
	}
	out := make([]byte, size)
	src := make(FPState, max(len(fp), xl.Size, MinFPStateSize))
	copy(src, fp)
	xbv := binary.LittleEndian.Uint64(src[XSaveHeaderOff:])
	if xsave {
		xbv &= xl.Features
	} else {
		xbv &= XFeatureMaskFPSSE
	}
	// The initial x87 state: FNINIT's control word, everything else 0.
	if xbv&xfeatureFP != 0 {
		copy(out[:mxcsrOff], src)
		copy(out[fxStSpaceOff:fxXMMSpaceOff], src[fxStSpaceOff:])
	} else {
		binary.LittleEndian.PutUint16(out[fcwOff:], DefaultFCW)
	}
	// MXCSR belongs to SSE and AVX both; MXCSR_MASK comes with it.
	if xbv&(xfeatureSSE|XFeatureMaskYMM) != 0 {
		copy(out[mxcsrOff:fxStSpaceOff], src[mxcsrOff:])
	} else {
		binary.LittleEndian.PutUint32(out[mxcsrOff:], DefaultMXCSR)
		binary.LittleEndian.PutUint32(out[mxcsrMaskOff:], xl.MXCSRMask)
	}
	if xbv&xfeatureSSE != 0 {
		copy(out[fxXMMSpaceOff:fxPaddingOff], src[fxXMMSpaceOff:])
	}
	if !xsave {
		return out
	}
	binary.LittleEndian.PutUint64(out[swReservedOff:], xl.Features)
	binary.LittleEndian.PutUint64(out[XSaveHeaderOff:], xbv)
	for m := xbv &^ XFeatureMaskFPSSE; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		off, n := int(xl.Offset[i]), int(xl.Len[i])
		if off+n <= size {
			copy(out[off:off+n], src[off:])
		}
	}
	return out
}

// SetRegset writes data, the first RegsetLen bytes of the tracer's iovec,
// to regset note of st, with Linux's checks:
//   - NT_PRSTATUS: the whole registers in data, one by one as SetRegs
//     does; a prefix writes only the registers it covers;
//   - NT_PRFPREG: exactly 512 bytes (EINVAL otherwise) with an MXCSR
//     inside xl.MXCSRMask (EINVAL); the x87 and SSE components become in
//     use (Linux: arch/x86/kernel/fpu/regset.c:xfpregs_set());
//   - NT_X86_XSTATE: exactly xl.Size bytes (EFAULT otherwise, as Linux's
//     xstateregs_set() answers), a header with no feature outside
//     xl.Features, a zero XCOMP_BV and zero reserved bytes (EINVAL), an
//     MXCSR inside xl.MXCSRMask when x87, SSE or AVX is in use (EINVAL);
//     the components in the header's XSTATE_BV are copied and the others
//     become initial (Linux: arch/x86/kernel/fpu/xstate.c:
//     copy_uabi_to_xstate());
//   - NT_386_IOPERM is read-only: EOPNOTSUPP.
//
// Preconditions: for NT_PRFPREG and NT_X86_XSTATE, st.FPValid. On success
// the FP regsets set st.FPDirty.
func SetRegset(st *State, xl *XSaveLayout, note int, data []byte) error {
	switch note {
	case unix.NT_PRSTATUS:
		return setRegsPrefix(&st.Regs, data)
	case unix.NT_PRFPREG:
		if !st.FPValid {
			return ErrFPStale
		}
		if len(data) != FXSaveSize {
			return unix.EINVAL
		}
		if binary.LittleEndian.Uint32(data[mxcsrOff:])&^xl.MXCSRMask != 0 {
			return unix.EINVAL
		}
		fp := fpForWrite(st, xl)
		copy(fp, data)
		xbv := binary.LittleEndian.Uint64(fp[XSaveHeaderOff:])
		binary.LittleEndian.PutUint64(fp[XSaveHeaderOff:], xbv|XFeatureMaskFPSSE)
		st.FPDirty = true
		return nil
	case unix.NT_X86_XSTATE:
		if !st.FPValid {
			return ErrFPStale
		}
		if len(data) != xl.Size {
			return unix.EFAULT
		}
		return setXState(st, xl, data)
	case unix.NT_386_IOPERM:
		return unix.EOPNOTSUPP
	}
	return unix.EINVAL
}

// setXState is SetRegset of NT_X86_XSTATE once the size is right.
func setXState(st *State, xl *XSaveLayout, data []byte) error {
	xbv := binary.LittleEndian.Uint64(data[XSaveHeaderOff:])
	if xbv&^xl.Features != 0 || binary.LittleEndian.Uint64(data[xcompBVOff:]) != 0 {
		return unix.EINVAL
	}
	for _, c := range data[xhdrRsvdOff : XSaveHeaderOff+XSaveHeaderLen] {
		if c != 0 {
			return unix.EINVAL
		}
	}
	if xbv&(xfeatureFP|xfeatureSSE|XFeatureMaskYMM) != 0 &&
		binary.LittleEndian.Uint32(data[mxcsrOff:])&^xl.MXCSRMask != 0 {
		return unix.EINVAL
	}
	fp := fpForWrite(st, xl)
	if xbv&xfeatureFP != 0 {
		// The x87 component's bytes include MXCSR and MXCSR_MASK.
		copy(fp[:fxXMMSpaceOff], data)
	} else if xbv&(xfeatureSSE|XFeatureMaskYMM) != 0 {
		copy(fp[mxcsrOff:fxStSpaceOff], data[mxcsrOff:])
	}
	if xbv&xfeatureSSE != 0 {
		copy(fp[fxXMMSpaceOff:fxPaddingOff], data[fxXMMSpaceOff:])
	}
	for m := xbv &^ XFeatureMaskFPSSE; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		off, n := int(xl.Offset[i]), int(xl.Len[i])
		if off+n <= len(fp) && off+n <= len(data) {
			copy(fp[off:off+n], data[off:])
		}
	}
	// Every user component is now what the tracer said: in use or
	// initial. ringbox keeps no supervisor components in FPState.
	binary.LittleEndian.PutUint64(fp[XSaveHeaderOff:], xbv)
	st.FPDirty = true
	return nil
}

// fpForWrite returns st.FP grown to the layout's size if it is smaller.
func fpForWrite(st *State, xl *XSaveLayout) FPState {
	if len(st.FP) < max(xl.Size, MinFPStateSize) {
		fp := NewFPState(max(xl.Size, MinFPStateSize))
		copy(fp, st.FP)
		st.FP = fp
	}
	return st.FP
}
