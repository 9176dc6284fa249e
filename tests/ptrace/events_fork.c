// events_fork.c: PTRACE_EVENT_FORK, VFORK, VFORK_DONE and CLONE stops, the
// event message, and auto-attach of new children with the parent's options
// and seized-ness.
//
// Linux: kernel/fork.c:kernel_clone() (ptrace_event_pid), kernel/ptrace.c:
// ptrace_init_task() / __ptrace_link(); ptrace(2) "PTRACE_O_TRACEFORK",
// "Attaching and detaching" (auto-attach).
#include "tap.h"
#include <pthread.h>

static int t_fork(void *arg)
{
	(void)arg;
	pid_t p = fork();
	if (p == 0)
		_exit(7);
	int st;
	if (waitpid(p, &st, 0) != p)
		return 2;
	return st == EXITED(7) ? 0 : 1;
}

static int t_vfork(void *arg)
{
	(void)arg;
	pid_t p = vfork();
	if (p == 0)
		_exit(5);
	int st;
	if (waitpid(p, &st, 0) != p)
		return 2;
	return st == EXITED(5) ? 0 : 1;
}

static void *thread_fn(void *arg)
{
	return arg;
}

static int t_thread(void *arg)
{
	(void)arg;
	pthread_t t;
	void *res = NULL;
	if (pthread_create(&t, NULL, thread_fn, (void *)3) != 0)
		return 2;
	pthread_join(t, &res);
	return res == (void *)3 ? 0 : 1;
}

int main(void)
{
	tap_init();
	unsigned long msg = 0;
	int st;

	// Fork with TRACEFORK|TRACESYSGOOD.
	pid_t c = spawn_traceme(t_fork, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEFORK | PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_FORK), "fork gives PTRACE_EVENT_FORK");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t gc = (pid_t)msg;
	tap_track(gc);
	check_eq(gc > 0 && gc != c, 1, "GETEVENTMSG holds the new child's pid");
	check_status(wait_pid(gc), STOPPED(SIGSTOP), "the auto-attached child starts with SIGSTOP");
	check_eq(proc_tracer(gc) == getpid(), 1, "the child is traced by the tracer");
	pt(PTRACE_SYSCALL, gc, 0, 0);
	check_status(wait_pid(gc), STOPPED(SIGTRAP | 0x80), "the child inherits TRACESYSGOOD");
	pt(PTRACE_CONT, gc, 0, 0);
	check_status(wait_pid(gc), EXITED(7), "the tracer sees the child's exit");
	check_status(cont_end(c), EXITED(0), "the parent then reaps the child (status 7)");

	// Without TRACEFORK the child is not traced.
	c = spawn_traceme(t_fork, NULL);
	check_status(cont_end(c), EXITED(0), "without TRACEFORK no event and the child runs untraced");

	// A seized parent's children are seized: PTRACE_EVENT_STOP.
	struct gate g;
	c = spawn_gated(&g, t_fork, NULL);
	pt(PTRACE_SEIZE, c, 0, PTRACE_O_TRACEFORK);
	gate_open(&g);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_FORK), "a seized tracee's fork gives PTRACE_EVENT_FORK");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	gc = (pid_t)msg;
	tap_track(gc);
	check_status(wait_pid(gc), EVENT_STATUS(PT_EVENT_STOP), "its child starts in PTRACE_EVENT_STOP, not SIGSTOP");
	check_eq(pt(PTRACE_INTERRUPT, gc, 0, 0), 0, "the child is seized: PTRACE_INTERRUPT works");
	pt(PTRACE_CONT, gc, 0, 0);
	st = wait_pid(gc);
	if (st == EVENT_STATUS(PT_EVENT_STOP)) { // the interrupt, if it came before the exit
		pt(PTRACE_CONT, gc, 0, 0);
		st = wait_pid(gc);
	}
	check_status(st, EXITED(7), "the seized child runs to its exit");
	check_status(cont_end(c), EXITED(0), "the seized parent reaps it");

	// Vfork with TRACEVFORK|TRACEVFORKDONE.
	c = spawn_traceme(t_vfork, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_VFORK), "vfork gives PTRACE_EVENT_VFORK");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	gc = (pid_t)msg;
	tap_track(gc);
	check_status(wait_pid(gc), STOPPED(SIGSTOP), "the vfork child is auto-attached with SIGSTOP");
	pt(PTRACE_CONT, c, 0, 0);
	usleep(20000);
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "the vfork parent waits while the child is stopped");
	pt(PTRACE_CONT, gc, 0, 0);
	check_status(wait_pid(gc), EXITED(5), "the vfork child exits");
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_VFORK_DONE), "then the parent stops in VFORK_DONE");
	msg = 0;
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_eq((pid_t)msg == gc, 1, "VFORK_DONE's message is the child's pid");
	check_status(cont_end(c), EXITED(0), "the vfork parent runs on");

	// TRACEVFORK without TRACEFORK: vfork is traced, only as VFORK.
	c = spawn_traceme(t_fork, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEVFORK);
	check_status(cont_end(c), EXITED(0), "TRACEVFORK alone does not trace fork");

	// pthread_create with TRACECLONE.
	c = spawn_traceme(t_thread, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACECLONE);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_CLONE), "pthread_create gives PTRACE_EVENT_CLONE");
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t tid = (pid_t)msg;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d", c, tid);
	check_eq(access(path, F_OK), 0, "the message is a thread id of the tracee's group");
	check_status(wait_pid(tid), STOPPED(SIGSTOP), "the new thread starts with SIGSTOP");
	check_eq(proc_tracer(tid) == getpid(), 1, "the new thread is traced");
	// Resume both: the creator may hold libc locks the thread needs to exit.
	pt(PTRACE_CONT, tid, 0, 0);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(tid), EXITED(0), "the tracer sees the thread exit");
	check_status(wait_pid(c), EXITED(0), "the process joins its thread and exits");

	return tap_done();
}
