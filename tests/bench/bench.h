/*
 * bench.h - helpers shared by the benchmark programs: argument parsing, a
 * monotonic clock, the traced child that loops getppid, and fatal errors.
 *
 * Benchmarks print timings, so unlike the self-checking suites their
 * stdout differs between runs and they are not part of the differential
 * set; they still exit non-zero when the mechanism they time misbehaves.
 */
#ifndef RINGBOX_TESTS_BENCH_H
#define RINGBOX_TESTS_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* die reports a failed step and exits; a traced child dies with us
 * (PTRACE_O_EXITKILL). */
static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(2);
}

/* iterations parses argv[1], or returns def when it is absent. */
static inline long iterations(int argc, char **argv, long def)
{
	if (argc < 2)
		return def;
	char *end;
	long n = strtol(argv[1], &end, 10);
	if (*end != 0 || n <= 0) {
		fprintf(stderr, "usage: %s [iterations > 0]\n", argv[0]);
		exit(2);
	}
	return n;
}

/* now_ns reads CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime");
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* raw_getppid issues the getppid system call directly: no libc wrapper
 * cost and no caching, just the syscall instruction. */
static inline long raw_getppid(void)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"((long)SYS_getppid)
			 : "rcx", "r11", "memory");
	return ret;
}

/* traced_child forks a child that asks to be traced, stops itself so that
 * the tracer can set options, then issues n getppid system calls and
 * exits 0, or 1 if a result was not want (when want >= 0). It returns the
 * child's pid with the child in its initial SIGSTOP and
 * PTRACE_O_EXITKILL|PTRACE_O_TRACESYSGOOD set. */
static inline pid_t traced_child(long n, long want)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		long bad = 0;

		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
			_exit(3);
		/* kill(2), not raise(3): glibc's raise masks signals around
		 * the kill, and those calls would be traced too. */
		kill(getpid(), SIGSTOP);
		for (long i = 0; i < n; i++)
			if (raw_getppid() != want && want >= 0)
				bad++;
		_exit(bad ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid for the initial stop");
	if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
		fprintf(stderr, "child did not stop: status %#x\n", st);
		exit(2);
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) != 0)
		die("PTRACE_SETOPTIONS");
	return pid;
}

/* wait_syscall_stop waits for the next stop of pid and reports whether it
 * is a system-call stop (SIGTRAP|0x80); exits the program on anything but
 * a stop or the child's exit, which returns 0 with *exited set. */
static inline int wait_syscall_stop(pid_t pid, int *exited, int *status)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	*status = st;
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		*exited = 1;
		return 0;
	}
	*exited = 0;
	return WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80);
}

/* child_result checks the child's exit status. */
static inline void child_result(int st)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "traced child failed: status %#x\n", st);
		exit(1);
	}
}

#endif
