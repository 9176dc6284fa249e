/*
 * ptrace_syscall_rt.c - the PTRACE_SYSCALL round trip, as strace pays it:
 * every system call of the child stops twice, at entry and at exit, and
 * really runs in between. The child issues argv[1] (default 10000)
 * getppid calls; the tracer resumes it with PTRACE_SYSCALL until it exits
 * and reports nanoseconds per stop and per traced system call.
 *
 * "PTRACE_SYSCALL: ... arrange for the tracee to be stopped at the next
 * entry to or exit from a system call" - ptrace(2)
 */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 10000), stops = 0;
	pid_t pid = traced_child(n, getpid());
	int exited = 0, st;

	alarm(600);
	int64_t t0 = now_ns();
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) != 0)
			die("PTRACE_SYSCALL");
		if (!wait_syscall_stop(pid, &exited, &st))
			break;
		stops++;
	}
	int64_t t1 = now_ns();
	if (!exited) {
		fprintf(stderr, "unexpected stop: status %#x\n", st);
		return 1;
	}
	child_result(st);
	/* The stops also count the child's kill return and exit_group. */
	if (stops < 2 * n) {
		fprintf(stderr, "%ld stops for %ld system calls\n", stops, n);
		return 1;
	}
	printf("ptrace_syscall_rt: %ld stops, %.0f ns/stop, %.0f ns/syscall\n",
	       stops, (double)(t1 - t0) / (double)stops,
	       (double)(t1 - t0) / (double)(stops / 2));
	return 0;
}
