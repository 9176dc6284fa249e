package arch

// CPUID executes the CPUID instruction (no system call) for leaf and
// subleaf on the host processor.
func CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// HWCap returns the value Linux puts in AT_HWCAP on x86-64: the EDX word
// of CPUID leaf 1 (Linux: arch/x86/include/asm/elf.h ELF_HWCAP).
func HWCap() uint64 {
	_, _, _, edx := CPUID(1, 0)
	return uint64(edx)
}

// XCR0 returns the host's extended control register 0: the XSAVE
// features the operating system enabled for user state. The processor
// must support XSAVE (every x86-64 CPU ringbox runs on does: the platforms
// check CPUID.1:ECX.OSXSAVE).
func XCR0() uint64
