/*
 * ids.c - task identity, parent links, process groups and sessions.
 *
 * Linux: kernel/sys.c (getpid, setpgid, setsid, getsid), kernel/exit.c.
 * The program may run as init under ringbox, so it never prints an id and
 * never makes itself a session leader; session and group changes happen in
 * forked children.
 */
#include "tap.h"
#include "abi.h"

/* child_report runs fn in a child and returns its exit code. */
static int in_child(int (*fn)(void *), void *arg)
{
	pid_t p = tap_fork();
	if (p == 0)
		_exit(fn(arg));
	return tap_wait(p);
}

static pid_t parent_pid;

/* child_links: the child's ppid is the parent, and its pid is new. */
static int child_links(void *arg)
{
	(void)arg;
	if (getppid() != parent_pid)
		return 1;
	if (getpid() == parent_pid)
		return 2;
	if (sys_gettid() != getpid())
		return 3;
	return 0;
}

/* child_setsid: a non-leader may create a session and becomes leader of
 * a new group; a second setsid fails. - setsid(2) */
static int child_setsid(void *arg)
{
	(void)arg;
	pid_t s = setsid();
	if (s != getpid())
		return 1;
	if (getsid(0) != getpid() || getpgrp() != getpid())
		return 2;
	errno = 0;
	if (setsid() != -1 || errno != EPERM)
		return 3;
	/* A session leader may not change its group: EPERM. - setpgid(2) */
	errno = 0;
	if (setpgid(0, 0) != -1 || errno != EPERM)
		return 4;
	return 0;
}

/* child_setpgid: a child makes itself a group leader, its own child does
 * the same and then moves back into the first group. The groups are made
 * here, rather than using ours, because ours may lie outside our pid
 * namespace (getpgrp() == 0 when we run as a namespace's init). */
static int child_setpgid(void *arg)
{
	(void)arg;
	if (setpgid(0, 0) != 0 || getpgrp() != getpid())
		return 1;
	pid_t grp = getpid();
	pid_t p = fork();
	if (p == 0) {
		if (setpgid(0, 0) != 0 || getpgrp() != getpid())
			_exit(2);
		if (getpgid(0) != getpid())
			_exit(3);
		/* Moving into another group of the session: allowed. */
		if (setpgid(0, grp) != 0 || getpgrp() != grp)
			_exit(4);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}

/* child_pgid_othersession: a group of another session is EPERM. The
 * child makes group G; its child starts a new session and forks; that
 * grandchild (not a session leader) tries to join G. */
static int child_pgid_othersession(void *arg)
{
	(void)arg;
	if (setpgid(0, 0) != 0)
		return 1;
	pid_t g = getpid();
	pid_t d = fork();
	if (d == 0) {
		if (setsid() < 0)
			_exit(2);
		pid_t e = fork();
		if (e == 0) {
			errno = 0;
			_exit(setpgid(0, g) == -1 && errno == EPERM ? 0 : 3);
		}
		int st;
		waitpid(e, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 4);
	}
	int st;
	waitpid(d, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}

int main(void)
{
	tap_init();
	parent_pid = getpid();

	check_eq(getpid(), getpid(), "getpid is stable");
	check_eq(sys_gettid(), getpid(), "main thread tid == pid");
	check_eq(syscall(SYS_getpid), getpid(), "raw getpid == libc getpid");
	ok(getppid() >= 0, "getppid non-negative");
	check_eq(in_child(child_links, NULL), 0, "child: ppid is parent, new pid, tid == pid");
	check_eq(getpgid(0), getpgrp(), "getpgid(0) == getpgrp()");
	check_eq(getpgid(getpid()), getpgrp(), "getpgid(self) == getpgrp()");
	check_eq(getsid(0), getsid(getpid()), "getsid(0) == getsid(self)");
	check_err(getpgid(-5), ESRCH, "getpgid(-5) ESRCH");
	check_err(getsid(0x3ffffff0), ESRCH, "getsid(nonexistent) ESRCH");
	check_err(getpgid(0x3ffffff0), ESRCH, "getpgid(nonexistent) ESRCH");
	check_err(setpgid(-1, 0), EINVAL, "setpgid(-1) EINVAL");
	check_err(setpgid(0, -1), EINVAL, "setpgid(0, -1) EINVAL");
	check_err(setpgid(0x3ffffff0, 0), ESRCH, "setpgid(nonexistent) ESRCH");

	check_eq(in_child(child_setsid, NULL), 0, "child setsid: new session, leader, second setsid EPERM, setpgid EPERM");
	check_eq(in_child(child_setpgid, NULL), 0, "setpgid(0,0) makes a group, setpgid(0, other) joins one of the session");
	check_eq(in_child(child_pgid_othersession, NULL), 0, "setpgid into another session's group EPERM");

	/* The parent may set a child's group before the child execs. */
	int pfd[2];
	if (pipe(pfd) != 0)
		return 1;
	pid_t c = tap_fork();
	if (c == 0) {
		char b;
		close(pfd[1]);
		read(pfd[0], &b, 1);
		_exit(getpgrp() == getpid() ? 0 : 1);
	}
	close(pfd[0]);
	check_ok(setpgid(c, c), "parent setpgid(child, child)");
	check_eq(getpgid(c), c, "getpgid(child) sees the new group");
	write(pfd[1], "x", 1);
	close(pfd[1]);
	check_eq(tap_wait(c), 0, "child sees itself as group leader");
	/* A zombie-free, reaped child no longer exists. */
	check_err(setpgid(c, c), ESRCH, "setpgid on a reaped child ESRCH");
	check_err(kill(c, 0), ESRCH, "kill(reaped, 0) ESRCH");
	tap_reap_all();
	return tap_done();
}
