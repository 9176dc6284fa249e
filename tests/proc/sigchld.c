/*
 * sigchld.c - SIGCHLD delivery and its dispositions: the siginfo a handler
 * sees, SA_NOCLDSTOP, and auto-reaping with SIG_IGN or SA_NOCLDWAIT.
 *
 * Linux: kernel/signal.c:do_notify_parent(), do_notify_parent_cldstop();
 * "If the disposition of SIGCHLD is set to SIG_IGN or the SA_NOCLDWAIT flag
 * is set for SIGCHLD, then children that terminate do not become zombies
 * and a call to wait() or waitpid() will block until all children have
 * terminated, and then fail with errno set to ECHILD." - wait(2)
 */
#include "tap.h"
#include "abi.h"
#include <poll.h>

static volatile sig_atomic_t got;
static volatile int g_code, g_status, g_pid;

static void on_chld(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	got++;
	g_code = si->si_code;
	g_status = si->si_status;
	g_pid = si->si_pid;
}

static void set_handler(int flags)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | flags;
	sigaction(SIGCHLD, &sa, NULL);
}

/* await_sigchld waits (bounded) for the handler to have run n times,
 * with SIGCHLD blocked outside sigsuspend so no wakeup is lost. */
static int await_sigchld(int n)
{
	sigset_t none;
	sigemptyset(&none);
	for (int i = 0; i < 50 && got < n; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGCHLD);
		/* sigtimedwait would consume it; use a short sigsuspend-like
		 * wait via ppoll with the empty mask. */
		ppoll(NULL, 0, &ts, &none);
	}
	return got >= n;
}

int main(void)
{
	tap_init();
	sigset_t blk, old;
	sigemptyset(&blk);
	sigaddset(&blk, SIGCHLD);
	sigprocmask(SIG_BLOCK, &blk, &old);
	pid_t p;
	int st;

	set_handler(0);
	got = 0;
	p = tap_fork();
	if (p == 0)
		_exit(13);
	ok(await_sigchld(1), "SIGCHLD handler runs on child exit");
	ok(g_code == CLD_EXITED && g_status == 13 && g_pid == p, "siginfo: CLD_EXITED, status 13, child's pid");
	check_eq(tap_wait(p), 13, "child still a zombie for wait with a handler installed");

	got = 0;
	p = tap_fork();
	if (p == 0) {
		pause();
		_exit(0);
	}
	kill(p, SIGKILL);
	await_sigchld(1);
	ok(g_code == CLD_KILLED && g_status == SIGKILL, "siginfo: CLD_KILLED with SIGKILL");
	tap_wait(p);

	/* Without SA_NOCLDSTOP: CLD_STOPPED and CLD_CONTINUED. The child
	 * holds on hold[] after the continue, so that its exit's SIGCHLD
	 * cannot coalesce with the continue's. */
	int hold[2];
	if (pipe(hold))
		return 1;
	got = 0;
	p = tap_fork();
	if (p == 0) {
		char b;
		kill(getpid(), SIGSTOP);
		read(hold[0], &b, 1);
		_exit(0);
	}
	await_sigchld(1);
	ok(g_code == CLD_STOPPED && g_status == SIGSTOP, "siginfo: CLD_STOPPED with SIGSTOP");
	waitpid(p, &st, WUNTRACED);
	kill(p, SIGCONT);
	await_sigchld(2);
	ok(g_code == CLD_CONTINUED && g_status == SIGCONT, "siginfo: CLD_CONTINUED with SIGCONT");
	write(hold[1], "g", 1);
	tap_wait(p);

	/* SA_NOCLDSTOP: no SIGCHLD for the stop, one for the exit. First
	 * let the previous child's exit notification in. */
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	set_handler(SA_NOCLDSTOP);
	got = 0;
	p = tap_fork();
	if (p == 0) {
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	waitpid(p, &st, WUNTRACED);
	sigset_t pend;
	sigpending(&pend);
	ok(!sigismember(&pend, SIGCHLD) && got == 0, "SA_NOCLDSTOP: no SIGCHLD for a stop");
	kill(p, SIGCONT);
	tap_wait(p);
	await_sigchld(1);
	check_eq(g_code, CLD_EXITED, "SA_NOCLDSTOP: SIGCHLD still sent for the exit");

	/* Default disposition (SIG_DFL ignores SIGCHLD but keeps zombies). */
	signal(SIGCHLD, SIG_DFL);
	p = tap_fork();
	if (p == 0)
		_exit(0);
	siginfo_t si;
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	check_eq(kill(p, 0), 0, "SIG_DFL: exited child is a zombie");
	tap_wait(p);

	/* SIG_IGN: children are reaped automatically; wait blocks until they
	 * are all gone, then fails with ECHILD. */
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGCHLD, SIG_IGN);
	p = tap_fork();
	if (p == 0)
		_exit(1);
	check_err(waitpid(p, &st, 0), ECHILD, "SIGCHLD SIG_IGN: wait for an exited child ECHILD");
	/* The waiter is woken before the auto-reaped child's pid is
	 * released (kernel/exit.c:exit_notify() then release_task()), so
	 * poll, bounded, for it to go. */
	int gone = 0;
	for (int i = 0; i < 2000 && !gone; i++) {
		gone = kill(p, 0) == -1 && errno == ESRCH;
		if (!gone)
			usleep(1000);
	}
	ok(gone, "SIGCHLD SIG_IGN: no zombie left");
	signal(SIGCHLD, SIG_DFL);

	/* SA_NOCLDWAIT with a handler: auto-reap, the signal still comes. */
	sigprocmask(SIG_BLOCK, &blk, NULL);
	set_handler(SA_NOCLDWAIT);
	got = 0;
	p = tap_fork();
	if (p == 0)
		_exit(2);
	await_sigchld(1);
	ok(got == 1, "SA_NOCLDWAIT: SIGCHLD still delivered");
	check_err(waitpid(p, &st, 0), ECHILD, "SA_NOCLDWAIT: no zombie, ECHILD");
	signal(SIGCHLD, SIG_DFL);

	/* A blocked SIGCHLD stays pending; sigtimedwait collects its info. */
	p = tap_fork();
	if (p == 0)
		_exit(44);
	struct timespec ts = { 5, 0 };
	memset(&si, 0, sizeof si);
	/* SIG_DFL SIGCHLD is discarded unless blocked: it is blocked here. */
	int s = sigtimedwait(&blk, &si, &ts);
	ok(s == SIGCHLD && si.si_code == CLD_EXITED && si.si_status == 44, "blocked SIGCHLD collected by sigtimedwait");
	tap_wait(p);
	return tap_done();
}
