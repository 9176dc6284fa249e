/*
 * wait.c - wait4/waitpid: WNOHANG, zombies, stop and continue reports,
 * process-group selectors, __WALL/__WCLONE/__WNOTHREAD, ECHILD and EINVAL.
 *
 * Linux: kernel/exit.c:do_wait(), wait_consider_task(). Children stop
 * themselves, so no case depends on timing; a blocking wait does the
 * ordering.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sys/resource.h>

static pid_t spawn_exit(int code)
{
	pid_t p = tap_fork();
	if (p == 0)
		_exit(code);
	return p;
}

static pid_t thread_child;
static int tpipe[2], tdone[2];
/* thread_forks forks a child and stays alive while main probes it: when a
 * thread exits, its children move to another thread of the group
 * (kernel/exit.c:find_new_reaper()), which would defeat the test. */
static void *thread_forks(void *a)
{
	(void)a;
	char b = 'r';
	thread_child = fork();
	if (thread_child == 0)
		_exit(4);
	/* Wait for it to be a zombie without reaping it. */
	siginfo_t si;
	waitid(P_PID, thread_child, &si, WEXITED | WNOWAIT);
	write(tpipe[1], &b, 1);
	read(tdone[0], &b, 1);
	return NULL;
}

int main(void)
{
	tap_init();
	int st, pfd[2];
	pid_t p, w;

	/* WNOHANG on a live child returns 0. */
	if (pipe(pfd))
		return 1;
	p = tap_fork();
	if (p == 0) {
		char b;
		close(pfd[1]);
		read(pfd[0], &b, 1);
		_exit(1);
	}
	close(pfd[0]);
	check_eq(waitpid(p, &st, WNOHANG), 0, "WNOHANG on a running child returns 0");
	close(pfd[1]);
	check_eq(tap_wait(p), 1, "blocking wait after the child is released");

	/* A zombie exists until it is reaped. */
	p = spawn_exit(2);
	siginfo_t si;
	waitid(P_PID, p, &si, WEXITED | WNOWAIT);
	check_eq(kill(p, 0), 0, "zombie child still exists for kill(0)");
	check_eq(getpgid(p), getpgrp(), "zombie still has its process group");
	check_eq(tap_wait(p), 2, "zombie reaped with its status");
	check_err(kill(p, 0), ESRCH, "reaped child is gone");

	/* wait4 returns rusage and accepts NULL status. */
	p = spawn_exit(0);
	struct rusage ru;
	check_eq(wait4(p, NULL, 0, &ru), p, "wait4 with NULL status and rusage");

	/* Stop and continue reports. The child waits on hold[] after the
	 * continue, so that its exit cannot overtake the continue report. */
	int hold[2];
	if (pipe(hold))
		return 1;
	p = tap_fork();
	if (p == 0) {
		char b;
		kill(getpid(), SIGSTOP);
		read(hold[0], &b, 1);
		_exit(6);
	}
	w = waitpid(p, &st, WUNTRACED);
	ok(w == p && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "WUNTRACED reports the stop with SIGSTOP");
	check_eq(waitpid(p, &st, WUNTRACED | WNOHANG), 0, "a stop is reported only once");
	kill(p, SIGCONT);
	w = waitpid(p, &st, WCONTINUED);
	ok(w == p && WIFCONTINUED(st), "WCONTINUED reports the continue");
	write(hold[1], "g", 1);
	check_eq(tap_wait(p), 6, "continued child runs to exit");

	p = tap_fork();
	if (p == 0) {
		/* Own group, so that it is not orphaned: Linux discards a
		 * default SIGTSTP in an orphaned group (kernel/signal.c:
		 * get_signal(), is_current_pgrp_orphaned()). */
		setpgid(0, 0);
		kill(getpid(), SIGTSTP);
		_exit(8);
	}
	w = waitpid(p, &st, WSTOPPED);
	ok(w == p && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP, "WSTOPPED (== WUNTRACED) reports SIGTSTP stop");
	check_eq(waitpid(p, &st, WNOHANG), 0, "without WUNTRACED a stopped child is not reported");
	kill(p, SIGCONT);
	check_eq(tap_wait(p), 8, "child continues after SIGCONT");

	/* Group selectors: -pgid and 0. */
	p = tap_fork();
	if (p == 0) {
		setpgid(0, 0);
		_exit(3);
	}
	setpgid(p, p); /* race-free: whichever runs first, the group exists */
	w = waitpid(-p, &st, 0);
	ok(w == p && WEXITSTATUS(st) == 3, "waitpid(-pgid) reaps a child of that group");
	p = spawn_exit(5);
	w = waitpid(0, &st, 0);
	ok(w == p && WEXITSTATUS(st) == 5, "waitpid(0) reaps a child of our group");
	p = spawn_exit(9);
	w = waitpid(-1, &st, 0);
	ok(w == p && WEXITSTATUS(st) == 9, "waitpid(-1) reaps any child");

	/* Clone children: __WCLONE vs __WALL. */
	fflush(stdout);
	long c = syscall(SYS_clone, SIGUSR1 * 0 /* no exit signal */, 0, 0, 0, 0);
	if (c == 0)
		_exit(11);
	check_eq(waitpid(c, &st, WNOHANG), -1, "a child with exit signal 0 is a clone child: plain wait ECHILD");
	w = waitpid(c, &st, __WCLONE);
	ok(w == c && WEXITSTATUS(st) == 11, "__WCLONE reaps a clone child");
	p = spawn_exit(12);
	check_eq(waitpid(p, &st, __WCLONE | WNOHANG), -1, "__WCLONE ignores a SIGCHLD child");
	w = waitpid(p, &st, __WALL);
	ok(w == p && WEXITSTATUS(st) == 12, "__WALL reaps a SIGCHLD child");

	/* __WNOTHREAD: only children of the calling thread. */
	pthread_t t;
	char b;
	if (pipe(tpipe) || pipe(tdone))
		return 1;
	pthread_create(&t, NULL, thread_forks, NULL);
	read(tpipe[0], &b, 1);
	check_err(waitpid(thread_child, &st, __WNOTHREAD | WNOHANG), ECHILD, "__WNOTHREAD: another thread's child ECHILD");
	w = waitpid(thread_child, &st, 0);
	write(tdone[1], &b, 1);
	pthread_join(t, NULL);
	ok(w == thread_child && WEXITSTATUS(st) == 4, "without __WNOTHREAD a sibling thread's child is reaped");

	/* The raw status words, bit for bit (include/uapi/linux/wait.h and
	 * kernel/exit.c: exit code << 8, a signal number, 0x7f | sig << 8
	 * for a stop, 0xffff for a continue). */
	p = spawn_exit(7);
	waitpid(p, &st, 0);
	check_eq(st, 0x0700, "raw status of exit(7) is 0x0700");
	p = tap_fork();
	if (p == 0) {
		char b;
		kill(getpid(), SIGSTOP);
		read(hold[0], &b, 1);
		_exit(0);
	}
	waitpid(p, &st, WUNTRACED);
	check_eq(st, (SIGSTOP << 8) | 0x7f, "raw status of a SIGSTOP stop is 0x137f");
	kill(p, SIGCONT);
	waitpid(p, &st, WCONTINUED);
	check_eq(st, 0xffff, "raw status of a continue is 0xffff");
	write(hold[1], "g", 1);
	waitpid(p, &st, 0);
	p = tap_fork();
	if (p == 0) {
		pause();
		_exit(0);
	}
	kill(p, SIGKILL);
	waitpid(p, &st, 0);
	check_eq(st, SIGKILL, "raw status of a SIGKILL death is 9");

	/* Errors. */
	check_err(waitpid(-1, &st, 0), ECHILD, "no children: ECHILD");
	check_err(waitpid(getppid() > 0 ? getppid() : 0x3ffffff0, &st, WNOHANG), ECHILD, "not our child: ECHILD");
	check_err(waitpid(-1, &st, 0x40000), EINVAL, "unknown option bit EINVAL");
	p = spawn_exit(0);
	check_err(wait4(p, (int *)1, 0, NULL), EFAULT, "bad status pointer EFAULT");
	tap_wait(p);
	tap_reap_all();
	return tap_done();
}
