package loader

import "github.com/ringbox/ringbox/arch"

// ExecAuxv holds the auxiliary vector values that execve's caller knows
// (the image, the credentials, the CPU), so that Entries can put them in
// the order of Linux's fs/binfmt_elf.c:create_elf_tables() for
// StackArgs.Auxv. BuildStack adds AT_RANDOM, AT_EXECFN, AT_PLATFORM and
// AT_NULL.
type ExecAuxv struct {
	// SysinfoEhdr is AT_SYSINFO_EHDR, the address of the vDSO's ELF
	// header; 0 omits the entry, as Linux does without a vDSO.
	SysinfoEhdr uint64

	// MinSigStkSz is AT_MINSIGSTKSZ, the signal frame size for this CPU's
	// XSAVE features (Linux: get_sigframe_size()); 0 omits the entry.
	// TODO: Linux on x86-64 always passes it; the C library then sizes
	// sysconf(_SC_MINSIGSTKSZ) from it.
	MinSigStkSz uint64

	// HWCap and HWCap2 are AT_HWCAP (CPUID leaf 1 EDX on x86) and AT_HWCAP2
	// (HWCAP2_RING3MWAIT, HWCAP2_FSGSBASE).
	HWCap, HWCap2 uint64

	// ClkTck is AT_CLKTCK, USER_HZ: 100 on x86.
	ClkTck uint64

	// Phdr, Phent and Phnum describe the program headers in memory
	// (Image.PhdrVaddr plus the bias, Image.Phentsize, Image.Phnum).
	Phdr, Phent, Phnum uint64

	// Base is AT_BASE, the interpreter's load address; 0 without one.
	Base uint64

	// Flags is AT_FLAGS (AT_FLAGS_PRESERVE_ARGV0 for binfmt_misc only).
	Flags uint64

	// Entry is AT_ENTRY, the program's entry point (Image.Entry plus the
	// bias), even when an interpreter runs first.
	Entry uint64

	// UID, EUID, GID and EGID are the credentials after execve.
	UID, EUID, GID, EGID uint64

	// Secure is AT_SECURE: the program gained privilege (set-user-ID and
	// the like), which makes the C library ignore LD_* variables.
	Secure bool

	// Extra entries come after AT_PLATFORM: AT_EXECFD, then
	// AT_RSEQ_FEATURE_SIZE and AT_RSEQ_ALIGN on Linux 6.3 and later.
	Extra []AuxEntry
}

// Entries returns the entries in Linux's order.
func (x *ExecAuxv) Entries() []AuxEntry {
	var v []AuxEntry
	add := func(key, val uint64) { v = append(v, AuxEntry{key, val}) }
	// ARCH_DLINFO (arch/x86/include/asm/elf.h).
	if x.SysinfoEhdr != 0 {
		add(arch.AT_SYSINFO_EHDR, x.SysinfoEhdr)
	}
	if x.MinSigStkSz != 0 {
		add(arch.AT_MINSIGSTKSZ, x.MinSigStkSz)
	}
	add(arch.AT_HWCAP, x.HWCap)
	add(arch.AT_PAGESZ, arch.PageSize)
	add(arch.AT_CLKTCK, x.ClkTck)
	add(arch.AT_PHDR, x.Phdr)
	add(arch.AT_PHENT, x.Phent)
	add(arch.AT_PHNUM, x.Phnum)
	add(arch.AT_BASE, x.Base)
	add(arch.AT_FLAGS, x.Flags)
	add(arch.AT_ENTRY, x.Entry)
	add(arch.AT_UID, x.UID)
	add(arch.AT_EUID, x.EUID)
	add(arch.AT_GID, x.GID)
	add(arch.AT_EGID, x.EGID)
	secure := uint64(0)
	if x.Secure {
		secure = 1
	}
	add(arch.AT_SECURE, secure)
	// BuildStack puts AT_RANDOM here.
	add(arch.AT_HWCAP2, x.HWCap2)
	// BuildStack puts AT_EXECFN and AT_PLATFORM here.
	return append(v, x.Extra...)
}
