/*
 * strace_seq.h: the fixed syscall sequence that strace_target runs and that
 * mini_strace traces by default. Only raw syscalls are used, so that the
 * sequence is the same under every libc and its results are deterministic
 * (file descriptors are moved to fixed numbers; PIDs are only returned, and
 * mini_strace prints them as task numbers).
 */
#ifndef RINGBOX_TESTS_PTRACE_STRACE_SEQ_H
#define RINGBOX_TESTS_PTRACE_STRACE_SEQ_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEQ_NULL_FD 20
#define SEQ_RD_FD 21
#define SEQ_WR_FD 22

/* strace_sequence runs the sequence and returns 0 iff every result was the
 * expected one. The forked child exits with 3. */
static inline int strace_sequence(void)
{
	int bad = 0;
	char buf[16];
	int p[2];
	struct utsname u;

	long me = syscall(SYS_getpid);
	// SIGCHLD stays blocked: its delivery point would race with wait4.
	unsigned long chld = 1UL << (SIGCHLD - 1);
	bad |= syscall(SYS_rt_sigprocmask, SIG_BLOCK, &chld, NULL, 8) != 0;
	syscall(SYS_getppid);
	long fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
	bad |= fd < 0;
	bad |= syscall(SYS_dup2, fd, SEQ_NULL_FD) != SEQ_NULL_FD;
	bad |= syscall(SYS_close, fd) != 0;
	bad |= syscall(SYS_write, SEQ_NULL_FD, "hello", 5) != 5;
	bad |= syscall(SYS_pipe2, p, O_CLOEXEC) != 0;
	bad |= syscall(SYS_dup2, p[0], SEQ_RD_FD) != SEQ_RD_FD;
	bad |= syscall(SYS_dup2, p[1], SEQ_WR_FD) != SEQ_WR_FD;
	bad |= syscall(SYS_close, p[0]) != 0;
	bad |= syscall(SYS_close, p[1]) != 0;
	bad |= syscall(SYS_write, SEQ_WR_FD, "abc", 3) != 3;
	bad |= syscall(SYS_read, SEQ_RD_FD, buf, sizeof buf) != 3;
	long child = syscall(SYS_fork);
	if (child == 0) {
		if (syscall(SYS_getppid) != me)
			syscall(SYS_exit_group, 4);
		syscall(SYS_write, SEQ_WR_FD, "x", 1);
		syscall(SYS_exit_group, 3);
	}
	bad |= child < 0;
	int st = 0;
	bad |= syscall(SYS_wait4, child, &st, 0, NULL) != child;
	bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 3;
	bad |= syscall(SYS_read, SEQ_RD_FD, buf, sizeof buf) != 1;
	bad |= syscall(SYS_uname, &u) != 0;
	bad |= syscall(SYS_kill, me, 0) != 0;
	bad |= syscall(SYS_close, SEQ_NULL_FD) != 0;
	bad |= syscall(SYS_close, SEQ_NULL_FD) != -1;
	bad |= syscall(SYS_close, SEQ_RD_FD) != 0;
	bad |= syscall(SYS_close, SEQ_WR_FD) != 0;
	return bad;
}

#endif
