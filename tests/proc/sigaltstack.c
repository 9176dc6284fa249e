/*
 * sigaltstack.c - alternate signal stacks: a SA_ONSTACK handler runs on
 * it, SS_ONSTACK is reported inside, changes while on it fail, the errnos,
 * and a stack overflow caught on the alternate stack.
 *
 * Linux: kernel/signal.c:do_sigaltstack(), arch/x86/kernel/signal.c:
 * get_sigframe(); sigaltstack(2).
 */
#include "tap.h"
#include "abi.h"
#include <sys/resource.h>

#define ALT_SIZE (64 * 1024)
static char *alt;
static volatile int on_alt, flags_inside, eperm_inside, ran;

static void on_usr1(int s)
{
	(void)s;
	char local;
	on_alt = &local >= alt && &local < alt + ALT_SIZE;
	stack_t ss;
	sigaltstack(NULL, &ss);
	flags_inside = ss.ss_flags;
	stack_t n = { .ss_sp = alt, .ss_size = ALT_SIZE };
	errno = 0;
	eperm_inside = sigaltstack(&n, NULL) == -1 ? errno : 0;
	ran = 1;
}

static void on_segv(int s)
{
	(void)s;
	char local;
	_exit(&local >= alt && &local < alt + ALT_SIZE ? 42 : 43);
}

static volatile int depth_sink;
static int recurse(int n)
{
	volatile char buf[1024];
	buf[0] = (char)n;
	depth_sink += buf[0];
	if (depth_sink == -12345) /* never: keeps the compiler from seeing */
		return 0;         /* an unconditional recursion */
	return recurse(n + 1) + buf[0];
}

int main(void)
{
	tap_init();
	alt = malloc(ALT_SIZE);
	stack_t ss, old;

	check_ok(sigaltstack(NULL, &old), "query the alternate stack");
	check_eq(old.ss_flags, SS_DISABLE, "initially SS_DISABLE");

	ss.ss_sp = alt;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	check_ok(sigaltstack(&ss, NULL), "install an alternate stack");
	sigaltstack(NULL, &old);
	ok(old.ss_sp == alt && old.ss_size == ALT_SIZE && old.ss_flags == 0, "query returns it, not on it");

	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	kill(getpid(), SIGUSR1);
	ok(ran && on_alt, "SA_ONSTACK handler runs on the alternate stack");
	check_eq(flags_inside, SS_ONSTACK, "SS_ONSTACK reported inside the handler");
	check_eq(eperm_inside, EPERM, "changing the stack while on it EPERM");

	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	ran = 0;
	kill(getpid(), SIGUSR1);
	ok(ran && !on_alt, "handler without SA_ONSTACK stays on the normal stack");

	/* Raw calls: musl's wrapper checks flags and sizes itself. */
	ss.ss_size = 1024;
	check_err(syscall(SYS_sigaltstack, &ss, NULL), ENOMEM, "size below MINSIGSTKSZ ENOMEM");
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0x1234;
	check_err(syscall(SYS_sigaltstack, &ss, NULL), EINVAL, "unknown ss_flags EINVAL");
	ss.ss_flags = SS_ONSTACK;
	check_ok(syscall(SYS_sigaltstack, &ss, NULL), "SS_ONSTACK in ss_flags is accepted (old ABI)");
	check_err(syscall(SYS_sigaltstack, (stack_t *)8, NULL), EFAULT, "bad pointer EFAULT");
	ss.ss_flags = SS_DISABLE;
	check_ok(sigaltstack(&ss, NULL), "disable with SS_DISABLE");
	sigaltstack(NULL, &old);
	check_eq(old.ss_flags, SS_DISABLE, "query after disable");
	/* SS_AUTODISARM (1U << 31) is accepted on Linux since 4.7. */
	ss.ss_flags = (int)(1U << 31);
	check_ok(syscall(SYS_sigaltstack, &ss, NULL), "SS_AUTODISARM accepted");
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);

	/* A stack overflow: SIGSEGV is delivered on the alternate stack. */
	pid_t p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 256 * 1024, 256 * 1024 };
		setrlimit(RLIMIT_STACK, &rl);
		stack_t s2 = { .ss_sp = alt, .ss_size = ALT_SIZE };
		sigaltstack(&s2, NULL);
		struct sigaction sg = { 0 };
		sg.sa_handler = on_segv;
		sg.sa_flags = SA_ONSTACK;
		sigaction(SIGSEGV, &sg, NULL);
		recurse(0);
		_exit(1);
	}
	check_eq(tap_wait(p), 42, "stack overflow SIGSEGV handled on the alternate stack");
	p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 256 * 1024, 256 * 1024 };
		setrlimit(RLIMIT_STACK, &rl);
		struct sigaction sg = { 0 };
		sg.sa_handler = on_segv;
		sigaction(SIGSEGV, &sg, NULL);
		recurse(0);
		_exit(1);
	}
	check_eq(tap_wait(p), 1000 + SIGSEGV, "stack overflow without an alternate stack kills with SIGSEGV");
	return tap_done();
}
