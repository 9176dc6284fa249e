package loader

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ringbox/ringbox/arch"
)

// Limits on execve(2) arguments (Linux: include/uapi/linux/binfmts.h,
// include/linux/binfmts.h, fs/exec.c:bprm_stack_limits()).
const (
	// MaxArgStrlen is MAX_ARG_STRLEN: the longest single argument or
	// environment string, NUL included (32 pages).
	MaxArgStrlen = 32 * arch.PageSize

	// argMax is ARG_MAX: strings always get at least this much room,
	// however small the stack rlimit.
	argMax = 131072

	// stkLim is _STK_LIM, the default RLIMIT_STACK (8 MiB); strings never
	// get more than three quarters of it.
	stkLim = 8 << 20

	// wordSize is sizeof(elf_addr_t) on x86-64.
	wordSize = 8
)

// AuxEntry is one auxiliary vector entry (getauxval(3)); Key is one of
// arch.AT_*.
type AuxEntry struct {
	Key, Val uint64
}

// StackArgs is what BuildStack lays out.
type StackArgs struct {
	// Argv and Envv are the argument and environment strings. An empty Argv
	// becomes {""}, as Linux (since 5.18) does for execve with argc 0. The
	// strings must not contain NUL.
	Argv, Envv []string

	// Execfn is the pathname passed to execve (bprm->filename), for
	// AT_EXECFN.
	Execfn string

	// Platform is the AT_PLATFORM string, "x86_64" on x86-64 (Linux:
	// ELF_PLATFORM, utsname()->machine); "" omits AT_PLATFORM.
	Platform string

	// Random is the 16 bytes AT_RANDOM points at (the C library's stack
	// protector and pointer guard seed): the caller fills them from a
	// random source.
	Random [16]byte

	// Auxv is the caller's part of the auxiliary vector, in Linux's order
	// (fs/binfmt_elf.c:create_elf_tables()): AT_SYSINFO_EHDR and
	// AT_MINSIGSTKSZ (ARCH_DLINFO), AT_HWCAP, AT_PAGESZ, AT_CLKTCK,
	// AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID,
	// AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_HWCAP2, then AT_EXECFD or
	// AT_RSEQ_* if any. BuildStack inserts AT_RANDOM after AT_SECURE, and
	// AT_EXECFN and AT_PLATFORM after AT_HWCAP2 (or after AT_RANDOM), and
	// ends the vector with AT_NULL; Auxv must not contain these four keys.
	Auxv []AuxEntry

	// StackLimit is the RLIMIT_STACK soft limit, which bounds the strings;
	// 0 means the default 8 MiB (_STK_LIM).
	StackLimit uint64
}

// Stack is an initial process stack, ready to be copied to [Bottom, top)
// and run with rsp = SP. All addresses are user addresses.
type Stack struct {
	// SP is the initial rsp: it points at argc and is 16-byte aligned, as
	// the x86-64 psABI requires at process entry.
	SP uint64

	// Bottom is the lowest byte written, equal to SP.
	Bottom uint64

	// Data holds the bytes of [Bottom, top).
	Data []byte

	// Argv, Envp and Auxv are the addresses of the argv pointer array, the
	// envp pointer array and the auxiliary vector.
	Argv, Envp, Auxv uint64

	// ArgStart, ArgEnd, EnvStart and EnvEnd delimit the argument and
	// environment strings, NULs included: Linux's mm->arg_start etc., which
	// /proc/PID/cmdline and /proc/PID/environ read.
	ArgStart, ArgEnd, EnvStart, EnvEnd uint64

	// Execfn, Platform and Random are the addresses of the AT_EXECFN
	// string, the AT_PLATFORM string (0 if none) and the AT_RANDOM bytes.
	Execfn, Platform, Random uint64

	// AuxvEntries is the complete auxiliary vector as written, AT_NULL
	// included: Linux's mm->saved_auxv, which /proc/PID/auxv reads.
	AuxvEntries []AuxEntry
}

// StringLimit returns how many bytes of argument, environment and execfn
// strings (NULs included) fit for the given RLIMIT_STACK soft limit (0:
// default) and number of argument and environment pointers.
// Linux: fs/exec.c:bprm_stack_limits(): a quarter of the stack limit, at
// most three quarters of _STK_LIM and at least ARG_MAX, less the space of
// the pointers; argc counts as at least 1. ok is false when the pointers
// alone do not fit.
func StringLimit(stackLimit uint64, argc, envc int) (limit uint64, ok bool) {
	if stackLimit == 0 {
		stackLimit = stkLim
	}
	limit = max(min(stkLim/4*3, stackLimit/4), argMax)
	ptrs := (uint64(max(argc, 1)) + uint64(envc)) * wordSize
	if argc < 0 || envc < 0 || limit <= ptrs {
		return 0, false
	}
	return limit - ptrs, true
}

// BuildStack lays out the initial stack of a new program below top, exactly
// as Linux's execve does (fs/exec.c and fs/binfmt_elf.c:
// create_elf_tables(); see the package documentation for the picture),
// without Linux's random offset. top must be 16-byte aligned; Linux's stack
// top is page aligned.
//
// Errors wrap ErrArgsTooLong when the strings exceed Linux's limits (the
// caller returns E2BIG).
func BuildStack(top uint64, a StackArgs) (*Stack, error) {
	if top%16 != 0 {
		return nil, fmt.Errorf("loader: stack top %#x is not 16-byte aligned", top)
	}
	argv := a.Argv
	if len(argv) == 0 {
		argv = []string{""}
	}
	strBytes, err := checkStrings(a.StackLimit, argv, a.Envv, a.Execfn)
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(a.Platform, 0) >= 0 {
		return nil, fmt.Errorf("loader: platform string %q contains NUL", a.Platform)
	}
	for _, e := range a.Auxv {
		switch e.Key {
		case arch.AT_NULL, arch.AT_RANDOM, arch.AT_EXECFN, arch.AT_PLATFORM:
			return nil, fmt.Errorf("loader: auxv key %d is placed by BuildStack, not the caller", e.Key)
		}
	}

	// An upper bound of the size, so that no address below wraps: the top
	// word, strings, two 16-byte alignments, platform, random bytes, auxv
	// with our four entries, argc and the pointer arrays.
	need := wordSize + strBytes + 15 + strlen0(a.Platform) + 16 +
		uint64(len(a.Auxv)+4)*2*wordSize + uint64(len(argv)+len(a.Envv)+3)*wordSize + 15
	if top < need {
		return nil, fmt.Errorf("loader: stack top %#x too low for an initial stack of up to %d bytes", top, need)
	}

	// Compute the addresses first, downwards from top as Linux does, to
	// allocate Data once.
	s := &Stack{}

	// fs/exec.c:__bprm_mm_init() leaves one NULL word at the very top;
	// do_execveat_common() then copies the filename, the environment and
	// the arguments, each list from its last string down.
	p := top - wordSize
	p -= strlen0(a.Execfn)
	s.Execfn = p
	s.EnvEnd = p
	for i := len(a.Envv) - 1; i >= 0; i-- {
		p -= strlen0(a.Envv[i])
	}
	s.EnvStart, s.ArgEnd = p, p
	for i := len(argv) - 1; i >= 0; i-- {
		p -= strlen0(argv[i])
	}
	s.ArgStart = p

	// create_elf_tables(): arch_align_stack() (16 bytes; Linux also
	// subtracts a random amount below 8 KiB here), the platform string,
	// then the random bytes, unaligned.
	// TODO: Linux randomizes this gap unless ADDR_NO_RANDOMIZE.
	p &^= 15
	if a.Platform != "" {
		p -= strlen0(a.Platform)
		s.Platform = p
	}
	p -= uint64(len(a.Random))
	s.Random = p

	s.AuxvEntries = arrangeAuxv(a.Auxv, s.Random, s.Execfn, s.Platform)
	p -= uint64(len(s.AuxvEntries)) * 2 * wordSize
	// argc, argv pointers and NULL, envp pointers and NULL, rounded down so
	// that rsp is 16-byte aligned (STACK_ROUND()).
	items := uint64(len(argv)+1+len(a.Envv)+1+1) * wordSize
	s.SP = (p - items) &^ 15
	s.Bottom = s.SP
	s.Argv = s.SP + wordSize
	s.Envp = s.Argv + uint64(len(argv)+1)*wordSize
	s.Auxv = s.Envp + uint64(len(a.Envv)+1)*wordSize

	// Now write it, upwards this time.
	s.Data = make([]byte, top-s.SP)
	b := &builder{data: s.Data, bottom: s.SP}
	b.word(s.SP, uint64(len(argv)))
	q := s.ArgStart
	for i, arg := range argv {
		b.word(s.Argv+uint64(i)*wordSize, q)
		q = b.str(q, arg)
	}
	q = s.EnvStart
	for i, env := range a.Envv {
		b.word(s.Envp+uint64(i)*wordSize, q)
		q = b.str(q, env)
	}
	// The NULL terminators are already zero.
	for i, e := range s.AuxvEntries {
		b.word(s.Auxv+uint64(i)*2*wordSize, e.Key)
		b.word(s.Auxv+uint64(i)*2*wordSize+wordSize, e.Val)
	}
	b.bytes(s.Random, a.Random[:])
	if a.Platform != "" {
		b.str(s.Platform, a.Platform)
	}
	b.str(s.Execfn, a.Execfn)
	return s, nil
}

// checkStrings applies Linux's execve limits to the strings
// (fs/exec.c:copy_strings(), copy_string_kernel(), valid_arg_len()) and
// returns their total size, NULs included.
func checkStrings(stackLimit uint64, argv, envv []string, execfn string) (uint64, error) {
	limit, ok := StringLimit(stackLimit, len(argv), len(envv))
	if !ok {
		return 0, fmt.Errorf("%w: %d arguments and %d environment strings", ErrArgsTooLong, len(argv), len(envv))
	}
	total := uint64(0)
	check := func(what string, i int, s string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("loader: %s[%d] contains NUL", what, i)
		}
		n := strlen0(s)
		if n > MaxArgStrlen {
			return fmt.Errorf("%w: %s[%d] is %d bytes, more than MAX_ARG_STRLEN (%d)", ErrArgsTooLong, what, i, n, MaxArgStrlen)
		}
		total += n
		return nil
	}
	if err := check("execfn", 0, execfn); err != nil {
		return 0, err
	}
	for i, s := range envv {
		if err := check("envp", i, s); err != nil {
			return 0, err
		}
	}
	for i, s := range argv {
		if err := check("argv", i, s); err != nil {
			return 0, err
		}
	}
	if total > limit {
		return 0, fmt.Errorf("%w: %d bytes of strings, limit %d", ErrArgsTooLong, total, limit)
	}
	return total, nil
}

// arrangeAuxv merges the caller's entries with the ones BuildStack owns, in
// the order of Linux's create_elf_tables().
func arrangeAuxv(caller []AuxEntry, random, execfn, platform uint64) []AuxEntry {
	out := make([]AuxEntry, 0, len(caller)+4)
	ours := func() {
		out = append(out, AuxEntry{arch.AT_EXECFN, execfn})
		if platform != 0 {
			out = append(out, AuxEntry{arch.AT_PLATFORM, platform})
		}
	}
	i := 0
	for i < len(caller) && caller[i].Key != arch.AT_SECURE {
		i++
	}
	if i == len(caller) {
		// No AT_SECURE: append ours after everything the caller gave.
		out = append(out, caller...)
		out = append(out, AuxEntry{arch.AT_RANDOM, random})
		ours()
	} else {
		out = append(out, caller[:i+1]...)
		out = append(out, AuxEntry{arch.AT_RANDOM, random})
		i++
		if i < len(caller) && caller[i].Key == arch.AT_HWCAP2 {
			out = append(out, caller[i])
			i++
		}
		ours()
		out = append(out, caller[i:]...)
	}
	return append(out, AuxEntry{arch.AT_NULL, 0})
}

// strlen0 is the size of s as a C string.
func strlen0(s string) uint64 { return uint64(len(s)) + 1 }

// builder writes words and strings at user addresses into data, which
// holds [bottom, top).
type builder struct {
	data   []byte
	bottom uint64
}

func (b *builder) word(addr, v uint64) {
	binary.LittleEndian.PutUint64(b.data[addr-b.bottom:], v)
}

func (b *builder) bytes(addr uint64, v []byte) {
	copy(b.data[addr-b.bottom:], v)
}

// str writes s and its NUL at addr and returns the address after them.
func (b *builder) str(addr uint64, s string) uint64 {
	copy(b.data[addr-b.bottom:], s)
	b.data[addr-b.bottom+uint64(len(s))] = 0
	return addr + strlen0(s)
}
