// options.c: PTRACE_SETOPTIONS and PTRACE_GETEVENTMSG basics.
//
// Linux: kernel/ptrace.c:ptrace_setoptions(), check_ptrace_options();
// ptrace(2) "PTRACE_SETOPTIONS", "PTRACE_GETEVENTMSG".
#include "tap.h"

static int t_calls(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		syscall(SYS_getppid);
	return 0;
}

int main(void)
{
	tap_init();
	static const long opts[] = {
		PTRACE_O_TRACESYSGOOD, PTRACE_O_TRACEFORK, PTRACE_O_TRACEVFORK, PTRACE_O_TRACECLONE,
		PTRACE_O_TRACEEXEC, PTRACE_O_TRACEVFORKDONE, PTRACE_O_TRACEEXIT, PTRACE_O_TRACESECCOMP,
		PT_O_EXITKILL,
	};
	long all = 0;

	pid_t c = spawn_traceme(t_calls, NULL);
	int good = 1;
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		all |= opts[i];
		if (pt(PTRACE_SETOPTIONS, c, 0, opts[i]) != 0)
			good = 0;
	}
	check_eq(good, 1, "each option alone is accepted");
	check_eq(pt(PTRACE_SETOPTIONS, c, 0, all), 0, "all options together are accepted");
	check_err(pt(PTRACE_SETOPTIONS, c, 0, 0x100), EINVAL, "option bit 8 is EINVAL");
	check_err(pt(PTRACE_SETOPTIONS, c, 0, 0x80000000ul), EINVAL, "option bit 31 is EINVAL");
	check_err(pt(PTRACE_SETOPTIONS, c, 0, all | 0x400), EINVAL, "valid options with an unknown bit are EINVAL");

	unsigned long msg = 99;
	check_eq(pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg), 0, "GETEVENTMSG succeeds without an event");
	check_eq(msg, 0, "the event message of a fresh tracee is 0");
	check_err(pt(PTRACE_GETEVENTMSG, c, 0, 8), EFAULT, "GETEVENTMSG to a bad address is EFAULT");

	// Options are replaced, not or-ed: TRACESYSGOOD cleared by SETOPTIONS(0).
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SETOPTIONS, c, 0, 0);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "SETOPTIONS replaces the option set");
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP | 0x80), "options set in a syscall-stop apply to the next stop");

	pt(PTRACE_CONT, c, 0, 0);
	check_err(pt(PTRACE_SETOPTIONS, c, 0, 0), ESRCH, "SETOPTIONS on a running tracee is ESRCH");
	check_err(pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg), ESRCH, "GETEVENTMSG on a running tracee is ESRCH");
	wait_pid(c);

	// A failed SETOPTIONS leaves the old options.
	c = spawn_traceme(NULL, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD | 0x400);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP | 0x80), "a failed SETOPTIONS keeps the previous options");
	kill_reap(c);

	return tap_done();
}
