// groupstop.c: stop signals under ptrace: the signal-delivery-stop, the
// group-stop it becomes when injected (or not, when suppressed), and attach
// to an already stopped process.
//
// Linux: kernel/signal.c:do_signal_stop(), do_jobctl_trap(), ptrace_attach()
// (JOBCTL_TRAP_STOP for a stopped task); ptrace(2) "Group-stop".
#include "tap.h"

int main(void)
{
	tap_init();
	siginfo_t si;
	int st;

	// SIGSTOP to an attached tracee.
	pid_t c = spawn_sleeper();
	attach_stopped(c);
	pt(PTRACE_CONT, c, 0, 0);
	kill(c, SIGSTOP);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "SIGSTOP first gives a signal-delivery-stop");
	check_eq(pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si), 0, "it has a siginfo");
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "injecting SIGSTOP reports a group-stop");
	check_err(pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si), EINVAL, "GETSIGINFO in a group-stop is EINVAL");
	check_eq(proc_state(c), 't', "the group-stopped tracee shows State t");
	// Restarting a non-seized tracee from group-stop makes it run.
	pt(PTRACE_CONT, c, 0, 0);
	check_eq(wait_state(c, 'S'), 1, "PTRACE_CONT from a group-stop resumes the tracee");

	// Suppressing the SIGSTOP: no group-stop.
	kill(c, SIGSTOP);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, 0);
	usleep(20000);
	ok(waitpid(c, &st, __WALL | WNOHANG) == 0 && wait_state(c, 'S'),
	   "suppressing SIGSTOP avoids the group-stop", "state %c", proc_state(c));

	// The stop signal can be replaced at injection. (SIGTSTP is not
	// used: its stop is discarded in an orphaned process group, which
	// depends on how the test is started.)
	kill(c, SIGSTOP);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "another SIGSTOP signal-delivery-stop");
	pt(PTRACE_CONT, c, 0, SIGUSR2);
	check_status(wait_pid(c), KILLED(SIGUSR2), "injecting SIGUSR2 instead delivers SIGUSR2, not a stop");
	kill_reap(c);

	// Attaching to a stopped process turns its group-stop into a ptrace-stop.
	c = spawn_sleeper();
	kill(c, SIGSTOP);
	waitpid(c, &st, WUNTRACED);
	check_eq(proc_state(c), 'T', "an untraced stopped child shows State T");
	check_eq(pt(PTRACE_ATTACH, c, 0, 0), 0, "PTRACE_ATTACH to the stopped child");
	check_status(wait_pid(c), STOPPED(SIGSTOP), "the tracer is told of the stop");
	check_eq(proc_state(c), 't', "the child is now in a ptrace-stop (State t)");
	check_err(pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si), EINVAL, "it is a group-stop: GETSIGINFO is EINVAL");
	struct user_regs_struct r;
	check_eq(getregs(c, &r), 0, "registers are readable in it");
	kill_reap(c);

	// SIGCONT to a tracee that stopped: signal-delivery-stop of SIGCONT.
	c = spawn_sleeper();
	attach_stopped(c);
	pt(PTRACE_CONT, c, 0, 0);
	kill(c, SIGSTOP);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	wait_pid(c); // group-stop
	kill(c, SIGCONT);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGCONT), "SIGCONT is reported as a signal-delivery-stop");
	pt(PTRACE_CONT, c, 0, 0);
	check_eq(wait_state(c, 'S'), 1, "after it the tracee runs");
	kill_reap(c);

	return tap_done();
}
