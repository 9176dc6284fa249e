/*
 * prctl.c - prctl(2): PR_SET_NAME/PR_GET_NAME (per thread),
 * PR_SET_PDEATHSIG/PR_GET_PDEATHSIG with the signal delivered,
 * PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS,
 * PR_SET_KEEPCAPS, and the errnos.
 *
 * Linux: kernel/sys.c:prctl(), kernel/exit.c:forget_original_parent()
 * (pdeath_signal).
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sys/prctl.h>

static void *thread_name(void *a)
{
	(void)a;
	char n[16] = { 0 };
	prctl(PR_SET_NAME, "worker");
	prctl(PR_GET_NAME, n);
	return (void *)(intptr_t)(strcmp(n, "worker") == 0);
}

static int rep[2];
static void on_usr1(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	char r[2] = { (char)s, (char)(si->si_code == SI_USER) };
	write(rep[1], r, 2);
	_exit(0);
}

int main(void)
{
	tap_init();
	char n[32];

	check_ok(prctl(PR_SET_NAME, "ringbox-proc"), "PR_SET_NAME");
	memset(n, 0, sizeof n);
	check_ok(prctl(PR_GET_NAME, n), "PR_GET_NAME");
	check_eq(strcmp(n, "ringbox-proc"), 0, "name reads back");
	prctl(PR_SET_NAME, "a-very-long-name-indeed");
	memset(n, 'z', sizeof n);
	prctl(PR_GET_NAME, n);
	ok(strlen(n) == 15 && strcmp(n, "a-very-long-nam") == 0, "name truncated to 15 bytes plus NUL");
	prctl(PR_SET_NAME, "main");
	pthread_t t;
	void *r;
	pthread_create(&t, NULL, thread_name, NULL);
	pthread_join(t, &r);
	prctl(PR_GET_NAME, n);
	ok(r == (void *)1 && strcmp(n, "main") == 0, "the name is per thread");
	check_err(prctl(PR_GET_NAME, (char *)8), EFAULT, "PR_GET_NAME bad pointer EFAULT");

	/* Parent-death signal. */
	int sig = -1;
	check_ok(prctl(PR_GET_PDEATHSIG, &sig), "PR_GET_PDEATHSIG");
	check_eq(sig, 0, "no parent-death signal by default");
	check_err(prctl(PR_SET_PDEATHSIG, 99), EINVAL, "PR_SET_PDEATHSIG bad signal EINVAL");
	pid_t p = tap_fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGUSR2);
		int s = 0;
		prctl(PR_GET_PDEATHSIG, &s);
		pid_t g = fork();
		if (g == 0) {
			int s2 = -1;
			prctl(PR_GET_PDEATHSIG, &s2);
			_exit(s2);
		}
		int st;
		waitpid(g, &st, 0);
		_exit(s == SIGUSR2 && WEXITSTATUS(st) == 0 ? 0 : 1);
	}
	check_eq(tap_wait(p), 0, "PR_SET_PDEATHSIG reads back, and fork clears it in the child");

	/* The signal is delivered when the parent dies. */
	int ready[2];
	pipe(rep);
	pipe(ready);
	pid_t mid = tap_fork();
	if (mid == 0) {
		pid_t g = fork();
		if (g == 0) {
			tap_detach_stdio(); /* an orphan that may outlive us */
			alarm(10);
			struct sigaction sa = { 0 };
			sa.sa_sigaction = on_usr1;
			sa.sa_flags = SA_SIGINFO;
			sigaction(SIGUSR1, &sa, NULL);
			prctl(PR_SET_PDEATHSIG, SIGUSR1);
			write(ready[1], "r", 1);
			for (;;)
				pause();
		}
		char b;
		read(ready[0], &b, 1);
		_exit(0); /* our death signals the grandchild */
	}
	check_eq(tap_wait(mid), 0, "middle process exits");
	close(rep[1]);
	char got[2] = { 0, 0 };
	check_eq(read(rep[0], got, 2), 2, "orphaned grandchild reports");
	check_eq(got[0], SIGUSR1, "parent-death signal delivered");
	check_eq(got[1], 1, "parent-death signal has si_code SI_USER");
	close(rep[0]);
	if (getpid() == 1)
		wait(NULL);

	/* Dumpable */
	check_eq(prctl(PR_GET_DUMPABLE), 1, "dumpable by default");
	check_ok(prctl(PR_SET_DUMPABLE, 0), "PR_SET_DUMPABLE 0");
	check_eq(prctl(PR_GET_DUMPABLE), 0, "PR_GET_DUMPABLE reads 0");
	check_err(prctl(PR_SET_DUMPABLE, 2), EINVAL, "PR_SET_DUMPABLE 2 EINVAL");
	prctl(PR_SET_DUMPABLE, 1);
	check_eq(prctl(PR_GET_DUMPABLE), 1, "PR_SET_DUMPABLE 1 restores it");

	/* Subreaper attribute */
	check_ok(prctl(PR_SET_CHILD_SUBREAPER, 1), "PR_SET_CHILD_SUBREAPER");
	int sr = -1;
	prctl(PR_GET_CHILD_SUBREAPER, &sr);
	check_eq(sr, 1, "PR_GET_CHILD_SUBREAPER reads 1");
	prctl(PR_SET_CHILD_SUBREAPER, 0);

	/* KEEPCAPS */
	check_eq(prctl(PR_GET_KEEPCAPS), 0, "PR_GET_KEEPCAPS 0 by default");
	check_err(prctl(PR_SET_KEEPCAPS, 2), EINVAL, "PR_SET_KEEPCAPS 2 EINVAL");

	/* No new privileges: one-way, inherited. In a child: irreversible. */
	check_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0, "no_new_privs 0 by default");
	p = tap_fork();
	if (p == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			_exit(1);
		if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
			_exit(2);
		errno = 0;
		if (prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) != -1 || errno != EINVAL)
			_exit(3);
		pid_t g = fork();
		if (g == 0)
			_exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
		int st;
		waitpid(g, &st, 0);
		_exit(WEXITSTATUS(st) ? 4 : 0);
	}
	check_eq(tap_wait(p), 0, "PR_SET_NO_NEW_PRIVS sticks, cannot be cleared, is inherited");
	check_err(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0), EINVAL, "PR_SET_NO_NEW_PRIVS with non-zero extra args EINVAL");
	check_err(prctl(0x7fff1234, 0, 0, 0, 0), EINVAL, "unknown option EINVAL");
	tap_reap_all();
	return tap_done();
}
