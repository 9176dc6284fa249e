package loader

import (
	"debug/elf"

	"github.com/ringbox/ringbox/arch"
)

// ELFETDynBase is where Linux loads an ET_DYN program that has an
// interpreter (a PIE), before randomization: two thirds of the 47-bit user
// address space (Linux: arch/x86/include/asm/elf.h:ELF_ET_DYN_BASE =
// DEFAULT_MAP_WINDOW / 3 * 2, with DEFAULT_MAP_WINDOW = (1<<47) - PAGE_SIZE).
// It is also where the brk area of a static-PIE program starts, out of the
// way of the mmap area where the program itself is loaded.
const ELFETDynBase = arch.MaxUserAddress / 3 * 2

// Bounds returns the page-aligned range [lo, hi) covering every segment, at
// link-time addresses (add Bias for ET_DYN).
func (img *Image) Bounds() (lo, hi uint64) {
	first, last := img.Segments[0], img.Segments[len(img.Segments)-1]
	// Parse checked that last.End() <= arch.MaxUserAddress, which is page
	// aligned, so rounding up cannot overflow.
	hi, _ = arch.PageRoundUp(last.End())
	return arch.PageRoundDown(first.Vaddr), hi
}

// Bias returns the load bias: the amount added to every link-time address of
// the image (segments, entry, PhdrVaddr) to get its address in memory. It is
// 0 for ET_EXEC. mmapBase is the top of the address space's mmap area
// (mm->mmap_base, below the stack gap), which the caller has not used yet.
//
// For ET_DYN, Linux (fs/binfmt_elf.c:load_elf_binary(), since 4.13) puts
//   - a program with PT_INTERP (a PIE) at ELF_ET_DYN_BASE;
//   - a program without PT_INTERP (static-PIE, or ld.so run directly) in the
//     mmap area: mmap with a hint of 0 places the whole image, top-down,
//     right below mmapBase.
//
// Both are aligned to the largest PT_LOAD p_align (Linux 6.10 and later
// also for the second case). Measured on Linux 6.18 with ASLR off (setarch
// -R): a gcc -static-pie binary of 0xb8000 bytes loads at 0x7ffff7f47000,
// just below mmap_base 0x7ffff7fff000.
//
// TODO: Linux randomizes both (arch_mmap_rnd(), and the randomized
// mmap_base); ringbox places images deterministically, like Linux with
// ADDR_NO_RANDOMIZE.
func (img *Image) Bias(mmapBase uint64) uint64 {
	if img.Type != elf.ET_DYN {
		return 0
	}
	lo, hi := img.Bounds()
	span := hi - lo
	var base uint64
	if img.Interp == "" && mmapBase >= span && mmapBase <= arch.MaxUserAddress {
		base = arch.PageRoundDown(mmapBase - span)
	} else {
		// A PIE; or an image that does not fit below mmapBase, for which
		// Linux's top-down search would fall back to a bottom-up one. The
		// ELF_ET_DYN_BASE area is free in either case.
		base = ELFETDynBase
	}
	base &^= img.Align - 1
	// Linux: load_bias = ELF_PAGESTART(load_bias - vaddr) of the first
	// PT_LOAD. The subtraction wraps for images linked above base, which
	// is what the addition of the bias needs.
	return arch.PageRoundDown(base - lo)
}

// Brk returns where the program's brk area starts (mm->start_brk) for the
// given bias: after the highest segment, or, for a program without
// PT_INTERP loaded as ET_DYN, at ELF_ET_DYN_BASE, where the mmap area cannot
// collide with it (Linux: fs/binfmt_elf.c:load_elf_binary(); measured on
// Linux 6.18: a static-PIE's heap starts at 0x555555555000 with ASLR off).
//
// TODO: Linux randomizes the brk start (arch_randomize_brk()) and, when it
// does, leaves a page gap after .bss; ringbox does neither.
func (img *Image) Brk(bias uint64) uint64 {
	if img.Type == elf.ET_DYN && img.Interp == "" {
		b, _ := arch.PageRoundUp(ELFETDynBase)
		return b
	}
	_, hi := img.Bounds()
	return hi + bias
}
