// detach.c: PTRACE_DETACH: resuming with or without a signal, its errnos,
// and detaching from a group-stop (the tracee stays stopped).
//
// Linux: kernel/ptrace.c:ptrace_detach(), __ptrace_detach(); ptrace(2)
// "PTRACE_DETACH", "Attaching and detaching".
#include "tap.h"

static int pfd[2];
static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
	got = sig;
}

// t_handler installs a SIGUSR1 handler, stops, and reports whether it ran.
static int t_handler(void *arg)
{
	(void)arg;
	signal(SIGUSR1, on_usr1);
	kill(getpid(), SIGSTOP);
	for (int i = 0; i < 50 && !got; i++)
		usleep(1000);
	char c = got ? 'y' : 'n';
	return write(pfd[1], &c, 1) == 1 ? 0 : 1;
}

int main(void)
{
	tap_init();
	int st;
	char ch = 0;
	if (pipe(pfd) != 0)
		return 3;

	// Detach with 0.
	pid_t c = spawn_sleeper();
	attach_stopped(c);
	check_eq(pt(PTRACE_DETACH, c, 0, 0), 0, "PTRACE_DETACH from a stop succeeds");
	check_eq(wait_state(c, 'S'), 1, "the detached tracee runs");
	check_eq(proc_tracer(c), 0, "TracerPid is 0 after detach");
	check_err(pt(PTRACE_GETREGS, c, 0, (unsigned long)&st), ESRCH, "requests to a detached task are ESRCH");
	check_eq(pt(PTRACE_ATTACH, c, 0, 0), 0, "it can be attached again");
	wait_pid(c);

	// Errnos.
	pt(PTRACE_CONT, c, 0, 0);
	check_err(pt(PTRACE_DETACH, c, 0, 0), ESRCH, "PTRACE_DETACH of a running tracee is ESRCH");
	kill(c, SIGSTOP);
	wait_pid(c);
	check_err(pt(PTRACE_DETACH, c, 0, 100), EIO, "PTRACE_DETACH with an invalid signal is EIO");
	check_eq(proc_tracer(c) == getpid(), 1, "a failed detach leaves the tracee attached");

	// Detach with a fatal signal.
	check_eq(pt(PTRACE_DETACH, c, 0, SIGTERM), 0, "PTRACE_DETACH with SIGTERM succeeds");
	check_status(wait_pid(c), KILLED(SIGTERM), "the parent sees the tracee killed by SIGTERM");

	// Detach with a handled signal.
	c = spawn_traceme(t_handler, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // its own SIGSTOP
	pt(PTRACE_DETACH, c, 0, SIGUSR1);
	check_status(wait_pid(c), EXITED(0), "the detached tracee exits normally");
	if (read(pfd[0], &ch, 1) != 1)
		ch = '?';
	check_eq(ch, 'y', "PTRACE_DETACH with SIGUSR1 runs the tracee's handler");

	// Detach from a signal-delivery-stop with 0 discards the signal.
	c = spawn_traceme(t_handler, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	kill(c, SIGUSR1);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGUSR1), "SIGUSR1 signal-delivery-stop");
	pt(PTRACE_DETACH, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "detached with 0, the tracee runs on");
	if (read(pfd[0], &ch, 1) != 1)
		ch = '?';
	check_eq(ch, 'n', "the pending SIGUSR1 was discarded");

	// Detach during a group-stop leaves the task stopped.
	c = spawn_sleeper();
	attach_stopped(c);
	pt(PTRACE_CONT, c, 0, 0);
	kill(c, SIGSTOP);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	wait_pid(c); // group-stop
	check_eq(pt(PTRACE_DETACH, c, 0, 0), 0, "PTRACE_DETACH from a group-stop succeeds");
	check_eq(wait_state(c, 'T'), 1, "the detached task stays group-stopped (State T)");
	check_eq(proc_tracer(c), 0, "and is no longer traced");
	kill(c, SIGCONT);
	check_eq(wait_state(c, 'S'), 1, "SIGCONT resumes it");
	kill_reap(c);

	// Not our tracee.
	c = spawn_sleeper();
	check_err(pt(PTRACE_DETACH, c, 0, 0), ESRCH, "PTRACE_DETACH of an untraced child is ESRCH");
	kill_reap(c);

	return tap_done();
}
