/*
 * sigframe_fp.c - the signal frame preserves the interrupted context: SSE
 * registers, MXCSR, the x87 stack, AVX upper halves and the caller-saved
 * integer registers, across a handler that clobbers them all, both for a
 * signal taken at a syscall and for one taken asynchronously in a user-mode
 * busy loop.
 *
 * Linux: arch/x86/kernel/signal.c (setup_rt_frame, restore_sigcontext),
 * arch/x86/kernel/fpu/signal.c (copy_fpstate_to_sigframe,
 * fpu__restore_sig).
 */
#include "tap.h"
#include "abi.h"
#include <stddef.h>
#include <sys/time.h>

static volatile int handled;

/* clobber overwrites every register the frame must restore. */
static void clobber(int s)
{
	(void)s;
	static const uint64_t junk[4] = { 0xdeadbeefdeadbeefULL, 0xdeadbeefdeadbeefULL,
					  0xdeadbeefdeadbeefULL, 0xdeadbeefdeadbeefULL };
	unsigned int mx = 0x7f80; /* all masked, round toward zero flag bits */
	__asm__ volatile(
		"movdqu (%0), %%xmm0\n movdqu (%0), %%xmm1\n movdqu (%0), %%xmm2\n"
		"movdqu (%0), %%xmm3\n movdqu (%0), %%xmm4\n movdqu (%0), %%xmm5\n"
		"movdqu (%0), %%xmm6\n movdqu (%0), %%xmm7\n movdqu (%0), %%xmm8\n"
		"movdqu (%0), %%xmm9\n movdqu (%0), %%xmm10\n movdqu (%0), %%xmm11\n"
		"movdqu (%0), %%xmm12\n movdqu (%0), %%xmm13\n movdqu (%0), %%xmm14\n"
		"movdqu (%0), %%xmm15\n"
		"ldmxcsr (%1)\n"
		"fninit\n fld1\n fldpi\n fldz\n"
		"mov $0x1111, %%r8\n mov $0x2222, %%r9\n mov $0x3333, %%r10\n"
		:
		: "r"(junk), "r"(&mx)
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
		  "xmm15", "r8", "r9", "r10", "memory", "st", "st(1)", "st(2)");
	handled++;
}

static int has_avx(void)
{
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if (!(c & (1u << 28)) || !(c & (1u << 27)))
		return 0;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

static void clobber_avx(int s)
{
	clobber(s);
	__asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n vmovdqa %%ymm0, %%ymm7\n vmovdqa %%ymm0, %%ymm15\n"
			 ::: "xmm0", "xmm7", "xmm15");
}

/* One block so the asm needs a single base register; the offsets used in
 * the asm strings are checked below with _Static_assert. */
struct fpblock {
	uint64_t in[32];     /* 0 */
	uint64_t out[32];    /* 256 */
	unsigned mxin;       /* 512 */
	unsigned mxout;      /* 516 */
	long double x87in;   /* 528 */
	long double x87out;  /* 544 */
	uint64_t gpr[3];     /* 560 */
};
_Static_assert(offsetof(struct fpblock, out) == 256, "out");
_Static_assert(offsetof(struct fpblock, mxin) == 512, "mxin");
_Static_assert(offsetof(struct fpblock, mxout) == 516, "mxout");
_Static_assert(offsetof(struct fpblock, x87in) == 528, "x87in");
_Static_assert(offsetof(struct fpblock, x87out) == 544, "x87out");
_Static_assert(offsetof(struct fpblock, gpr) == 560, "gpr");
static struct fpblock B = { .x87in = 3.25L, .mxin = 0x1f80 | (3u << 13) }; /* RC toward zero */
#define in_xmm B.in
#define out_xmm B.out
#define in_x87 B.x87in
#define out_x87 B.x87out
#define in_mxcsr B.mxin
#define out_mxcsr B.mxout
#define out_gpr B.gpr

/* sync_case: load everything, take the signal on the return from tgkill,
 * store everything. */
static void sync_case(pid_t pid, pid_t tid)
{
	__asm__ volatile(
		"movdqu 0(%[b]), %%xmm0\n movdqu 16(%[b]), %%xmm1\n movdqu 32(%[b]), %%xmm2\n"
		"movdqu 48(%[b]), %%xmm3\n movdqu 64(%[b]), %%xmm4\n movdqu 80(%[b]), %%xmm5\n"
		"movdqu 96(%[b]), %%xmm6\n movdqu 112(%[b]), %%xmm7\n movdqu 128(%[b]), %%xmm8\n"
		"movdqu 144(%[b]), %%xmm9\n movdqu 160(%[b]), %%xmm10\n movdqu 176(%[b]), %%xmm11\n"
		"movdqu 192(%[b]), %%xmm12\n movdqu 208(%[b]), %%xmm13\n movdqu 224(%[b]), %%xmm14\n"
		"movdqu 240(%[b]), %%xmm15\n"
		"ldmxcsr 512(%[b])\n"
		"fninit\n fldt 528(%[b])\n"
		"mov $0xa8a8a8a8a8a8, %%r8\n mov $0xa9a9a9a9a9a9, %%r9\n mov $0xa10a10a10a10, %%r10\n"
		"mov %[pid], %%edi\n mov %[tid], %%esi\n mov $10, %%edx\n mov $234, %%eax\n"
		"syscall\n"
		"movdqu %%xmm0, 256(%[b])\n movdqu %%xmm1, 272(%[b])\n movdqu %%xmm2, 288(%[b])\n"
		"movdqu %%xmm3, 304(%[b])\n movdqu %%xmm4, 320(%[b])\n movdqu %%xmm5, 336(%[b])\n"
		"movdqu %%xmm6, 352(%[b])\n movdqu %%xmm7, 368(%[b])\n movdqu %%xmm8, 384(%[b])\n"
		"movdqu %%xmm9, 400(%[b])\n movdqu %%xmm10, 416(%[b])\n movdqu %%xmm11, 432(%[b])\n"
		"movdqu %%xmm12, 448(%[b])\n movdqu %%xmm13, 464(%[b])\n movdqu %%xmm14, 480(%[b])\n"
		"movdqu %%xmm15, 496(%[b])\n"
		"stmxcsr 516(%[b])\n"
		"fstpt 544(%[b])\n"
		"mov %%r8, 560(%[b])\n mov %%r9, 568(%[b])\n mov %%r10, 576(%[b])\n"
		:
		: [b] "r"(&B), [pid] "r"(pid), [tid] "r"(tid)
		: "rax", "rdi", "rsi", "rdx", "rcx", "r11", "r8", "r9", "r10", "memory",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st");
}

/* async_case: load, spin in user mode until the timer's handler has run
 * (bounded by a loop count), store. Returns 1 if the signal came. */
static int async_case(void)
{
	long spins = 4000L * 1000 * 1000;
	__asm__ volatile(
		"movdqu 0(%[b]), %%xmm0\n movdqu 16(%[b]), %%xmm1\n movdqu 240(%[b]), %%xmm15\n"
		"ldmxcsr 512(%[b])\n"
		"fninit\n fldt 528(%[b])\n"
		"mov $0xa8a8a8a8a8a8, %%r8\n mov $0xa9a9a9a9a9a9, %%r9\n mov $0xa10a10a10a10, %%r10\n"
		"1: cmpl $0, (%[flag])\n jne 2f\n dec %[spins]\n jnz 1b\n"
		"2:\n"
		"movdqu %%xmm0, 256(%[b])\n movdqu %%xmm1, 272(%[b])\n movdqu %%xmm15, 496(%[b])\n"
		"stmxcsr 516(%[b])\n"
		"fstpt 544(%[b])\n"
		"mov %%r8, 560(%[b])\n mov %%r9, 568(%[b])\n mov %%r10, 576(%[b])\n"
		: [spins] "+r"(spins)
		: [b] "r"(&B), [flag] "r"(&handled)
		: "r8", "r9", "r10", "memory", "xmm0", "xmm1", "xmm15", "st");
	return handled != 0;
}

static int avx_case(pid_t pid, pid_t tid)
{
	uint64_t in[4] = { 0x0101010101010101ULL, 0x0202020202020202ULL,
			   0x0303030303030303ULL, 0x0404040404040404ULL };
	uint64_t out[4] = { 0 };
	__asm__ volatile(
		"vmovdqu (%[in]), %%ymm7\n"
		"mov %[pid], %%edi\n mov %[tid], %%esi\n mov $10, %%edx\n mov $234, %%eax\n"
		"syscall\n"
		"vmovdqu %%ymm7, (%[out])\n vzeroupper\n"
		:
		: [in] "r"(in), [out] "r"(out), [pid] "r"(pid), [tid] "r"(tid)
		: "rax", "rdi", "rsi", "rdx", "rcx", "r11", "memory", "xmm7");
	return memcmp(in, out, sizeof in) == 0;
}

static void reset_out(void)
{
	memset(out_xmm, 0, sizeof out_xmm);
	memset(out_gpr, 0, sizeof out_gpr);
	out_x87 = 0;
	out_mxcsr = 0;
}

int main(void)
{
	tap_init();
	for (int i = 0; i < 32; i++)
		in_xmm[i] = 0x0123456789abcdefULL * (uint64_t)(i + 1);
	signal(SIGUSR1, clobber);

	reset_out();
	handled = 0;
	sync_case(getpid(), sys_gettid());
	check_eq(handled, 1, "sync: handler ran on the syscall return");
	ok(memcmp(in_xmm, out_xmm, sizeof out_xmm) == 0, "sync: xmm0-xmm15 preserved across the handler");
	check_eq(out_mxcsr, in_mxcsr, "sync: MXCSR preserved");
	ok(out_x87 == in_x87, "sync: x87 st(0) preserved");
	ok(out_gpr[0] == 0xa8a8a8a8a8a8ULL && out_gpr[1] == 0xa9a9a9a9a9a9ULL && out_gpr[2] == 0xa10a10a10a10ULL,
	   "sync: r8-r10 preserved");

	/* Asynchronous: an interval timer interrupts the spin loop. */
	struct sigaction sa = { 0 };
	sa.sa_handler = clobber;
	sigaction(SIGALRM, &sa, NULL);
	reset_out();
	handled = 0;
	struct itimerval it = { { 0, 0 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	int got = async_case();
	ok(got, "async: timer signal interrupts a user-mode busy loop");
	ok(out_xmm[0] == in_xmm[0] && out_xmm[1] == in_xmm[1] && out_xmm[2] == in_xmm[2] &&
		   out_xmm[3] == in_xmm[3] && out_xmm[30] == in_xmm[30] && out_xmm[31] == in_xmm[31],
	   "async: xmm0, xmm1, xmm15 preserved");
	check_eq(out_mxcsr, in_mxcsr, "async: MXCSR preserved");
	ok(out_x87 == in_x87, "async: x87 st(0) preserved");
	ok(out_gpr[0] == 0xa8a8a8a8a8a8ULL && out_gpr[1] == 0xa9a9a9a9a9a9ULL && out_gpr[2] == 0xa10a10a10a10ULL,
	   "async: r8-r10 preserved");
	tap_watchdog();

	if (has_avx()) {
		signal(SIGUSR1, clobber_avx);
		ok(avx_case(getpid(), sys_gettid()), "AVX: ymm7 upper half preserved");
	} else {
		skip("no AVX", "AVX: ymm7 upper half preserved");
	}

	/* The handler's own FP changes do not leak out. */
	signal(SIGUSR1, clobber);
	unsigned dflt = 0x1f80; /* the cases above left round-toward-zero set */
	__asm__ volatile("ldmxcsr %0" ::"m"(dflt));
	volatile double x = 1.0 / 3.0;
	kill(getpid(), SIGUSR1);
	volatile double y = x * 3.0;
	ok(y == 1.0, "FP arithmetic after the handler uses the restored rounding");
	return tap_done();
}
