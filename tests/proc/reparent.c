/*
 * reparent.c - orphans are reparented to the nearest child subreaper, or
 * to init. - prctl(2) PR_SET_CHILD_SUBREAPER; Linux: kernel/exit.c:
 * find_new_reaper().
 *
 * Ordering uses pipes: the grandchild reads EOF when its parent dies, then
 * polls getppid() until it changes (bounded), and reports through a pipe.
 */
#include "tap.h"
#include "abi.h"
#include <sys/prctl.h>
#include <time.h>

/* grandchild_report waits for the middle process to die (EOF on die_fd),
 * then writes 1 byte per question: did ppid change, is it want. */
static void grandchild(int die_fd, int out_fd, pid_t old_parent, pid_t want)
{
	char b;
	while (read(die_fd, &b, 1) > 0)
		;
	/* The parent's death closes the pipe before exit_notify reparents
	 * us, so poll for the new parent a bounded number of times. */
	pid_t pp = getppid();
	for (int i = 0; i < 2000 && pp == old_parent; i++) {
		usleep(1000);
		pp = getppid();
	}
	char r[2] = { pp != old_parent, want == 0 || pp == want };
	write(out_fd, r, 2);
	_exit(0);
}

static void scenario(pid_t want_reaper, const char *what)
{
	int die[2], out[2];
	if (pipe(die) || pipe(out))
		_exit(90);
	pid_t mid = tap_fork();
	if (mid == 0) {
		close(die[0]);
		close(out[0]);
		pid_t me = getpid();
		pid_t g = fork();
		if (g == 0) {
			close(die[1]);
			tap_detach_stdio(); /* may outlive us, adopted by init */
			alarm(10);
			grandchild(die[0], out[1], me, want_reaper);
		}
		_exit(0); /* die[1] closes with us */
	}
	close(die[0]);
	close(die[1]);
	close(out[1]);
	check_eq(tap_wait(mid), 0, "%s: middle process exits", what);
	char r[2] = { 0, 0 };
	ssize_t n = read(out[0], r, 2);
	check_eq(n, 2, "%s: grandchild reports", what);
	check_eq(r[0], 1, "%s: orphan's ppid changes", what);
	check_eq(r[1], 1, "%s: orphan's new parent is the expected reaper", what);
	close(out[0]);
}

int main(void)
{
	tap_init();
	int v = -1;
	check_ok(prctl(PR_GET_CHILD_SUBREAPER, &v), "PR_GET_CHILD_SUBREAPER");
	check_eq(v, 0, "not a subreaper by default");

	/* Without a subreaper here, the orphan goes to some ancestor reaper
	 * (init natively; the subreaper of the harness perhaps), never to us
	 * unless we are init. */
	scenario(getpid() == 1 ? 1 : 0, "to init");
	if (getpid() == 1)
		wait(NULL); /* we are init: the orphan came to us */
	pid_t c;

	check_ok(prctl(PR_SET_CHILD_SUBREAPER, 1), "PR_SET_CHILD_SUBREAPER 1");
	check_ok(prctl(PR_GET_CHILD_SUBREAPER, &v), "PR_GET_CHILD_SUBREAPER");
	check_eq(v, 1, "subreaper attribute reads back 1");
	scenario(getpid(), "to subreaper");
	/* The orphan is now our child and must be reaped by us. */
	int st;
	pid_t w = waitpid(-1, &st, 0);
	ok(w > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "subreaper reaps the adopted orphan");
	check_err(waitpid(-1, &st, WNOHANG), ECHILD, "no more children after reaping the orphan");

	/* Two subreapers up the chain: the orphan goes to the nearest. We
	 * are a subreaper; our child C becomes one too, and the orphan of
	 * C's child must land on C, not on us. */
	int rep[2];
	pipe(rep);
	c = tap_fork();
	if (c == 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		pid_t me = getpid();
		int die[2];
		pipe(die);
		pid_t m = fork();
		if (m == 0) {
			pid_t mm = getpid();
			close(die[0]);
			pid_t o = fork();
			if (o == 0) {
				char b;
				close(die[1]);
				alarm(10);
				while (read(die[0], &b, 1) > 0)
					;
				pid_t pp = getppid();
				for (int i = 0; i < 2000 && pp == mm; i++) {
					usleep(1000);
					pp = getppid();
				}
				char r = pp == me;
				write(rep[1], &r, 1);
				_exit(0);
			}
			_exit(0);
		}
		close(die[0]);
		close(die[1]);
		int st;
		waitpid(m, &st, 0);
		/* Reap the adopted orphan: it must be ours now. */
		pid_t w = waitpid(-1, &st, 0);
		_exit(w > 0 && WIFEXITED(st) ? 0 : 1);
	}
	char nearest = 0;
	check_eq(read(rep[0], &nearest, 1), 1, "nested subreapers: the orphan reports");
	check_eq(nearest, 1, "nested subreapers: the orphan goes to the nearest one");
	check_eq(tap_wait(c), 0, "the nearest subreaper reaps it");

	/* The attribute is not inherited across fork. */
	c = tap_fork();
	if (c == 0) {
		/* clear our attribute in the child: it is not inherited
		 * across fork anyway - prctl(2) */
		int cv = -1;
		prctl(PR_GET_CHILD_SUBREAPER, &cv);
		_exit(cv);
	}
	check_eq(tap_wait(c), 0, "subreaper attribute not inherited by fork");
	tap_reap_all();
	return tap_done();
}
