/*
 * sysemu_rt.c - the bare PTRACE_SYSEMU stop round trip: resume with
 * PTRACE_SYSEMU and wait for the syscall-entry stop, argv[1] (default
 * 10000) times, without touching the registers (the child's getppid calls
 * all return -ENOSYS, as the kernel leaves rax at syscall entry). Against
 * sysemu_floor it isolates the register transfers; run inside ringbox
 * against native, it measures ringbox's own ptrace implementation.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 10000);
	pid_t pid = traced_child(n, -1);
	int exited, st;

	alarm(600);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (ptrace(PTRACE_SYSEMU, pid, NULL, NULL) != 0)
			die("PTRACE_SYSEMU");
		if (!wait_syscall_stop(pid, &exited, &st)) {
			fprintf(stderr, "unexpected stop or exit: status %#x\n", st);
			return 1;
		}
	}
	int64_t t1 = now_ns();
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die("PTRACE_CONT");
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	child_result(st);
	printf("sysemu_rt: %ld round trips (SYSEMU+wait), %.0f ns/round trip\n",
	       n, (double)(t1 - t0) / (double)n);
	return 0;
}
