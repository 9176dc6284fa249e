// wait_tracer.c: wait(2) from a tracer: stops of tracees that are not its
// children, exit reporting to the real parent only after the tracer reaped,
// __WALL/__WCLONE, WNOHANG, WNOWAIT, waitid and SIGCHLD with CLD_TRAPPED.
//
// Linux: kernel/exit.c:do_wait(), eligible_child(), wait_task_stopped(),
// wait_task_zombie() (ptrace reaping then notifying the real parent),
// kernel/signal.c:do_notify_parent_cldstop(); ptrace(2), wait(2).
#include "tap.h"
#include <pthread.h>

static void *thread_idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int t_threads(void *arg)
{
	(void)arg;
	pthread_t t;
	pthread_create(&t, NULL, thread_idle, NULL);
	for (;;)
		pause();
	return 0;
}

static int t_exit5(void *arg)
{
	(void)arg;
	return 5;
}

// Pipes between the test and the non-parent tracer: to (test->tracer) and
// from (tracer->test).
static int to[2], from[2];

static void say(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(90);
}

static char hear(int fd)
{
	char c = 0;
	while (read(fd, &c, 1) == -1 && errno == EINTR)
		;
	return c;
}

int main(void)
{
	tap_init();
	int st;
	siginfo_t si;

	// A tracer that is not the parent; the parent sees the exit only
	// after the tracer reaped it.
	if (pipe(to) || pipe(from))
		return 3;
	struct gate g;
	pid_t c = spawn_gated(&g, t_exit5, NULL);
	pid_t tr = xfork();
	if (tr == 0) {
		int good = 1;
		good &= attach_stopped(c) == 0;
		good &= pt(PTRACE_CONT, c, 0, 0) == 0;
		say(from[1], good ? 'a' : 'A');
		// Wait for the exit without reaping it, tell the test, then reap.
		memset(&si, 0, sizeof si);
		good &= waitid(P_PID, c, &si, WEXITED | WNOWAIT | __WALL) == 0 && si.si_code == CLD_EXITED;
		say(from[1], good ? 'e' : 'E');
		hear(to[0]);
		good &= wait_pid(c) == EXITED(5);
		_exit(good ? 0 : 1);
	}
	check_eq(hear(from[0]), 'a', "a non-parent tracer attaches and waits for the SIGSTOP stop");
	check_eq(waitpid(c, &st, WNOHANG | WUNTRACED), 0, "the real parent is not told of ptrace-stops");
	gate_open(&g);
	check_eq(hear(from[0]), 'e', "the tracer sees the tracee's exit with waitid(WNOWAIT)");
	usleep(20000);
	check_eq(waitpid(c, &st, WNOHANG), 0, "the real parent sees no exit before the tracer reaps");
	say(to[1], 'r');
	check_status(wait_pid(tr), EXITED(0), "the tracer reaps the exit status 5");
	check_status(wait_pid(c), EXITED(5), "then the real parent reaps it too");

	// WNOHANG, WNOWAIT, waitid of ptrace-stops.
	c = spawn_sleeper();
	pt(PTRACE_SEIZE, c, 0, 0);
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "WNOHANG returns 0 while the tracee runs");
	// SIGCHLD for ptrace-stops: block it and take it synchronously.
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	struct timespec ts = {2, 0};
	kill(c, SIGUSR1);
	memset(&si, 0, sizeof si);
	int sig = sigtimedwait(&set, &si, &ts);
	ok(sig == SIGCHLD && si.si_code == CLD_TRAPPED && si.si_status == SIGUSR1 && si.si_pid == c,
	   "a signal-delivery-stop sends the tracer SIGCHLD, CLD_TRAPPED, si_status SIGUSR1",
	   "got sig=%d code=%d status=%d", sig, si.si_code, si.si_status);
	check_status(wait_pid(c), STOPPED(SIGUSR1), "the stop is then reported by wait");
	pt(PTRACE_CONT, c, 0, 0);
	pt(PTRACE_INTERRUPT, c, 0, 0);
	memset(&si, 0, sizeof si);
	sig = sigtimedwait(&set, &si, &ts);
	// ptrace_do_notify() reports event stops of seized tracees as CLD_STOPPED.
	ok(sig == SIGCHLD && si.si_code == CLD_STOPPED && si.si_pid == c,
	   "an interrupt stop sends SIGCHLD with CLD_STOPPED", "got sig=%d code=%d", sig, si.si_code);
	sigprocmask(SIG_SETMASK, &old, NULL);
	memset(&si, 0, sizeof si);
	check_eq(waitid(P_PID, c, &si, WSTOPPED | WNOWAIT), 0, "waitid(WSTOPPED|WNOWAIT) reports the stop");
	ok(si.si_code == CLD_TRAPPED && si.si_status == (SIGTRAP | PT_EVENT_STOP << 8),
	   "with CLD_TRAPPED and si_status SIGTRAP|EVENT_STOP<<8", "got code=%d status=%#x", si.si_code,
	   si.si_status);
	check_status(wait_pid(c), EVENT_STATUS(PT_EVENT_STOP), "after WNOWAIT the stop is still reported");
	check_eq(waitpid(c, &st, __WALL | WNOHANG), 0, "a reported stop is not reported twice");
	pt(PTRACE_CONT, c, 0, 0);
	pt(PTRACE_INTERRUPT, c, 0, 0);
	memset(&si, 0, sizeof si);
	check_eq(waitid(P_PID, c, &si, WEXITED), 0, "a tracer's waitid(WEXITED) also reports ptrace-stops");
	check_eq(si.si_code, CLD_TRAPPED, "as CLD_TRAPPED");
	pt(PTRACE_CONT, c, 0, 0);
	kill(c, SIGKILL);
	memset(&si, 0, sizeof si);
	waitid(P_PID, c, &si, WSTOPPED | WEXITED);
	ok(si.si_code == CLD_KILLED && si.si_status == SIGKILL, "waitid(WSTOPPED|WEXITED) reports the kill",
	   "got code=%d status=%d", si.si_code, si.si_status);

	// Traced threads and __WALL/__WCLONE.
	c = spawn_traceme(t_threads, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACECLONE);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // clone event
	unsigned long msg = 0;
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	pid_t tid = (pid_t)msg;
	check_eq(waitpid(tid, &st, __WCLONE), tid, "__WCLONE waits for a traced thread");
	check_status(st, STOPPED(SIGSTOP), "and reports its SIGSTOP");
	pt(PTRACE_CONT, tid, 0, 0);
	pt(PTRACE_CONT, c, 0, 0);
	syscall(SYS_tgkill, c, tid, SIGUSR1);
	syscall(SYS_tgkill, c, c, SIGUSR1);
	pid_t who = waitpid(-1, &st, __WALL);
	pid_t who2 = waitpid(-1, &st, __WALL);
	ok((who == c && who2 == tid) || (who == tid && who2 == c),
	   "__WALL reports the stops of both traced threads", "got %d %d", who == c, who2 == tid);
	kill(c, SIGKILL);
	wait_pid(tid);
	wait_pid(c);

	// An untraced clone child (exit signal 0) needs __WCLONE.
	pid_t cl = (pid_t)syscall(SYS_clone, 0, 0, 0, 0, 0);
	if (cl == 0)
		_exit(6);
	tap_track(cl);
	usleep(10000);
	check_err(waitpid(cl, &st, WNOHANG), ECHILD, "waitpid without __WCLONE ignores a clone child");
	check_eq(waitpid(cl, &st, __WCLONE), cl, "__WCLONE reaps it");
	check_status(st, EXITED(6), "with its status");

	// waitpid(-1) by a non-parent tracer sees its tracee.
	c = spawn_sleeper();
	tr = xfork();
	if (tr == 0) {
		pt(PTRACE_ATTACH, c, 0, 0);
		int s2;
		pid_t w = waitpid(-1, &s2, __WALL);
		_exit(w == c && s2 == STOPPED(SIGSTOP) ? 0 : 1);
	}
	check_status(wait_pid(tr), EXITED(0), "waitpid(-1) of a non-parent tracer reports its tracee");
	kill_reap(c);

	return tap_done();
}
