/*
 * fpu.c - the program's floating-point and vector state survives the
 * kernel: XMM0-15 across a system call and across a page fault, the YMM
 * upper halves across a system call (when the CPU and OS have AVX), and
 * the x87 control word and MXCSR across a system call. A kernel that runs
 * its own code (or another task) on the same CPU must save and restore
 * what it clobbers. - Linux: arch/x86/kernel/fpu/core.c
 *
 * The lines printed do not depend on the CPU: a check that the CPU cannot
 * run passes silently, with the reason on stderr, because the native host
 * and the sandbox's virtual CPU may differ in AVX.
 */
#include "tap.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static unsigned char in[16][32] __attribute__((aligned(32)));
static unsigned char out[16][32] __attribute__((aligned(32)));

/* pattern fills in[] with bytes that differ per register and lane. */
static void pattern(int seed)
{
	for (int r = 0; r < 16; r++)
		for (int i = 0; i < 32; i++)
			in[r][i] = (unsigned char)(seed + r * 37 + i * 11);
	memset(out, 0, sizeof out);
}

#define XMM_LOAD(n) "movdqa " #n "*32(%[in]), %%xmm" #n "\n\t"
#define XMM_STORE(n) "movdqa %%xmm" #n ", " #n "*32(%[out])\n\t"
#define YMM_LOAD(n) "vmovdqa " #n "*32(%[in]), %%ymm" #n "\n\t"
#define YMM_STORE(n) "vmovdqa %%ymm" #n ", " #n "*32(%[out])\n\t"
#define ALL16(m) m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9) m(10) \
	m(11) m(12) m(13) m(14) m(15)
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", \
	"xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", \
	"xmm15"

/* xmm_syscall loads XMM0-15, issues getppid, and stores them. */
static void xmm_syscall(void)
{
	long nr = SYS_getppid;

	__asm__ volatile(ALL16(XMM_LOAD) "syscall\n\t" ALL16(XMM_STORE)
			 : "+a"(nr)
			 : [in] "r"(in), [out] "r"(out)
			 : "rcx", "r11", "memory", XMM_CLOBBERS);
}

/* xmm_fault loads XMM0-15, writes to a page never touched before (a page
 * fault the kernel services), and stores them. */
static void xmm_fault(volatile char *fresh)
{
	__asm__ volatile(ALL16(XMM_LOAD) "movb $1, (%[p])\n\t" ALL16(XMM_STORE)
			 :
			 : [in] "r"(in), [out] "r"(out), [p] "r"(fresh)
			 : "memory", XMM_CLOBBERS);
}

/* ymm_syscall is xmm_syscall on the full 256-bit registers. */
static void ymm_syscall(void)
{
	long nr = SYS_getppid;

	__asm__ volatile(ALL16(YMM_LOAD) "syscall\n\t" ALL16(YMM_STORE)
			 "vzeroupper\n\t"
			 : "+a"(nr)
			 : [in] "r"(in), [out] "r"(out)
			 : "rcx", "r11", "memory", XMM_CLOBBERS);
}

/* same compares the first n bytes of each register's in and out. */
static int same(int n)
{
	for (int r = 0; r < 16; r++)
		if (memcmp(in[r], out[r], n) != 0)
			return 0;
	return 1;
}

int main(void)
{
	tap_init();

	pattern(1);
	xmm_syscall();
	ok(same(16), "XMM0-15 survive a system call");

	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		ok(0, "mmap a page to fault on");
	} else {
		pattern(2);
		xmm_fault(p);
		ok(same(16) && p[0] == 1, "XMM0-15 survive a page fault");
		munmap(p, 4096);
	}

	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx")) {
		pattern(3);
		ymm_syscall();
		ok(same(32), "YMM0-15 survive a system call");
	} else {
		fprintf(stderr, "fpu: no AVX, YMM check not run\n");
		ok(1, "YMM0-15 survive a system call");
	}

	/* Round toward zero and all exceptions masked: not the default. */
	uint16_t cw = 0x0f7f, cw_out = 0;
	uint32_t mxcsr = 0x7f80 | 0x6000, mxcsr_out = 0, mxcsr_saved;
	long nr = SYS_getppid;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_saved));
	__asm__ volatile("fldcw %[cw]\n\t"
			 "ldmxcsr %[mx]\n\t"
			 "syscall\n\t"
			 "fnstcw %[cwo]\n\t"
			 "stmxcsr %[mxo]\n\t"
			 "ldmxcsr %[saved]\n\t"
			 "fninit"
			 : "+a"(nr), [cwo] "=m"(cw_out), [mxo] "=m"(mxcsr_out)
			 : [cw] "m"(cw), [mx] "m"(mxcsr), [saved] "m"(mxcsr_saved)
			 : "rcx", "r11", "memory");
	check_eq(cw_out, cw, "the x87 control word survives a system call");
	check_eq(mxcsr_out, mxcsr, "MXCSR survives a system call");

	/* And the compiler's own floating point, for good measure. */
	volatile double x = 1.0;
	for (int i = 0; i < 100; i++) {
		x = x * 1.5 + (double)syscall(SYS_getppid) * 0.0;
	}
	ok(x > 4.0e17 && x < 4.1e17, "double arithmetic across system calls");
	return tap_done();
}
