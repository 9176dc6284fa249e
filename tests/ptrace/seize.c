// seize.c: PTRACE_SEIZE: no stop at attach, options given at attach, the
// errnos of a bad seize, and how seized tracees report group-stops.
//
// Linux: kernel/ptrace.c:ptrace_attach() (seize path), kernel/signal.c:
// do_jobctl_trap(); ptrace(2) "PTRACE_SEIZE", "Group-stop".
#include "tap.h"

static volatile int spin = 1;

static int run_getppid_loop(void *arg)
{
	(void)arg;
	while (spin)
		syscall(SYS_getppid);
	return 0;
}

int main(void)
{
	tap_init();
	int st;

	// Seizing a running child does not stop it.
	pid_t c = spawn_sleeper();
	check_eq(pt(PTRACE_SEIZE, c, 0, 0), 0, "PTRACE_SEIZE of a running child succeeds");
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "a seized tracee is not stopped");
	check_eq(proc_tracer(c) == getpid(), 1, "TracerPid names the seizing tracer");
	check_err(pt(PTRACE_SEIZE, c, 0, 0), EPERM, "seizing own tracee again is EPERM");
	kill_reap(c);

	// Argument checks (kernel/ptrace.c:ptrace_attach).
	c = spawn_sleeper();
	check_err(pt(PTRACE_SEIZE, c, 1, 0), EIO, "PTRACE_SEIZE with a non-zero addr is EIO");
	check_err(pt(PTRACE_SEIZE, c, 0, 0x80000000ul), EIO,
		  "PTRACE_SEIZE with unknown option bits is EIO");
	check_eq(proc_tracer(c), 0, "a failed seize leaves the child untraced");

	// INTERRUPT and LISTEN are for seized tracees only: EIO for one
	// attached with PTRACE_ATTACH.
	check_eq(pt(PTRACE_ATTACH, c, 0, 0), 0, "PTRACE_ATTACH of the same child");
	wait_pid(c);
	check_err(pt(PTRACE_INTERRUPT, c, 0, 0), EIO, "PTRACE_INTERRUPT of an attached (not seized) tracee is EIO");
	check_err(pt(PTRACE_LISTEN, c, 0, 0), EIO, "PTRACE_LISTEN of an attached (not seized) tracee is EIO");
	kill_reap(c);

	// Options passed to SEIZE take effect: TRACESYSGOOD marks syscall stops.
	struct gate g;
	c = spawn_gated(&g, run_getppid_loop, NULL);
	pt(PTRACE_SEIZE, c, 0, PTRACE_O_TRACESYSGOOD);
	gate_open(&g);
	pt(PTRACE_INTERRUPT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PT_EVENT_STOP), "INTERRUPT of a seized tracee is an event stop");
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP | 0x80), "SEIZE options: TRACESYSGOOD marks syscall stops");
	kill_reap(c);

	// SIGSTOP to a seized tracee: signal-delivery-stop first, then a
	// group-stop reported as PTRACE_EVENT_STOP with the stop signal.
	c = spawn_sleeper();
	pt(PTRACE_SEIZE, c, 0, 0);
	kill(c, SIGSTOP);
	check_status(wait_pid(c), STOPPED(SIGSTOP), "SIGSTOP gives a signal-delivery-stop first");
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	st = wait_pid(c);
	check_hex(st, (SIGSTOP | PT_EVENT_STOP << 8) << 8 | 0x7f,
		  "injected SIGSTOP gives PTRACE_EVENT_STOP with SIGSTOP");
	siginfo_t si;
	memset(&si, 0, sizeof si);
	long r = pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	ok(r == 0 && si.si_signo == SIGSTOP && si.si_code == (SIGSTOP | PT_EVENT_STOP << 8),
	   "GETSIGINFO in a seized group-stop has si_code SIGSTOP|EVENT_STOP<<8",
	   "got r=%ld signo=%d code=%#x", r, si.si_signo, si.si_code);
	check_eq(proc_state(c), 't', "a seized tracee in group-stop shows State t");
	kill_reap(c);

	// Seizing a child that is already group-stopped makes it trap.
	c = spawn_sleeper();
	kill(c, SIGSTOP);
	waitpid(c, &st, WUNTRACED);
	check_status(st, STOPPED(SIGSTOP), "the untraced child group-stops");
	pt(PTRACE_SEIZE, c, 0, 0);
	check_hex(wait_pid(c), (SIGSTOP | PT_EVENT_STOP << 8) << 8 | 0x7f,
		  "seizing a stopped child reports PTRACE_EVENT_STOP with SIGSTOP");
	kill_reap(c);

	// A zombie cannot be seized.
	c = xfork();
	if (c == 0)
		_exit(0);
	waitid(P_PID, c, &si, WEXITED | WNOWAIT);
	check_err(pt(PTRACE_SEIZE, c, 0, 0), EPERM, "PTRACE_SEIZE of a zombie is EPERM");
	wait_pid(c);

	return tap_done();
}
