/*
 * sysemu_floor.c - the mechanism floor of ringbox's ptrace platform: what
 * one emulated system call costs when the host does nothing but stop the
 * tracee and let the tracer rewrite its registers. A child issues
 * argv[1] (default 10000) getppid calls; the parent, per call, resumes it
 * with PTRACE_SYSEMU, waits for the syscall-entry stop, reads the
 * registers with PTRACE_GETREGS, writes the emulated return value into
 * rax and stores them back with PTRACE_SETREGS - the same four host
 * operations as the platform's Switch. No stub, no memory file, no kernel:
 * the platform can only be slower than this.
 *
 * "PTRACE_SYSEMU: ... stop on entry to the next system call, which will
 * not be executed." - ptrace(2)
 */
#include "bench.h"

#include <sys/user.h>

/* fake is the getppid result the tracer emulates; the child checks it. */
enum { fake = 4242 };

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 10000), emulated = 0, other = 0;
	pid_t pid = traced_child(n, fake);
	struct user_regs_struct regs;
	int exited, st;

	alarm(600);
	int64_t t0 = now_ns();
	while (emulated < n) {
		if (ptrace(PTRACE_SYSEMU, pid, NULL, NULL) != 0)
			die("PTRACE_SYSEMU");
		if (!wait_syscall_stop(pid, &exited, &st)) {
			fprintf(stderr, "unexpected stop or exit: status %#x\n", st);
			return 1;
		}
		if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
			die("PTRACE_GETREGS");
		if (regs.orig_rax == SYS_getppid) {
			regs.rax = fake;
			emulated++;
		} else {
			/* Nothing else is expected; fail it like Linux
			 * fails an unknown call. */
			regs.rax = -ENOSYS;
			other++;
		}
		if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) != 0)
			die("PTRACE_SETREGS");
	}
	int64_t t1 = now_ns();
	/* The last getppid stays emulated; the exit runs for real. */
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) != 0)
		die("PTRACE_CONT");
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	child_result(st);
	printf("sysemu_floor: %ld round trips (SYSEMU+wait+GETREGS+SETREGS), %.0f ns/round trip\n",
	       n, (double)(t1 - t0) / (double)(n + other));
	return 0;
}
