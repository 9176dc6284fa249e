/*
 * sigdefault.c - default signal actions (terminate, core, stop, continue,
 * ignore), group stop and SIGCONT in a multi-threaded process, SIGKILL of a
 * stopped group, SIGKILL always winning, and the synchronous fault signals.
 *
 * Linux: kernel/signal.c:get_signal(), do_signal_stop(), prepare_signal();
 * signal(7) "Standard signals". Every victim is a child in its own process
 * group (a default SIGTSTP is discarded in an orphaned group), and every
 * core-action victim has RLIMIT_CORE 0 and is undumpable, so that no core
 * is written whatever the host's core_pattern.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static pid_t victim(void (*fn)(void))
{
	pid_t p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		prctl(PR_SET_DUMPABLE, 0);
		setpgid(0, 0);
		fn();
		_exit(0);
	}
	setpgid(p, p);
	return p;
}

static int sig_to_send;
static void self_signal(void)
{
	kill(getpid(), sig_to_send);
	_exit(50);
}
static volatile int *volatile bad_ptr = (int *)8;
static void do_segv(void) { *bad_ptr = 1; }
static void ignore_then_self_signal(void)
{
	signal(sig_to_send, SIG_IGN);
	kill(getpid(), sig_to_send);
	_exit(50);
}
static void do_abort(void) { abort(); }
static volatile int zero;
static void do_fpe(void) { zero = 10 / zero; }
static void do_ill(void) { __asm__ volatile("ud2"); }
static void do_trap(void) { __asm__ volatile("int3"); }

static volatile int fault_code;
static void on_fault(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	_exit(s == SIGFPE ? si->si_code : s == SIGILL ? 20 + si->si_code : 40 + si->si_code);
}
static void handle(int sig)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}
static void fpe_handled(void) { handle(SIGFPE); do_fpe(); }
static void ill_handled(void) { handle(SIGILL); do_ill(); }
static void trap_handled(void) { handle(SIGTRAP); do_trap(); }

/* ready[] orders a victim's setup before the parent's signals. */
static int ready[2];
static void say_ready(void)
{
	write(ready[1], "r", 1);
}
static void await_ready(void)
{
	char b;
	read(ready[0], &b, 1);
}

/* A synchronous fault whose signal is blocked or ignored cannot be
 * delivered: Linux forces the default action (kernel/signal.c:
 * force_sig_info_to_task(), which unblocks and resets the handler). */
static void segv_blocked(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSEGV);
	sigprocmask(SIG_BLOCK, &s, NULL);
	do_segv();
}
static void segv_ignored(void)
{
	signal(SIGSEGV, SIG_IGN);
	do_segv();
}
static void segv_handler_blocked(void)
{
	handle(SIGSEGV);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSEGV);
	sigprocmask(SIG_BLOCK, &s, NULL);
	do_segv();
}

static void block_all_then_wait(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (int s = 1; s < 32; s++)
		signal(s, SIG_IGN);
	say_ready();
	for (;;)
		pause();
}
static void wait_forever(void)
{
	for (;;)
		pause();
}

static volatile long *counter;
static void *spin(void *a)
{
	(void)a;
	for (;;)
		__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
	return NULL;
}
static void two_threads_counting(void)
{
	pthread_t t;
	pthread_create(&t, NULL, spin, NULL);
	for (;;)
		pause();
}

static void tstp_then_cont(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTSTP);
	sigprocmask(SIG_BLOCK, &s, NULL);
	kill(getpid(), SIGTSTP);
	kill(getpid(), SIGCONT);
	sigpending(&s);
	_exit(sigismember(&s, SIGTSTP) ? 1 : 0);
}

static volatile int cont_seen;
static void on_cont(int s) { (void)s; cont_seen = 1; }
static void stop_with_cont_handler(void)
{
	signal(SIGCONT, on_cont);
	kill(getpid(), SIGSTOP);
	_exit(cont_seen ? 7 : 8);
}

static int after_signal(int sig)
{
	sig_to_send = sig;
	return tap_wait(victim(self_signal));
}

int main(void)
{
	tap_init();
	int st;
	pid_t p;

	check_eq(after_signal(SIGTERM), 1000 + SIGTERM, "SIGTERM default: terminate");
	check_eq(after_signal(SIGUSR1), 1000 + SIGUSR1, "SIGUSR1 default: terminate");
	check_eq(after_signal(SIGALRM), 1000 + SIGALRM, "SIGALRM default: terminate");
	check_eq(after_signal(SIGQUIT), 1000 + SIGQUIT, "SIGQUIT default: core (killed, no core written)");
	check_eq(after_signal(SIGCHLD), 50, "SIGCHLD default: ignore");
	check_eq(after_signal(SIGURG), 50, "SIGURG default: ignore");
	check_eq(after_signal(SIGWINCH), 50, "SIGWINCH default: ignore");
	check_eq(after_signal(SIGCONT), 50, "SIGCONT to a running process: continues");
	check_eq(tap_wait(victim(do_segv)), 1000 + SIGSEGV, "bad store: killed by SIGSEGV");
	check_eq(tap_wait(victim(do_abort)), 1000 + SIGABRT, "abort(): killed by SIGABRT");
	check_eq(tap_wait(victim(do_fpe)), 1000 + SIGFPE, "integer divide by zero: killed by SIGFPE");
	check_eq(tap_wait(victim(fpe_handled)), FPE_INTDIV, "SIGFPE si_code FPE_INTDIV");
	check_eq(tap_wait(victim(do_ill)), 1000 + SIGILL, "ud2: killed by SIGILL");
	check_eq(tap_wait(victim(ill_handled)), 20 + ILL_ILLOPN, "SIGILL si_code ILL_ILLOPN");
	check_eq(tap_wait(victim(do_trap)), 1000 + SIGTRAP, "int3: killed by SIGTRAP");
	check_eq(tap_wait(victim(trap_handled)), 40 + SI_KERNEL, "int3 SIGTRAP si_code SI_KERNEL");

	check_eq(tap_wait(victim(segv_blocked)), 1000 + SIGSEGV, "fault with SIGSEGV blocked: killed by SIGSEGV");
	check_eq(tap_wait(victim(segv_ignored)), 1000 + SIGSEGV, "fault with SIGSEGV ignored: killed by SIGSEGV");
	check_eq(tap_wait(victim(segv_handler_blocked)), 1000 + SIGSEGV, "fault with a handler but SIGSEGV blocked: killed, handler not run");
	/* A kill()ed SIGSEGV, unlike a fault, obeys SIG_IGN. */
	sig_to_send = SIGSEGV;
	check_eq(tap_wait(victim(ignore_then_self_signal)), 50, "kill(SIGSEGV) with SIG_IGN is ignored");

	/* Stop signals. */
	int stops[] = { SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU };
	for (int i = 0; i < 4; i++) {
		sig_to_send = stops[i];
		p = victim(self_signal);
		waitpid(p, &st, WUNTRACED);
		ok(WIFSTOPPED(st) && WSTOPSIG(st) == stops[i], "signal %d default: stop", stops[i]);
		kill(p, SIGCONT);
		check_eq(tap_wait(p), 50, "signal %d: SIGCONT resumes", stops[i]);
	}

	/* SIGCONT discards a pending stop signal. */
	check_eq(tap_wait(victim(tstp_then_cont)), 0, "SIGCONT discards a pending SIGTSTP");
	/* A SIGCONT handler runs after the continue. */
	p = victim(stop_with_cont_handler);
	waitpid(p, &st, WUNTRACED);
	kill(p, SIGCONT);
	check_eq(tap_wait(p), 7, "SIGCONT resumes, then its handler runs");

	/* Group stop: every thread stops; SIGCONT resumes them all. */
	counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*counter = 0;
	p = victim(two_threads_counting);
	while (__atomic_load_n(counter, __ATOMIC_RELAXED) < 1000)
		sched_yield();
	kill(p, SIGSTOP);
	waitpid(p, &st, WUNTRACED);
	ok(WIFSTOPPED(st), "multi-threaded process reported stopped");
	long c1 = *counter;
	usleep(30000);
	long c2 = *counter;
	check_eq(c2 - c1, 0, "group stop: the spinning thread is stopped too");
	kill(p, SIGCONT);
	waitpid(p, &st, WCONTINUED);
	long c3 = c2;
	for (int i = 0; i < 2000 && c3 == c2; i++) {
		usleep(1000);
		c3 = *counter;
	}
	ok(c3 != c2, "SIGCONT resumes the spinning thread");
	/* SIGKILL of a stopped group. */
	kill(p, SIGSTOP);
	waitpid(p, &st, WUNTRACED);
	kill(p, SIGKILL);
	check_eq(tap_wait(p), 1000 + SIGKILL, "SIGKILL kills a stopped multi-threaded group");

	/* SIGKILL wins over a full mask and ignored signals; SIGSTOP too. */
	if (pipe(ready))
		return 1;
	p = victim(block_all_then_wait);
	await_ready();
	kill(p, SIGTERM);
	kill(p, SIGSTOP);
	waitpid(p, &st, WUNTRACED);
	ok(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "SIGSTOP stops a process that blocks everything");
	kill(p, SIGKILL);
	check_eq(tap_wait(p), 1000 + SIGKILL, "SIGKILL kills a stopped process that blocks everything");
	p = victim(wait_forever);
	kill(p, SIGKILL);
	kill(p, SIGCONT);
	check_eq(tap_wait(p), 1000 + SIGKILL, "SIGKILL wins over a later SIGCONT");
	munmap((void *)counter, 4096);
	return tap_done();
}
