// races.c: ptrace against concurrent events: SIGKILL while stopped, tracer
// death with several stopped tracees, execve in a multi-threaded tracee,
// detach racing a group-stop, vfork completion with TRACEVFORKDONE, repeated
// interrupts.
//
// Linux: kernel/signal.c:prepare_signal()/signal_wake_up() (SIGKILL wakes
// TASK_TRACED), kernel/ptrace.c:exit_ptrace(), fs/exec.c:de_thread(),
// kernel/fork.c:wait_for_vfork_done(); ptrace(2).
#include "tap.h"
#include <pthread.h>

#define CHILD_CODE 33

static int t_loop(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_getppid);
	return 0;
}

static void *thread_idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *thread_exec(void *arg)
{
	(void)arg;
	usleep(20000);
	char *argv[] = {"races", "exec-child", NULL};
	execv("/proc/self/exe", argv);
	return NULL;
}

static int t_mt_exec(void *arg)
{
	(void)arg;
	pthread_t a, b;
	pthread_create(&a, NULL, thread_idle, NULL);
	pthread_create(&b, NULL, thread_exec, NULL);
	for (;;)
		pause();
	return 0;
}

static int t_vfork_exec(void *arg)
{
	(void)arg;
	pid_t p = vfork();
	if (p == 0) {
		char *argv[] = {"races", "exec-child", NULL};
		execv("/proc/self/exe", argv);
		_exit(99);
	}
	int st;
	waitpid(p, &st, 0);
	return st == EXITED(CHILD_CODE) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
		return CHILD_CODE;
	tap_init();
	int st;

	// SIGKILL ends any ptrace-stop at once.
	pid_t c = spawn_traceme(NULL, NULL);
	kill(c, SIGKILL);
	check_status(wait_pid(c), KILLED(SIGKILL), "SIGKILL ends a signal-delivery-stop");
	c = spawn_traceme(t_loop, NULL);
	syscall_to(c, SYS_getppid);
	kill(c, SIGKILL);
	check_status(wait_pid(c), KILLED(SIGKILL), "SIGKILL ends a syscall-enter-stop");
	c = spawn_sleeper();
	pt(PTRACE_SEIZE, c, 0, 0);
	kill(c, SIGSTOP);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, SIGSTOP);
	wait_pid(c);
	pt(PTRACE_LISTEN, c, 0, 0);
	kill(c, SIGKILL);
	check_status(wait_pid(c), KILLED(SIGKILL), "SIGKILL ends a listening group-stop");
	c = spawn_traceme(t_loop, NULL);
	syscall_to(c, SYS_getppid);
	syscall(SYS_tgkill, c, c, SIGKILL);
	check_status(wait_pid(c), KILLED(SIGKILL), "tgkill(SIGKILL) ends a stop too");

	// A tracer dies with three stopped tracees.
	pid_t k[3];
	for (int i = 0; i < 3; i++)
		k[i] = spawn_sleeper();
	pid_t tr = xfork();
	if (tr == 0) {
		for (int i = 0; i < 3; i++)
			if (attach_stopped(k[i]) != 0)
				_exit(1);
		kill(getpid(), SIGKILL);
	}
	check_status(wait_pid(tr), KILLED(SIGKILL), "a tracer is killed with three tracees stopped");
	int running = 0, untraced = 0;
	for (int i = 0; i < 3; i++) {
		running += wait_state(k[i], 'S');
		untraced += proc_tracer(k[i]) == 0;
	}
	check_eq(running, 3, "all three tracees resume");
	check_eq(untraced, 3, "all three are untraced");
	for (int i = 0; i < 3; i++)
		kill_reap(k[i]);

	// execve from one thread while another thread is traced too.
	c = spawn_traceme(t_mt_exec, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC);
	pt(PTRACE_CONT, c, 0, 0);
	int execs = 0, thread_exits = 0, others = 0;
	for (int i = 0; i < 20 && !(execs && thread_exits == 1); i++) {
		pid_t w = waitpid(-1, &st, __WALL);
		if (w == c && st == EVENT_STATUS(PTRACE_EVENT_EXEC)) {
			execs++;
			continue; // leave it stopped until the rest is collected
		}
		if (w != c && WIFEXITED(st)) {
			thread_exits++;
			continue;
		}
		if (WIFSTOPPED(st) && (st == EVENT_STATUS(PTRACE_EVENT_CLONE) || st == STOPPED(SIGSTOP)))
			pt(PTRACE_CONT, w, 0, 0);
		else
			others++;
	}
	check_eq(execs, 1, "exec from a thread: one PTRACE_EVENT_EXEC under the leader's pid");
	check_eq(thread_exits, 1, "the idle thread is reported as exited; the old leader is not reported");
	check_eq(others, 0, "nothing else is reported");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(CHILD_CODE), "the new image runs");

	// Detach racing a group-stop: the task ends up stopped either way.
	c = spawn_sleeper();
	attach_stopped(c);
	pt(PTRACE_CONT, c, 0, SIGSTOP); // injected: group-stop in progress
	if (pt(PTRACE_DETACH, c, 0, 0) != 0) {
		wait_pid(c);
		pt(PTRACE_DETACH, c, 0, 0);
	}
	check_eq(wait_state(c, 'T'), 1, "detach racing a group-stop leaves the task stopped");
	kill_reap(c);

	// Vfork + exec with TRACEVFORKDONE.
	c = spawn_traceme(t_vfork_exec, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_VFORK), "vfork event");
	unsigned long msg;
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t vc = (pid_t)msg;
	tap_track(vc);
	wait_pid(vc); // SIGSTOP
	pt(PTRACE_CONT, vc, 0, 0);
	check_status(wait_pid(vc), STOPPED(SIGTRAP), "the vfork child execs and stops with the exec SIGTRAP");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_VFORK_DONE),
		     "the parent's VFORK_DONE comes while the child is still stopped");
	pt(PTRACE_CONT, vc, 0, 0);
	check_status(wait_pid(vc), EXITED(CHILD_CODE), "the child runs its new image");
	check_status(cont_end(c), EXITED(0), "the parent reaps it");

	// Twenty interrupts of a busy tracee: one stop each.
	struct gate g;
	c = spawn_gated(&g, t_loop, NULL);
	pt(PTRACE_SEIZE, c, 0, 0);
	gate_open(&g);
	int stops = 0;
	for (int i = 0; i < 20; i++) {
		pt(PTRACE_INTERRUPT, c, 0, 0);
		if (wait_pid(c) == EVENT_STATUS(PT_EVENT_STOP))
			stops++;
		pt(PTRACE_CONT, c, 0, 0);
	}
	usleep(10000);
	ok(stops == 20 && waitpid(c, &st, __WALL | WNOHANG) == 0, "20 interrupts give exactly 20 stops",
	   "got %d", stops);
	kill_reap(c);

	return tap_done();
}
