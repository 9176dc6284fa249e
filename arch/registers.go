package arch

// Registers is the general register file of a thread, laid out exactly as
// Linux's struct user_regs_struct (arch/x86/include/asm/user_64.h), which is
// what PTRACE_GETREGS, NT_PRSTATUS and the ptrace platform exchange. The
// layout is checked against golang.org/x/sys/unix.PtraceRegs by a test.
type Registers struct {
	R15     uint64
	R14     uint64
	R13     uint64
	R12     uint64
	Rbp     uint64
	Rbx     uint64
	R11     uint64
	R10     uint64
	R9      uint64
	R8      uint64
	Rax     uint64
	Rcx     uint64
	Rdx     uint64
	Rsi     uint64
	Rdi     uint64
	OrigRax uint64
	Rip     uint64
	Cs      uint64
	Eflags  uint64
	Rsp     uint64
	Ss      uint64
	FsBase  uint64
	GsBase  uint64
	Ds      uint64
	Es      uint64
	Fs      uint64
	Gs      uint64
}

// Segment selectors of a 64-bit user thread, as Linux sets them
// (arch/x86/include/asm/segment.h: __USER_CS, __USER_DS). Both platforms
// report these values so that ptrace users see what Linux shows.
const (
	UserCS = 0x33
	UserDS = 0x2b
)

// RFLAGS bits used by the kernel and the platforms.
const (
	FlagCF       = 1 << 0
	FlagReserved = 1 << 1 // always one
	FlagTF       = 1 << 8
	FlagIF       = 1 << 9
	FlagDF       = 1 << 10
	FlagRF       = 1 << 16
	FlagAC       = 1 << 18
	FlagID       = 1 << 21

	// UserFlagsMask are the flags a user (sigreturn, ptrace) may change
	// (Linux: arch/x86/kernel/signal.c FIX_EFLAGS plus TF).
	UserFlagsMask = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x200000 | 0x80000 | 0x100000 | 0x4000 | 0x3000
)

// SyscallNo is the system call number of a syscall event (RAX at entry,
// preserved in OrigRax as Linux does).
func (r *Registers) SyscallNo() uint64 { return r.OrigRax }

// SyscallArgs returns the six system call arguments in ABI order
// (rdi, rsi, rdx, r10, r8, r9) - syscall(2).
func (r *Registers) SyscallArgs() [6]uint64 {
	return [6]uint64{r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9}
}

// SetReturn stores a system call's return value.
func (r *Registers) SetReturn(v uint64) { r.Rax = v }

// IsCanonical reports whether addr is a canonical 48-bit address.
func IsCanonical(addr uint64) bool {
	top := addr >> 47
	return top == 0 || top == 0x1ffff
}
