// Package loader reads the ELF headers of an executable and lays out the
// initial stack of a new program, the two halves of Linux's execve(2) that
// depend on neither the kernel's state nor the platform: the kernel's execve
// and the sandbox start-up both use it. It imports only arch and the
// standard library.
//
// # ELF
//
// Parse accepts x86-64 ELF64 little-endian ET_EXEC and ET_DYN files, with
// the checks of Linux's fs/binfmt_elf.c:load_elf_binary() and stricter ones
// for files Linux would load wrongly (see Parse). The Image it returns keeps
// link-time addresses; Image.Bias chooses where an ET_DYN image goes, as
// Linux does without randomization:
//
//	ET_EXEC                    bias 0, the addresses in the file
//	ET_DYN with PT_INTERP      ELF_ET_DYN_BASE (2/3 of the 47-bit space)
//	ET_DYN without PT_INTERP   right below mmap_base (the mmap area),
//	(static-PIE, ld.so)        with its brk at ELF_ET_DYN_BASE (Image.Brk)
//
// Failures wrap ErrNotELF, ErrWrongArch or ErrBadELF with what was found; a
// program with PT_INTERP parses, and Image.RequireStatic refuses it with
// ErrDynamic until ringbox loads interpreters.
//
// # Initial stack
//
// BuildStack writes what a program finds at its entry point, exactly as
// Linux's fs/exec.c (the strings) and fs/binfmt_elf.c:create_elf_tables()
// (the rest) lay it out, less the random gap Linux leaves unless the
// personality has ADDR_NO_RANDOMIZE. From the top (high addresses) down:
//
//	top ->  +--------------------------------+  page aligned
//	        | 0 (8 bytes)                    |  __bprm_mm_init()
//	        | execfn "/path/prog\0"          |  AT_EXECFN, bprm->filename
//	        | envp strings "K=V\0" ...       |  EnvStart..EnvEnd
//	        | argv strings "arg\0" ...       |  ArgStart..ArgEnd
//	        | 0..15 bytes                    |  arch_align_stack()
//	        | "x86_64\0"                     |  AT_PLATFORM
//	        | 16 random bytes                |  AT_RANDOM (unaligned)
//	        | 0, 8, 16 or 24 bytes           |  padding to align rsp
//	        | AT_NULL, 0                     |
//	        | key, value ...                 |  Auxv: auxiliary vector
//	        | NULL                           |
//	        | envp[envc-1] ... envp[0]       |  Envp
//	        | NULL                           |
//	        | argv[argc-1] ... argv[0]       |  Argv
//	rsp ->  | argc                           |  SP = Bottom, 16-byte aligned
//	        +--------------------------------+
//
// The strings are copied in the order execve copies them: the filename
// first, at the top, then the environment and then the arguments, each list
// from its last string down, so that in memory they read in order upwards.
// The auxiliary vector's order is create_elf_tables()'s: the caller passes
// its entries in that order and BuildStack inserts AT_RANDOM after
// AT_SECURE, and AT_EXECFN and AT_PLATFORM after AT_HWCAP2. On Linux 6.18
// the whole vector reads:
//
//	AT_SYSINFO_EHDR AT_MINSIGSTKSZ AT_HWCAP AT_PAGESZ AT_CLKTCK AT_PHDR
//	AT_PHENT AT_PHNUM AT_BASE AT_FLAGS AT_ENTRY AT_UID AT_EUID AT_GID
//	AT_EGID AT_SECURE AT_RANDOM AT_HWCAP2 AT_EXECFN AT_PLATFORM
//	AT_RSEQ_FEATURE_SIZE AT_RSEQ_ALIGN AT_NULL
//
// The limits are Linux's (fs/exec.c:bprm_stack_limits()): each string at
// most MAX_ARG_STRLEN (32 pages) with its NUL; all strings, the filename
// included, plus one pointer per argument and environment string, at most a
// quarter of RLIMIT_STACK, capped at 6 MiB and at least ARG_MAX (128 KiB).
// Beyond them BuildStack fails with ErrArgsTooLong, which execve returns as
// E2BIG.
//
// The tests check both halves against Linux itself: Parse against
// debug/elf and readelf on binaries built with gcc and musl-gcc, and
// BuildStack byte for byte against the stack a freestanding probe program
// (testdata/stackprobe.c) finds at its entry.
package loader
