// interrupt_listen.c: PTRACE_INTERRUPT and PTRACE_LISTEN on seized tracees.
//
// Linux: kernel/ptrace.c:ptrace_request() (PTRACE_INTERRUPT, PTRACE_LISTEN),
// kernel/signal.c:do_jobctl_trap(); ptrace(2) "PTRACE_LISTEN", "PTRACE_INTERRUPT".
#include "tap.h"

int main(void)
{
	tap_init();
	int st;
	siginfo_t si;

	// INTERRUPT of a running seized tracee.
	pid_t c = spawn_sleeper();
	pt(PTRACE_SEIZE, c, 0, 0);
	check_eq(pt(PTRACE_INTERRUPT, c, 0, 0), 0, "PTRACE_INTERRUPT of a running tracee succeeds");
	check_status(wait_pid(c), EVENT_STATUS(PT_EVENT_STOP), "the tracee stops with PTRACE_EVENT_STOP|SIGTRAP");
	memset(&si, 0, sizeof si);
	long r = pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	ok(r == 0 && si.si_signo == SIGTRAP && si.si_code == (SIGTRAP | PT_EVENT_STOP << 8),
	   "GETSIGINFO of an interrupt stop: SIGTRAP, si_code SIGTRAP|EVENT_STOP<<8",
	   "got r=%ld signo=%d code=%#x", r, si.si_signo, si.si_code);

	// INTERRUPT of an already stopped tracee is accepted; the tracee traps
	// again as soon as it is resumed.
	check_eq(pt(PTRACE_INTERRUPT, c, 0, 0), 0, "PTRACE_INTERRUPT of a stopped tracee succeeds");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PT_EVENT_STOP), "the pending interrupt traps on resume");

	// CONT after the interrupt stop lets the tracee run (it is paused in
	// pause(2), so nothing is reported).
	pt(PTRACE_CONT, c, 0, 0);
	usleep(20000);
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "after CONT no further stop is pending");
	check_eq(wait_state(c, 'S'), 1, "the resumed tracee sleeps in pause");

	// Group-stop and LISTEN.
	kill(c, SIGSTOP);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "SIGSTOP: signal-delivery-stop");
	check_err(pt(PTRACE_LISTEN, c, 0, 0), EIO, "PTRACE_LISTEN in a signal-delivery-stop is EIO");
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	check_hex(wait_pid(c), (SIGSTOP | PT_EVENT_STOP << 8) << 8 | 0x7f, "group-stop with EVENT_STOP|SIGSTOP");
	check_eq(pt(PTRACE_LISTEN, c, 0, 0), 0, "PTRACE_LISTEN in a group-stop succeeds");
	usleep(20000);
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "a listening tracee reports nothing new");
	check_eq(proc_state(c), 't', "a listening tracee stays stopped (State t)");
	struct user_regs_struct regs;
	check_err(pt(PTRACE_GETREGS, c, 0, (unsigned long)&regs), ESRCH,
		  "a listening tracee is not in a ptrace-stop: GETREGS is ESRCH");

	// INTERRUPT of a listening tracee re-traps it, still in group-stop.
	pt(PTRACE_INTERRUPT, c, 0, 0);
	check_hex(wait_pid(c), (SIGSTOP | PT_EVENT_STOP << 8) << 8 | 0x7f,
		  "INTERRUPT while listening re-traps with EVENT_STOP|SIGSTOP");

	// SIGCONT while listening ends the group-stop: the tracee traps
	// with EVENT_STOP|SIGTRAP to tell the tracer.
	pt(PTRACE_LISTEN, c, 0, 0);
	kill(c, SIGCONT);
	check_status(wait_pid(c), EVENT_STATUS(PT_EVENT_STOP), "SIGCONT while listening: EVENT_STOP|SIGTRAP");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGCONT), "then the SIGCONT signal-delivery-stop");
	pt(PTRACE_CONT, c, 0, 0);
	usleep(20000);
	check_eq(wait_state(c, 'S'), 1, "the tracee runs again after SIGCONT");
	kill_reap(c);

	// INTERRUPT needs a tracee of the caller.
	c = spawn_sleeper();
	check_err(pt(PTRACE_INTERRUPT, c, 0, 0), ESRCH, "PTRACE_INTERRUPT of an untraced child is ESRCH");
	kill_reap(c);

	return tap_done();
}
