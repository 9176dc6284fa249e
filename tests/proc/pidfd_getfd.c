/*
 * pidfd_getfd.c - pidfd_getfd(2): a close-on-exec duplicate of another
 * process's descriptor, for a caller that may ptrace-attach to it; the
 * errnos for flags, bad and non-pidfd descriptors, a descriptor the
 * target lacks, a dead target and a caller without the right.
 *
 * Linux: kernel/pid.c:pidfd_getfd() and __pidfd_fget().
 */
#include "tap.h"

static int pidfd_open_(pid_t p) { return (int)syscall(SYS_pidfd_open, p, 0); }
static int getfd(int pidfd, int fd, unsigned flags) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, flags); }

/* holder keeps a pipe with one byte at descriptor 50 and waits to be
 * killed. */
static pid_t holder(int ready)
{
	pid_t p = tap_fork();
	if (p == 0) {
		int q[2];
		pipe(q);
		dup2(q[0], 50);
		write(q[1], "k", 1);
		write(ready, "r", 1);
		pause();
		_exit(0);
	}
	return p;
}

int main(void)
{
	tap_init();
	int q[2];
	pipe(q);
	int me = pidfd_open_(getpid());
	int fd = getfd(me, q[1], 0);
	ok(fd >= 0 && fd != q[1], "pidfd_getfd of the caller's own descriptor");
	check_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "the new descriptor is close-on-exec");
	char c = 0;
	ok(write(fd, "a", 1) == 1 && read(q[0], &c, 1) == 1 && c == 'a', "it is the same open file");
	close(fd);
	check_err(getfd(me, q[1], 1), EINVAL, "flags other than 0 EINVAL");
	check_err(getfd(me, 999, 0), EBADF, "a descriptor the target lacks EBADF");
	check_err(getfd(q[0], 0, 0), EBADF, "a descriptor that is not a pidfd EBADF");
	check_err(getfd(-1, 0, 0), EBADF, "pidfd -1 EBADF");

	int ready[2];
	pipe(ready);
	pid_t h = holder(ready[1]);
	read(ready[0], &c, 1);
	int hp = pidfd_open_(h);
	fd = getfd(hp, 50, 0);
	c = 0;
	ok(fd >= 0 && read(fd, &c, 1) == 1 && c == 'k', "a child's descriptor: the child's pipe, with its byte");
	close(fd);
	kill(h, SIGKILL);
	tap_wait(h);
	check_err(getfd(hp, 50, 0), ESRCH, "a reaped target ESRCH");

	/* A caller of another uid without CAP_SYS_PTRACE. */
	pid_t a = tap_fork();
	if (a == 0) {
		int r2[2], gate[2];
		pipe(r2);
		pipe(gate);
		pid_t b = tap_fork();
		if (b == 0) {
			/* B outlives nothing: it leaves when A does (EOF on
			 * the gate), and A may not signal it after setuid. */
			tap_detach_stdio();
			close(gate[1]);
			setgid(1001);
			setuid(1001);
			write(r2[1], "r", 1);
			read(gate[0], &c, 1);
			_exit(0);
		}
		close(gate[0]);
		read(r2[0], &c, 1);
		int bp = pidfd_open_(b);
		setgid(1000);
		setuid(1000);
		int r = getfd(bp, 0, 0);
		_exit(r == -1 && errno == EPERM ? 0 : 1);
	}
	check_eq(tap_wait(a), 0, "a process of another uid EPERM");
	return tap_done();
}
