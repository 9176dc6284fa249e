// exit_events.c: PTRACE_EVENT_EXIT: the stop before a task exits, its event
// message (the wait status to be), and SIGKILL around it.
//
// Linux: kernel/exit.c:do_exit() (ptrace_event(PTRACE_EVENT_EXIT, code)),
// kernel/signal.c:ptrace_stop() (no stop once SIGKILL is pending);
// ptrace(2) "PTRACE_O_TRACEEXIT".
#include "tap.h"
#include <pthread.h>

static int t_exit3(void *arg)
{
	(void)arg;
	return 3;
}

static int t_pause(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static void *thread_exit(void *arg)
{
	pthread_exit(arg);
}

static int t_thread(void *arg)
{
	(void)arg;
	pthread_t t;
	pthread_create(&t, NULL, thread_exit, NULL);
	pthread_join(t, NULL);
	// Stop until the tracer reaped the thread: a wait after exit_group began
	// would report the group's exit code for the thread.
	kill(getpid(), SIGSTOP);
	return 4;
}

int main(void)
{
	tap_init();
	unsigned long msg = 0;
	struct user_regs_struct r;

	// exit(3).
	pid_t c = spawn_traceme(t_exit3, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXIT), "exit gives PTRACE_EVENT_EXIT");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_hex(msg, EXITED(3), "its message is the exit wait status (3<<8)");
	check_eq(getregs(c, &r), 0, "registers can still be read in the exit stop");
	check_eq((long)r.orig_rax, SYS_exit_group, "orig_rax is exit_group");
	check_eq(proc_state(c), 't', "the exiting tracee shows State t");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(3), "continuing completes the exit");

	// Death by a delivered signal.
	c = spawn_traceme(t_pause, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
	pt(PTRACE_CONT, c, 0, SIGTERM);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXIT), "death by SIGTERM stops in PTRACE_EVENT_EXIT");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_hex(msg, KILLED(SIGTERM), "the message is the SIGTERM wait status");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), KILLED(SIGTERM), "the tracee dies by SIGTERM");

	// Once exit_group has begun the group is exiting
	// (SIGNAL_GROUP_EXIT), so kernel/signal.c:prepare_signal() drops a new
	// SIGKILL: the exit stop persists until the tracer resumes it.
	c = spawn_traceme(t_exit3, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	kill(c, SIGKILL);
	usleep(20000);
	int st;
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "SIGKILL to a group in exit_group does not end its exit stop");
	check_eq(proc_state(c), 't', "the tracee is still in the exit stop");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(3), "continuing completes the exit(3)");

	// SIGKILL of a running tracee still reports the exit stop.
	c = spawn_traceme(t_pause, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT);
	pt(PTRACE_CONT, c, 0, 0);
	kill(c, SIGKILL);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXIT), "a SIGKILLed tracee still stops in PTRACE_EVENT_EXIT");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_hex(msg, KILLED(SIGKILL), "the message is the SIGKILL wait status");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), KILLED(SIGKILL), "then dies by SIGKILL");

	// A thread's exit stop, then the group's.
	c = spawn_traceme(t_thread, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT | PTRACE_O_TRACECLONE);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // clone event
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t tid = (pid_t)msg;
	wait_pid(tid);
	pt(PTRACE_CONT, c, 0, 0);
	pt(PTRACE_CONT, tid, 0, 0);
	check_status(wait_pid(tid), EVENT_STATUS(PTRACE_EVENT_EXIT), "a thread exit stops in PTRACE_EVENT_EXIT");
	pt(PTRACE_GETEVENTMSG, tid, 0, (unsigned long)&msg);
	check_hex(msg, 0, "the thread's exit message is 0");
	pt(PTRACE_CONT, tid, 0, 0);
	check_status(wait_pid(tid), EXITED(0), "the thread exits");
	check_status(wait_pid(c), STOPPED(SIGSTOP), "the leader joins it and stops");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_EXIT), "then the leader's exit stop");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(4), "and the process exits with 4");

	return tap_done();
}
