// attach.c: PTRACE_TRACEME, PTRACE_ATTACH and PTRACE_KILL, and the errnos of
// requests made to tasks that are not stopped tracees of the caller.
//
// Linux: kernel/ptrace.c:ptrace_attach(), ptrace_traceme(),
// ptrace_check_attach(); ptrace(2) "Attaching and detaching", "ERRORS".
#include "tap.h"
#include <pthread.h>

static int traceme_twice(void *arg)
{
	(void)arg;
	// Already traced by spawn_traceme: a second PTRACE_TRACEME is EPERM.
	long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
	return r == -1 && errno == EPERM ? 0 : 1;
}

static void *thread_attach_leader(void *arg)
{
	pid_t leader = *(pid_t *)arg;
	long r = pt(PTRACE_ATTACH, leader, 0, 0);
	return (void *)(long)(r == -1 ? errno : 0);
}

static void *thread_idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	tap_init();

	// PTRACE_TRACEME then a self-sent SIGSTOP stops the child and the
	// parent sees the signal-delivery-stop; a second TRACEME fails.
	pid_t c = spawn_traceme(traceme_twice, NULL);
	ok(c > 0, "TRACEME child reports its SIGSTOP to the parent", "no SIGSTOP stop");
	if (c > 0) {
		pt(PTRACE_CONT, c, 0, 0);
		check_status(wait_pid(c), EXITED(0), "second PTRACE_TRACEME fails with EPERM");
	} else {
		ok(0, "second PTRACE_TRACEME fails with EPERM", "no tracee");
	}

	// PTRACE_ATTACH to a running child.
	c = spawn_sleeper();
	check_eq(pt(PTRACE_ATTACH, c, 0, 0), 0, "PTRACE_ATTACH to a running child succeeds");
	check_status(wait_pid(c), STOPPED(SIGSTOP), "attach stops the tracee with SIGSTOP");
	check_eq(proc_tracer(c) == getpid(), 1, "TracerPid names the tracer after attach");
	check_err(pt(PTRACE_ATTACH, c, 0, 0), EPERM, "PTRACE_ATTACH to own tracee is EPERM");
	check_err(pt(PTRACE_SEIZE, c, 0, 0), EPERM, "PTRACE_SEIZE of own tracee is EPERM");
	check_err(pt(0x7777, c, 0, 0), EIO, "unknown request to a stopped tracee is EIO");
	check_err(pt(PTRACE_CONT, c, 0, 65), EIO, "PTRACE_CONT with an invalid signal is EIO");

	// A running tracee is not stopped: requests other than KILL and
	// INTERRUPT fail with ESRCH.
	pt(PTRACE_CONT, c, 0, 0);
	struct user_regs_struct regs;
	check_err(pt(PTRACE_GETREGS, c, 0, (unsigned long)&regs), ESRCH,
		  "PTRACE_GETREGS of a running tracee is ESRCH");
	long word;
	check_err(pt(PTRACE_PEEKDATA, c, (unsigned long)&word, (unsigned long)&word), ESRCH,
		  "PTRACE_PEEKDATA of a running tracee is ESRCH");

	// PTRACE_KILL works on a running tracee as well.
	check_eq(pt(PTRACE_KILL, c, 0, 0), 0, "PTRACE_KILL of a running tracee succeeds");
	check_status(wait_pid(c), KILLED(SIGKILL), "PTRACE_KILL ends the tracee with SIGKILL");

	// ... and of a stopped one.
	c = spawn_traceme(NULL, NULL);
	pt(PTRACE_KILL, c, 0, 0);
	check_status(wait_pid(c), KILLED(SIGKILL), "PTRACE_KILL of a stopped tracee kills it");

	// A non-traced child, and pid 0.
	c = spawn_sleeper();
	check_err(pt(PTRACE_CONT, c, 0, 0), ESRCH, "PTRACE_CONT of an untraced child is ESRCH");
	check_err(pt(PTRACE_GETREGS, 0, 0, (unsigned long)&regs), ESRCH,
		  "PTRACE_GETREGS of pid 0 is ESRCH");
	kill_reap(c);

	// A reaped pid.
	check_err(pt(PTRACE_ATTACH, c, 0, 0), ESRCH, "PTRACE_ATTACH to a reaped pid is ESRCH");

	// A zombie cannot be attached (ptrace_attach checks exit_state).
	c = xfork();
	if (c == 0)
		_exit(0);
	siginfo_t si;
	waitid(P_PID, c, &si, WEXITED | WNOWAIT);
	check_err(pt(PTRACE_ATTACH, c, 0, 0), EPERM, "PTRACE_ATTACH to a zombie is EPERM");
	wait_pid(c);

	// Attaching to oneself.
	check_err(pt(PTRACE_ATTACH, getpid(), 0, 0), EPERM, "PTRACE_ATTACH to self is EPERM");

	// A thread attaching to its own thread group leader.
	pid_t me = getpid();
	pthread_t th;
	void *res;
	pthread_create(&th, NULL, thread_attach_leader, &me);
	pthread_join(th, &res);
	check_eq((long)res, EPERM, "PTRACE_ATTACH to the own thread group is EPERM");

	// Attaching a thread of another process attaches that thread only.
	c = xfork();
	if (c == 0) {
		pthread_t t2;
		pthread_create(&t2, NULL, thread_idle, NULL);
		for (;;)
			pause();
	}
	pid_t tid = other_thread(c);
	if (tid > 0) {
		check_eq(pt(PTRACE_ATTACH, tid, 0, 0), 0, "PTRACE_ATTACH to a non-leader thread");
		check_status(wait_pid(tid), STOPPED(SIGSTOP), "the attached thread stops with SIGSTOP");
		check_err(pt(PTRACE_GETREGS, c, 0, (unsigned long)&regs), ESRCH,
			  "its leader is not traced: ESRCH");
	} else {
		ok(0, "PTRACE_ATTACH to a non-leader thread", "thread not found");
		ok(0, "the attached thread stops with SIGSTOP", "thread not found");
		ok(0, "its leader is not traced: ESRCH", "thread not found");
	}
	// A task stopped under another tracer is not ours: ESRCH, and it
	// cannot be attached twice: EPERM.
	pid_t s = spawn_sleeper();
	int p[2];
	char ch = 0;
	if (pipe(p) != 0)
		return 3;
	pid_t tr = xfork();
	if (tr == 0) {
		char r = attach_stopped(s) == 0 ? 'a' : 'A';
		if (write(p[1], &r, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], &ch, 1) != 1)
		ch = '?';
	ok(ch == 'a', "another process attaches a sibling", "got %c", ch);
	check_err(pt(PTRACE_GETREGS, s, 0, (unsigned long)&regs), ESRCH,
		  "GETREGS of another tracer's stopped tracee is ESRCH");
	check_err(pt(PTRACE_ATTACH, s, 0, 0), EPERM, "attaching another tracer's tracee is EPERM");
	kill_reap(tr);
	kill_reap(s);

	// The traced thread's exit is reported to us and must be reaped before
	// the group's exit can be.
	kill(c, SIGKILL);
	if (tid > 0)
		wait_pid(tid);
	wait_pid(c);

	return tap_done();
}
