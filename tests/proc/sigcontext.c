/*
 * sigcontext.c - the ucontext a SA_SIGINFO handler receives, and what
 * rt_sigreturn takes back from it: RIP, the trap number and page-fault
 * error code, general registers, the saved signal mask, and the FXSAVE
 * area (xmm, MXCSR). Handlers change each of them and the interrupted code
 * checks that the change took effect. Also nested delivery: a handler
 * interrupted by another signal, and SA_NODEFER recursion.
 *
 * Linux: arch/x86/kernel/signal_64.c (setup_rt_frame, sys_rt_sigreturn),
 * arch/x86/kernel/signal.c, arch/x86/include/uapi/asm/sigcontext.h. The
 * FXSAVE layout is spelled here (struct fx) so glibc and musl read it the
 * same way.
 */
#include "tap.h"
#include "abi.h"
#include <sys/mman.h>
#include <ucontext.h>

/* Linux: arch/x86/include/uapi/asm/sigcontext.h struct _fpstate_64. */
struct fx {
	uint16_t cwd, swd, twd, fop;
	uint64_t rip, rdp;
	uint32_t mxcsr, mxcsr_mask;
	uint32_t st_space[32];
	uint32_t xmm_space[64];
	uint32_t reserved2[12];
	uint32_t reserved3[12];
};

extern char ud2_at[], after_ud2[], store_at[], after_store[], load_at[], after_load[];
static char *volatile resume_at; /* where on_segv resumes */
static volatile uint64_t seen_rip, seen_trapno, seen_err, seen_xmm0;
static volatile int handled;

static void on_ill(int s, siginfo_t *si, void *v)
{
	(void)s;
	ucontext_t *uc = v;
	struct fx *fp = (struct fx *)uc->uc_mcontext.fpregs;
	seen_rip = uc->uc_mcontext.gregs[REG_RIP];
	seen_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
	memcpy((void *)&seen_xmm0, &fp->xmm_space[0], 8);
	/* Resume after the ud2, with rax changed, xmm1 changed, and SIGUSR2
	 * added to the mask that sigreturn restores. */
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)after_ud2;
	uc->uc_mcontext.gregs[REG_RAX] = 0x1234abcd;
	uint64_t nx1[2] = { 0x1111222233334444ULL, 0x5555666677778888ULL };
	memcpy(&fp->xmm_space[4], nx1, 16);
	sigaddset(&uc->uc_sigmask, SIGUSR2);
	handled = (si->si_addr == (void *)ud2_at);
}

static void on_segv(int s, siginfo_t *si, void *v)
{
	(void)s;
	(void)si;
	ucontext_t *uc = v;
	seen_rip = uc->uc_mcontext.gregs[REG_RIP];
	seen_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
	seen_err = uc->uc_mcontext.gregs[REG_ERR];
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)resume_at;
	handled = 1;
}

/* Nested delivery bookkeeping. */
static volatile int trace[8], ntrace, depth;
static void on_nest(int s)
{
	if (ntrace < 8)
		trace[ntrace++] = s;
	if (s == SIGUSR1)
		kill(getpid(), SIGUSR2); /* delivered inside this handler */
	if (ntrace < 8)
		trace[ntrace++] = -s;
}
static void on_recurse(int s)
{
	(void)s;
	depth++;
	if (depth < 3)
		kill(getpid(), SIGUSR1); /* SA_NODEFER: re-enters at once */
}

int main(void)
{
	tap_init();
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_ill;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGILL, &sa, NULL);

	uint64_t in0[2] = { 0xfeedfacecafebeefULL, 0x0123456789abcdefULL }, out1[2] = { 0, 0 };
	uint64_t rax = 0;
	__asm__ volatile("movdqu (%[in0]), %%xmm0\n"
			 "pxor %%xmm1, %%xmm1\n"
			 "xor %%eax, %%eax\n"
			 ".globl ud2_at\nud2_at: ud2\n"
			 "mov $0xbad, %%eax\n" /* skipped by the handler */
			 ".globl after_ud2\nafter_ud2:\n"
			 "movdqu %%xmm1, (%[out1])\n"
			 : "=&a"(rax)
			 : [in0] "r"(in0), [out1] "r"(out1)
			 : "xmm0", "xmm1", "memory");
	check_eq(handled, 1, "SIGILL handler ran, si_addr is the ud2");
	ok(seen_rip == (uint64_t)ud2_at, "uc_mcontext RIP is the faulting ud2");
	check_eq(seen_trapno, 6, "REG_TRAPNO 6 (#UD)");
	ok(seen_xmm0 == in0[0], "the frame's FXSAVE area holds the interrupted xmm0");
	check_eq(rax, 0x1234abcd, "RIP and RAX changed by the handler take effect on return");
	ok(out1[0] == 0x1111222233334444ULL && out1[1] == 0x5555666677778888ULL, "xmm1 changed in the frame is restored");
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check_eq(sigismember(&cur, SIGUSR2), 1, "uc_sigmask changed by the handler becomes the mask");
	sigprocmask(SIG_UNBLOCK, &cur, NULL);

	/* A write to a read-only page: #PF with error code bits. */
	sa.sa_sigaction = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Read it first so the page is present (the zero page): the write
	 * then faults on a present page. */
	check_eq(*(volatile char *)ro, 0, "read-only page reads as zero");
	handled = 0;
	resume_at = after_store;
	__asm__ volatile(".globl store_at\nstore_at: movb $1, (%0)\n"
			 ".globl after_store\nafter_store:\n" ::"r"(ro)
			 : "memory");
	check_eq(handled, 1, "SIGSEGV handler ran for the store");
	ok(seen_rip == (uint64_t)store_at, "uc_mcontext RIP is the faulting store");
	check_eq(seen_trapno, 14, "REG_TRAPNO 14 (#PF)");
	ok((seen_err & 7) == 7, "REG_ERR: present, write, user (7)");
	munmap(ro, 4096);

	/* A read of an unmapped page. */
	char *gone = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(gone, 4096);
	handled = 0;
	resume_at = after_load;
	__asm__ volatile(".globl load_at\nload_at: movb (%0), %%al\n"
			 ".globl after_load\nafter_load:\n" ::"r"(gone)
			 : "rax", "memory");
	check_eq(handled, 1, "SIGSEGV for a read of an unmapped page");
	ok(seen_rip == (uint64_t)load_at, "uc_mcontext RIP is the faulting load");
	ok((seen_err & 7) == 4, "REG_ERR: not present, read, user (4)");

	/* Nested: SIGUSR2 arrives inside the SIGUSR1 handler. */
	struct sigaction sn = { 0 };
	sn.sa_handler = on_nest;
	sigaction(SIGUSR1, &sn, NULL);
	sigaction(SIGUSR2, &sn, NULL);
	ntrace = 0;
	kill(getpid(), SIGUSR1);
	ok(ntrace == 4 && trace[0] == SIGUSR1 && trace[1] == SIGUSR2 && trace[2] == -SIGUSR2 && trace[3] == -SIGUSR1,
	   "a second signal nests inside a running handler and returns into it");
	/* The same signal is held until the handler returns. */
	sn.sa_handler = on_recurse;
	sigaction(SIGUSR1, &sn, NULL);
	depth = 0;
	kill(getpid(), SIGUSR1);
	check_eq(depth, 3, "without SA_NODEFER the re-raised signal runs after return (3 deliveries)");
	sn.sa_flags = SA_NODEFER;
	sigaction(SIGUSR1, &sn, NULL);
	depth = 0;
	kill(getpid(), SIGUSR1);
	check_eq(depth, 3, "SA_NODEFER: the handler re-enters itself 3 deep");
	return tap_done();
}
