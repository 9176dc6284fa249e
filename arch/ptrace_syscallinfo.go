package arch

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// PTRACE_GET_SYSCALL_INFO and PTRACE_PEEKSIGINFO's argument (Linux:
// include/uapi/linux/ptrace.h, kernel/ptrace.c). The request numbers and
// the PTRACE_SYSCALL_INFO_* operations are golang.org/x/sys/unix's.

// struct ptrace_syscall_info: a 24-byte head (op, two reserved bytes and
// flags, arch, instruction_pointer, stack_pointer), then a union.
const (
	siArchOff    = 4
	siIPOff      = 8
	siSPOff      = 16
	siNrOff      = 24 // entry.nr, seccomp.nr
	siArgsOff    = 32 // entry.args, seccomp.args
	siRvalOff    = 24 // exit.rval
	siIsErrorOff = 32 // exit.is_error
	siRetDataOff = 80 // seccomp.ret_data

	// SyscallInfoSize is sizeof(struct ptrace_syscall_info).
	SyscallInfoSize = 88
)

// maxErrno is the largest errno a system call returns: a return value in
// [-maxErrno, -1] is an error (Linux: include/linux/err.h MAX_ERRNO,
// IS_ERR_VALUE()).
const maxErrno = 4095

// SyscallInfo is struct ptrace_syscall_info: what a tracer learns about
// the system call of a syscall-stop or a seccomp stop.
type SyscallInfo struct {
	// Op is one of unix.PTRACE_SYSCALL_INFO_NONE, _ENTRY, _EXIT and
	// _SECCOMP; it says which of the fields below are filled.
	Op   uint8
	Arch uint32
	// IP and SP are the tracee's rip and rsp.
	IP, SP uint64
	// Nr and Args describe the call at entry and seccomp stops.
	Nr   uint64
	Args [6]uint64
	// RVal and IsError are the outcome at exit stops: the negative errno
	// with IsError, the return value without.
	RVal    int64
	IsError bool
	// RetData is the SECCOMP_RET_DATA of the filter's SECCOMP_RET_TRACE.
	RetData uint32
}

// NewSyscallInfo describes the stop op of a tracee with registers r: an
// entry (the number in orig_rax and the six arguments), an exit (rax, an
// error when it is a negative errno), a seccomp stop (as entry, with the
// filter's retData), or NONE for any other stop (Linux: kernel/ptrace.c:
// ptrace_get_syscall_info(), which picks op from the stop's si_code and
// ptrace_message, and arch/x86/include/asm/syscall.h).
func NewSyscallInfo(op uint8, r *Registers, retData uint32) SyscallInfo {
	s := SyscallInfo{Op: op, Arch: unix.AUDIT_ARCH_X86_64, IP: r.Rip, SP: r.Rsp}
	switch op {
	case unix.PTRACE_SYSCALL_INFO_ENTRY, unix.PTRACE_SYSCALL_INFO_SECCOMP:
		s.Nr = r.SyscallNo()
		s.Args = r.SyscallArgs()
		if op == unix.PTRACE_SYSCALL_INFO_SECCOMP {
			s.RetData = retData
		}
	case unix.PTRACE_SYSCALL_INFO_EXIT:
		s.RVal = int64(r.Rax)
		s.IsError = r.Rax >= uint64(1<<64-maxErrno)
	}
	return s
}

// Size is the number of bytes Linux fills for s.Op, which is also what
// PTRACE_GET_SYSCALL_INFO returns; the tracer gets the first min(its
// buffer's size, Size) of them. It ends at the last field of the op's
// union member: 24 for NONE, 80 for ENTRY, 33 for EXIT, 84 for SECCOMP.
func (s *SyscallInfo) Size() int {
	switch s.Op {
	case unix.PTRACE_SYSCALL_INFO_ENTRY:
		return siArgsOff + 6*8
	case unix.PTRACE_SYSCALL_INFO_EXIT:
		return siIsErrorOff + 1
	case unix.PTRACE_SYSCALL_INFO_SECCOMP:
		return siRetDataOff + 4
	}
	return siNrOff
}

// Encode returns the first Size bytes of struct ptrace_syscall_info for
// s.
func (s *SyscallInfo) Encode() []byte {
	b := make([]byte, SyscallInfoSize)
	b[0] = s.Op
	binary.LittleEndian.PutUint32(b[siArchOff:], s.Arch)
	binary.LittleEndian.PutUint64(b[siIPOff:], s.IP)
	binary.LittleEndian.PutUint64(b[siSPOff:], s.SP)
	switch s.Op {
	case unix.PTRACE_SYSCALL_INFO_ENTRY, unix.PTRACE_SYSCALL_INFO_SECCOMP:
		binary.LittleEndian.PutUint64(b[siNrOff:], s.Nr)
		for i, a := range s.Args {
			binary.LittleEndian.PutUint64(b[siArgsOff+8*i:], a)
		}
		binary.LittleEndian.PutUint32(b[siRetDataOff:], s.RetData)
	case unix.PTRACE_SYSCALL_INFO_EXIT:
		binary.LittleEndian.PutUint64(b[siRvalOff:], uint64(s.RVal))
		if s.IsError {
			b[siIsErrorOff] = 1
		}
	}
	return b[:s.Size()]
}

// SetSyscallInfo is PTRACE_SET_SYSCALL_INFO (Linux 6.16): it applies
// struct ptrace_syscall_info b (SyscallInfoSize bytes; the kernel answers
// EINVAL before reading when the tracer's size is smaller) to the
// registers r of a tracee whose stop has op stopOp, as NewSyscallInfo
// would report it (Linux: kernel/ptrace.c:ptrace_set_syscall_info()):
//   - non-zero flags or reserved byte, an op other than the stop's, or a
//     stop that is not a syscall or seccomp stop: EINVAL;
//   - ENTRY and SECCOMP: orig_rax takes nr, which must be a sign-extended
//     int (ERANGE), and the argument registers take args unless nr is -1
//     (a call the tracer skips keeps its argument registers);
//     seccomp's ret_data is ignored;
//   - EXIT: rax takes rval; with is_error, rval is an int, so rax takes
//     its low 32 bits sign-extended.
func SetSyscallInfo(r *Registers, stopOp uint8, b []byte) error {
	if len(b) < SyscallInfoSize {
		return unix.EINVAL
	}
	op, reserved, flags := b[0], b[1], binary.LittleEndian.Uint16(b[2:])
	if flags != 0 || reserved != 0 || op != stopOp {
		return unix.EINVAL
	}
	switch op {
	case unix.PTRACE_SYSCALL_INFO_ENTRY, unix.PTRACE_SYSCALL_INFO_SECCOMP:
		nr := binary.LittleEndian.Uint64(b[siNrOff:])
		if uint64(int64(int32(nr))) != nr {
			return unix.ERANGE
		}
		r.OrigRax = nr
		if int32(nr) != -1 {
			args := []*uint64{&r.Rdi, &r.Rsi, &r.Rdx, &r.R10, &r.R8, &r.R9}
			for i, a := range args {
				*a = binary.LittleEndian.Uint64(b[siArgsOff+8*i:])
			}
		}
		return nil
	case unix.PTRACE_SYSCALL_INFO_EXIT:
		rval := binary.LittleEndian.Uint64(b[siRvalOff:])
		if b[siIsErrorOff] != 0 {
			// Linux passes an error as an int (x86's
			// syscall_set_return_value()): only its low 32 bits count.
			rval = uint64(int64(int32(rval)))
		}
		r.Rax = rval
		return nil
	}
	return unix.EINVAL
}

// PeekSiginfoArgs is struct ptrace_peeksiginfo_args, PTRACE_PEEKSIGINFO's
// argument: copy Nr siginfos from position Off of the tracee's private
// queue, or of its process's shared queue with
// unix.PTRACE_PEEKSIGINFO_SHARED in Flags.
type PeekSiginfoArgs struct {
	Off   uint64
	Flags uint32
	Nr    int32
}

// PeekSiginfoArgsSize is sizeof(struct ptrace_peeksiginfo_args).
const PeekSiginfoArgsSize = 16

// DecodePeekSiginfoArgs reads the struct from b (PeekSiginfoArgsSize
// bytes) and checks it as Linux does (kernel/ptrace.c:
// ptrace_peek_siginfo()): unknown flags or a negative Nr are EINVAL.
// Linux answers 0 siginfos, not an error, for an Off past the queue.
func DecodePeekSiginfoArgs(b []byte) (PeekSiginfoArgs, error) {
	if len(b) < PeekSiginfoArgsSize {
		return PeekSiginfoArgs{}, unix.EFAULT
	}
	a := PeekSiginfoArgs{
		Off:   binary.LittleEndian.Uint64(b[0:]),
		Flags: binary.LittleEndian.Uint32(b[8:]),
		Nr:    int32(binary.LittleEndian.Uint32(b[12:])),
	}
	if a.Flags&^unix.PTRACE_PEEKSIGINFO_SHARED != 0 || a.Nr < 0 {
		return a, unix.EINVAL
	}
	return a, nil
}
