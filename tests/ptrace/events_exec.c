// events_exec.c: execve under ptrace: PTRACE_EVENT_EXEC and its message
// (the former thread id), the legacy SIGTRAP after execve, and execve from a
// non-leader thread of a traced process.
//
// Linux: fs/exec.c:exec_binprm() (ptrace_event(PTRACE_EVENT_EXEC, old_vpid)),
// include/linux/ptrace.h:ptrace_event() (the SIGTRAP for PT_PTRACED without
// PT_SEIZED), fs/exec.c:de_thread(); ptrace(2) "execve(2) under ptrace".
#include "tap.h"
#include <pthread.h>

#define CHILD_CODE 33

static int t_exec(void *arg)
{
	(void)arg;
	char *argv[] = {"events_exec", "exec-child", NULL};
	execv("/proc/self/exe", argv);
	return 99;
}

static void *thread_exec(void *arg)
{
	(void)arg;
	t_exec(NULL);
	return NULL;
}

static int t_mt_exec(void *arg)
{
	(void)arg;
	pthread_t t;
	pthread_create(&t, NULL, thread_exec, NULL);
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
		return CHILD_CODE;
	tap_init();
	unsigned long msg = 0;
	siginfo_t si;

	// TRACEEXEC.
	pid_t c = spawn_traceme(t_exec, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXEC);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXEC), "execve gives PTRACE_EVENT_EXEC");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_eq((pid_t)msg == c, 1, "its message is the former thread id (the leader's)");
	struct user_regs_struct r;
	getregs(c, &r);
	check_eq((long)r.orig_rax, SYS_execve, "the exec stop is inside execve (orig_rax)");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "with TRACEEXEC no extra SIGTRAP follows");

	// No TRACEEXEC, attached with TRACEME: a plain SIGTRAP after execve.
	c = spawn_traceme(t_exec, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "without TRACEEXEC execve raises SIGTRAP");
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	ok(si.si_signo == SIGTRAP && si.si_code == SI_USER && si.si_pid == c,
	   "the SIGTRAP is SI_USER sent by the tracee itself", "got signo=%d code=%d self=%d", si.si_signo,
	   si.si_code, si.si_pid == c);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "suppressing it lets the new image run");

	// Delivering that SIGTRAP kills the new image.
	c = spawn_traceme(t_exec, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, SIGTRAP);
	check_status(wait_pid(c), KILLED(SIGTRAP), "delivering the post-exec SIGTRAP kills the tracee");

	// Seized without TRACEEXEC: nothing is reported.
	struct gate g;
	c = spawn_gated(&g, t_exec, NULL);
	pt(PTRACE_SEIZE, c, 0, 0);
	gate_open(&g);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "a seized tracee gets no SIGTRAP after execve");

	// Seized with TRACEEXEC.
	c = spawn_gated(&g, t_exec, NULL);
	pt(PTRACE_SEIZE, c, 0, PTRACE_O_TRACEEXEC);
	gate_open(&g);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXEC), "a seized tracee reports PTRACE_EVENT_EXEC");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "and runs the new image");

	// execve from a non-leader thread.
	c = spawn_traceme(t_mt_exec, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // PTRACE_EVENT_CLONE
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t tid = (pid_t)msg;
	wait_pid(tid); // its SIGSTOP
	pt(PTRACE_CONT, tid, 0, 0);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXEC),
		     "exec from a thread is reported under the leader's pid");
	msg = 0;
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_eq((pid_t)msg == tid, 1, "GETEVENTMSG holds the exec'ing thread's old tid");
	int st;
	check_err(waitpid(tid, &st, __WALL | WNOHANG), ECHILD, "the old tid no longer exists");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "the new image runs as the leader");

	return tap_done();
}
