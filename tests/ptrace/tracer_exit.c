// tracer_exit.c: what happens to tracees when their tracer exits: detached
// and resumed, killed with PTRACE_O_EXITKILL, or left group-stopped.
//
// Linux: kernel/ptrace.c:exit_ptrace(), __ptrace_detach(), __ptrace_unlink()
// (a group-stopped tracee is put back into TASK_STOPPED); ptrace(2)
// "PTRACE_O_EXITKILL", "If the tracer dies...".
#include "tap.h"

enum mode { PLAIN, EXITKILL, GROUPSTOP, EXITKILL_DETACHED, RUNNING };

// tracer forks a process that attaches target in the given way and exits;
// it returns the tracer's exit status (0 iff its steps worked).
static int tracer(pid_t target, enum mode m)
{
	pid_t t = xfork();
	if (t == 0) {
		int ok = 1;
		if (m == EXITKILL || m == EXITKILL_DETACHED || m == RUNNING) {
			ok &= pt(PTRACE_SEIZE, target, 0, m == RUNNING ? 0 : PT_O_EXITKILL) == 0;
			ok &= pt(PTRACE_INTERRUPT, target, 0, 0) == 0;
			ok &= wait_pid(target) == EVENT_STATUS(PT_EVENT_STOP);
			if (m == EXITKILL_DETACHED)
				ok &= pt(PTRACE_DETACH, target, 0, 0) == 0;
			if (m == RUNNING)
				ok &= pt(PTRACE_CONT, target, 0, 0) == 0;
		} else {
			ok &= attach_stopped(target) == 0;
			if (m == GROUPSTOP) {
				ok &= pt(PTRACE_CONT, target, 0, SIGSTOP) == 0;
				ok &= wait_pid(target) == STOPPED(SIGSTOP);
			}
		}
		_exit(ok ? 0 : 1);
	}
	return wait_pid(t);
}

int main(void)
{
	tap_init();
	int st;

	// A tracee in a ptrace-stop is detached and resumed.
	pid_t c = spawn_sleeper();
	check_status(tracer(c, PLAIN), EXITED(0), "a tracer attaches and exits");
	check_eq(wait_state(c, 'S'), 1, "its tracee is resumed");
	check_eq(proc_tracer(c), 0, "and untraced");
	check_eq(pt(PTRACE_ATTACH, c, 0, 0), 0, "another tracer can attach it");
	kill_reap(c);

	// PTRACE_O_EXITKILL.
	c = spawn_sleeper();
	check_status(tracer(c, EXITKILL), EXITED(0), "a tracer seizes with EXITKILL and exits");
	check_status(wait_pid(c), KILLED(SIGKILL), "its tracee is killed with SIGKILL");

	// EXITKILL does not apply after a detach.
	c = spawn_sleeper();
	check_status(tracer(c, EXITKILL_DETACHED), EXITED(0), "an EXITKILL tracer detaches then exits");
	usleep(20000);
	ok(waitpid(c, &st, WNOHANG) == 0 && wait_state(c, 'S'), "the detached tracee lives on",
	   "state %c", proc_state(c));
	kill_reap(c);

	// A group-stopped tracee stays stopped.
	c = spawn_sleeper();
	check_status(tracer(c, GROUPSTOP), EXITED(0), "a tracer leaves its tracee in group-stop and exits");
	check_eq(wait_state(c, 'T'), 1, "the tracee stays stopped (State T)");
	kill(c, SIGCONT);
	check_eq(wait_state(c, 'S'), 1, "SIGCONT resumes it");
	kill_reap(c);

	// A running tracee keeps running.
	c = spawn_sleeper();
	check_status(tracer(c, RUNNING), EXITED(0), "a tracer of a running tracee exits");
	usleep(20000);
	ok(wait_state(c, 'S') && proc_tracer(c) == 0, "the tracee keeps running, untraced", "state %c",
	   proc_state(c));
	kill_reap(c);

	return tap_done();
}
