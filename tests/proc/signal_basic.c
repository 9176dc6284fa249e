/*
 * signal_basic.c - rt_sigaction flags, masks, pending sets, queueing, and
 * the kill family with the siginfo they deliver.
 *
 * Linux: kernel/signal.c; signal(7), sigaction(2), rt_sigqueueinfo(2).
 * Real-time signals used are 40-42, clear of the ones glibc (32-33) and musl
 * (32-34) reserve.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>

#define RT1 40
#define RT2 41

static volatile int h_count, h_signo, h_code, h_pid, h_val, h_tid;
static volatile int h_blocked_self, h_blocked_other;
static volatile int order[8], norder;

static void on_info(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	h_blocked_self = sigismember(&cur, s);
	h_blocked_other = sigismember(&cur, SIGUSR2);
	h_signo = si->si_signo;
	h_code = si->si_code;
	h_pid = si->si_pid;
	h_val = si->si_value.sival_int;
	h_tid = sys_gettid();
	if (norder < 8)
		order[norder++] = s * 1000 + si->si_value.sival_int;
	/* The count last: another thread polling it reads the fields above
	 * as soon as it changes. */
	__atomic_fetch_add(&h_count, 1, __ATOMIC_RELEASE);
}

static void install(int sig, int flags, int also_block)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_info;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	if (also_block)
		sigaddset(&sa.sa_mask, also_block);
	sigaction(sig, &sa, NULL);
}

static void reset(void)
{
	h_count = h_signo = h_code = h_pid = h_val = h_tid = 0;
	norder = 0;
}

/* Linux: include/uapi/asm-generic/signal-defs.h; x86 struct
 * kernel_sigaction layout for the raw syscall. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};
#define SA_RESTORER_ 0x04000000

static volatile pid_t worker_tid;
static volatile int worker_stop;
static void *worker(void *a)
{
	(void)a;
	worker_tid = sys_gettid();
	while (!worker_stop)
		usleep(1000);
	return NULL;
}

int main(void)
{
	tap_init();
	sigset_t s, cur;

	/* SA_SIGINFO with kill: SI_USER, our pid. */
	install(SIGUSR1, 0, 0);
	reset();
	kill(getpid(), SIGUSR1);
	check_eq(h_count, 1, "kill(self) delivers before kill returns");
	ok(h_signo == SIGUSR1 && h_code == SI_USER && h_pid == getpid(), "SA_SIGINFO: SI_USER with sender pid");
	check_eq(h_blocked_self, 1, "signal blocked during its own handler");
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check_eq(sigismember(&cur, SIGUSR1), 0, "mask restored after the handler");

	/* sa_mask adds signals to the mask during the handler. */
	install(SIGUSR1, 0, SIGUSR2);
	reset();
	kill(getpid(), SIGUSR1);
	check_eq(h_blocked_other, 1, "sa_mask signal blocked during handler");

	/* SA_NODEFER */
	install(SIGUSR1, SA_NODEFER, 0);
	reset();
	kill(getpid(), SIGUSR1);
	check_eq(h_blocked_self, 0, "SA_NODEFER: signal not blocked in its handler");

	/* SA_RESETHAND */
	install(SIGUSR1, SA_RESETHAND, 0);
	reset();
	kill(getpid(), SIGUSR1);
	struct sigaction old;
	sigaction(SIGUSR1, NULL, &old);
	ok(h_count == 1 && old.sa_handler == SIG_DFL, "SA_RESETHAND: disposition reset to SIG_DFL");
	/* POSIX allows SA_RESETHAND to imply SA_NODEFER; Linux does not
	 * (kernel/signal.c:signal_delivered() blocks unless SA_NODEFER). */
	check_eq(h_blocked_self, 1, "SA_RESETHAND: signal still blocked in its handler");

	/* SA_RESTORER is set by the libc; the raw view shows it. */
	install(SIGUSR1, 0, 0);
	struct ksigaction ks;
	memset(&ks, 0, sizeof ks);
	check_eq(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &ks, 8), 0, "raw rt_sigaction read");
	ok((ks.flags & SA_RESTORER_) && ks.restorer != NULL, "libc installs handlers with SA_RESTORER and a restorer");
	ok((ks.flags & SA_SIGINFO) && ks.handler == (void *)on_info, "raw view shows SA_SIGINFO and the handler");

	/* rt_sigaction errors. */
	struct sigaction sa = { 0 };
	sa.sa_handler = SIG_IGN;
	check_err(sigaction(SIGKILL, &sa, NULL), EINVAL, "sigaction(SIGKILL) EINVAL");
	check_err(sigaction(SIGSTOP, &sa, NULL), EINVAL, "sigaction(SIGSTOP) EINVAL");
	check_err(syscall(SYS_rt_sigaction, 0, NULL, &ks, 8), EINVAL, "rt_sigaction signal 0 EINVAL");
	check_err(syscall(SYS_rt_sigaction, 65, NULL, &ks, 8), EINVAL, "rt_sigaction signal 65 EINVAL");
	check_err(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &ks, 4), EINVAL, "rt_sigaction sigsetsize 4 EINVAL");
	check_err(syscall(SYS_rt_sigaction, SIGUSR1, (void *)8, NULL, 8), EFAULT, "rt_sigaction bad act pointer EFAULT");
	check_ok(sigaction(SIGKILL, NULL, &old), "sigaction(SIGKILL) query allowed");

	/* sigprocmask */
	sigemptyset(&s);
	sigaddset(&s, SIGKILL);
	sigaddset(&s, SIGSTOP);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	ok(!sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP) && sigismember(&cur, SIGUSR1),
	   "SIGKILL and SIGSTOP silently not blocked");
	check_err(sigprocmask(99, &s, NULL), EINVAL, "sigprocmask bad how EINVAL");

	/* Pending, coalescing of standard signals. */
	reset();
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	sigpending(&cur);
	ok(sigismember(&cur, SIGUSR1) && h_count == 0, "blocked signal is pending, not delivered");
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	check_eq(h_count, 1, "standard signal coalesces: one delivery for two kills");

	/* Real-time signals queue, with values, lowest number first. */
	/* Each handler blocks the other signal, so that deliveries do not
	 * nest and the handler-entry order is the kernel's dequeue order. */
	install(RT1, 0, RT2);
	install(RT2, 0, RT1);
	sigemptyset(&s);
	sigaddset(&s, RT1);
	sigaddset(&s, RT2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	reset();
	union sigval v;
	v.sival_int = 1;
	sigqueue(getpid(), RT2, v);
	v.sival_int = 2;
	sigqueue(getpid(), RT1, v);
	v.sival_int = 3;
	sigqueue(getpid(), RT1, v);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	check_eq(norder, 3, "three queued real-time signals delivered");
	ok(order[0] == RT1 * 1000 + 2 && order[1] == RT1 * 1000 + 3 && order[2] == RT2 * 1000 + 1,
	   "RT order: lowest signal first, FIFO within a signal, values kept");
	check_eq(h_code, SI_QUEUE, "sigqueue si_code SI_QUEUE");

	/* rt_sigqueueinfo/rt_tgsigqueueinfo directly. */
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = RT1;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = 77;
	reset();
	check_eq(syscall(SYS_rt_sigqueueinfo, getpid(), RT1, &si), 0, "rt_sigqueueinfo to self");
	check_eq(h_val, 77, "rt_sigqueueinfo: si_value delivered");
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	while (!worker_tid)
		usleep(1000);
	reset();
	si.si_value.sival_int = 88;
	check_eq(syscall(SYS_rt_tgsigqueueinfo, getpid(), worker_tid, RT1, &si), 0, "rt_tgsigqueueinfo to a thread");
	for (int i = 0; i < 2000 && !h_count; i++)
		usleep(1000);
	ok(h_val == 88 && h_tid == worker_tid, "rt_tgsigqueueinfo: value delivered on the target thread");
	reset();
	sys_tgkill(getpid(), worker_tid, SIGUSR1);
	for (int i = 0; i < 2000 && !h_count; i++)
		usleep(1000);
	ok(h_tid == worker_tid && h_code == SI_TKILL, "tgkill: delivered to the thread with SI_TKILL");
	reset();
	syscall(SYS_tkill, worker_tid, SIGUSR1);
	for (int i = 0; i < 2000 && !h_count; i++)
		usleep(1000);
	ok(h_tid == worker_tid && h_code == SI_TKILL, "tkill: delivered to the thread with SI_TKILL");
	worker_stop = 1;
	pthread_join(t, NULL);

	/* Errors of the kill family. */
	check_err(kill(getpid(), 65), EINVAL, "kill bad signal EINVAL");
	check_err(kill(0x3ffffff0, SIGUSR1), ESRCH, "kill nonexistent ESRCH");
	check_err(syscall(SYS_tkill, 0, SIGUSR1), EINVAL, "tkill tid 0 EINVAL");
	check_err(sys_tgkill(0, getpid(), SIGUSR1), EINVAL, "tgkill tgid 0 EINVAL");
	/* Sending a non-negative si_code to another process is forbidden. */
	pid_t c = tap_fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	si.si_code = SI_USER;
	check_err(syscall(SYS_rt_sigqueueinfo, c, RT1, &si), EPERM, "rt_sigqueueinfo si_code SI_USER to another process EPERM");
	kill(c, SIGKILL);
	tap_wait(c);

	/* sigsuspend: returns EINTR after a handler runs, mask restored. */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	kill(getpid(), SIGUSR1);
	reset();
	sigset_t none;
	sigemptyset(&none);
	check_err(sigsuspend(&none), EINTR, "sigsuspend EINTR after handler");
	check_eq(h_count, 1, "sigsuspend ran the pending handler");
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check_eq(sigismember(&cur, SIGUSR1), 1, "sigsuspend restores the mask");

	/* sigtimedwait */
	struct timespec ts = { 0, 0 };
	check_err(sigtimedwait(&s, &si, &ts), EAGAIN, "sigtimedwait zero timeout, nothing pending EAGAIN");
	ts.tv_nsec = 20 * 1000 * 1000;
	check_err(sigtimedwait(&s, &si, &ts), EAGAIN, "sigtimedwait 20ms timeout EAGAIN");
	kill(getpid(), SIGUSR1);
	ts.tv_sec = 1;
	memset(&si, 0, sizeof si);
	check_eq(sigtimedwait(&s, &si, &ts), SIGUSR1, "sigtimedwait takes a pending signal");
	ok(si.si_code == SI_USER && si.si_pid == getpid(), "sigtimedwait fills siginfo");
	sigpending(&cur);
	check_eq(sigismember(&cur, SIGUSR1), 0, "sigtimedwait consumed the signal");
	ts.tv_nsec = 1000000000;
	check_err(sigtimedwait(&s, &si, &ts), EINVAL, "sigtimedwait tv_nsec 1e9 EINVAL");
	return tap_done();
}
