/*
 * tap.h - TAP-like helpers shared by the process-model conformance suite.
 *
 * Every program prints "ok N - desc" / "not ok N - desc: got X want Y" and a
 * final "# passed P failed F", and exits 0 iff nothing failed (see
 * tests/README conventions). Output must be byte-identical natively and under
 * ringbox, so nothing here prints a PID, an address or a time, and errnos are
 * printed by their symbolic name from our own table rather than strerror(),
 * whose wording differs between glibc and musl.
 */
#ifndef RINGBOX_TESTS_PROC_TAP_H
#define RINGBOX_TESTS_PROC_TAP_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../include/tap_common.h"

static int tap_n, tap_failed, tap_passed;

/* tap_report prints one result line; got/want may be NULL on success. */
static __attribute__((unused)) void tap_report(int pass, const char *got, const char *want,
		       const char *fmt, ...)
{
	char desc[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	tap_n++;
	if (pass) {
		tap_passed++;
		printf("ok %d - %s\n", tap_n, desc);
	} else {
		tap_failed++;
		printf("not ok %d - %s: got %s want %s\n", tap_n, desc,
		       got ? got : "false", want ? want : "true");
	}
}

/* ok records a plain boolean result. */
#define ok(cond, ...) tap_report(!!(cond), NULL, NULL, __VA_ARGS__)

/* skip records a case that cannot run here, with the reason. */
#define skip(reason, ...)                                                  \
	do {                                                               \
		char d_[200];                                              \
		snprintf(d_, sizeof d_, __VA_ARGS__);                       \
		tap_n++;                                                   \
		tap_passed++;                                              \
		printf("ok %d - %s # SKIP %s\n", tap_n, d_, reason);       \
	} while (0)

/* check_eq compares two integers. */
#define check_eq(got_, want_, ...)                                         \
	do {                                                               \
		long long g_ = (long long)(got_), w_ = (long long)(want_); \
		char gs_[32], ws_[32];                                     \
		snprintf(gs_, sizeof gs_, "%lld", g_);                     \
		snprintf(ws_, sizeof ws_, "%lld", w_);                     \
		tap_report(g_ == w_, gs_, ws_, __VA_ARGS__);               \
	} while (0)

/* check_err evaluates a call that must fail with -1 and errno want_. */
#define check_err(call_, want_, ...)                                       \
	do {                                                               \
		errno = 0;                                                 \
		long r_ = (long)(call_);                                   \
		int e_ = errno;                                            \
		char gs_[48];                                              \
		snprintf(gs_, sizeof gs_, "ret %ld errno %s",              \
			 r_ == -1 ? -1L : (r_ < 0 ? -2L : r_),             \
			 tap_errname(e_));                                 \
		tap_report(r_ == -1 && e_ == (want_), gs_,                 \
			   tap_errname(want_), __VA_ARGS__);               \
	} while (0)

/* check_ok evaluates a call that must not return -1. */
#define check_ok(call_, ...)                                               \
	do {                                                               \
		errno = 0;                                                 \
		long r_ = (long)(call_);                                   \
		char gs_[48];                                              \
		snprintf(gs_, sizeof gs_, "errno %s", tap_errname(errno)); \
		tap_report(r_ != -1, gs_, "success", __VA_ARGS__);         \
	} while (0)

/* tap_watchdog re-arms the 10 s alarm that keeps a broken kernel from
 * hanging the suite; programs that use SIGALRM themselves call it again
 * once they are done with the alarm. */
static __attribute__((unused)) void tap_watchdog(void)
{
	signal(SIGALRM, SIG_DFL);
	alarm(tap_watchdog_secs());
}

/* tap_init unbuffers stdout, so that a fork never duplicates pending
 * output and a crash never loses it, starts from default signal
 * dispositions and an empty mask (ignored dispositions and the mask are
 * inherited across execve, and a shell running us in the background
 * ignores SIGINT and SIGQUIT), and arms the watchdog. */
static __attribute__((unused)) void tap_init(void)
{
	sigset_t none;
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	tap_watchdog();
}

/* tap_done prints the summary and returns the exit status. */
static __attribute__((unused)) int tap_done(void)
{
	printf("# passed %d failed %d\n", tap_passed, tap_failed);
	return tap_failed ? 1 : 0;
}

/* tap_fork forks with the watchdog armed in the child too (alarms are not
 * inherited across fork - fork(2)). */
static __attribute__((unused)) pid_t tap_fork(void)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0)
		alarm(tap_watchdog_secs());
	if (p < 0) {
		/* Never let a failed fork turn into kill(-1, ...) below. */
		printf("Bail out! fork failed: %s\n", tap_errname(errno));
		exit(2);
	}
	return p;
}

/* tap_kill is kill(2) for the suite's own targets: a pid that is not
 * positive can only come from a failed fork or clone here, and kill(-1)
 * or kill(0) would then hit the harness natively, so it bails out. Cases
 * that test those pids call the raw syscall. */
static __attribute__((unused)) int tap_kill(pid_t pid, int sig)
{
	if (pid <= 0) {
		printf("Bail out! refusing kill(%d, %d)\n", (int)pid, sig);
		exit(2);
	}
	return (int)syscall(SYS_kill, pid, sig);
}
#define kill(p, s) tap_kill((p), (s))

/* tap_detach_stdio points stdin, stdout and stderr at /dev/null. An
 * orphan that outlives us calls it first: the harness counts a descendant
 * still holding stdout after the program exits as a failure. */
static __attribute__((unused)) void tap_detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* tap_status summarises a wait status as one comparable number: the exit
 * code for a normal exit, 1000+signal for a kill, 2000+signal for a stop,
 * 3000 for continued, -1 on wait error. */
static __attribute__((unused)) int tap_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 1000 + WTERMSIG(st);
	if (WIFSTOPPED(st))
		return 2000 + WSTOPSIG(st);
	if (WIFCONTINUED(st))
		return 3000;
	return -1;
}

/* tap_wait waits for pid (retrying EINTR) and returns tap_status of it. */
static __attribute__((unused)) int tap_wait(pid_t pid)
{
	int st;
	pid_t r;
	do
		r = waitpid(pid, &st, __WALL);
	while (r < 0 && errno == EINTR);
	return r == pid ? tap_status(st) : -1;
}

/* tap_reap_all collects any leftover children (orphans reparented to us
 * when we run as init under ringbox), without blocking. */
static __attribute__((unused)) void tap_reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
		;
}

#endif
