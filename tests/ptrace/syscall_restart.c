// syscall_restart.c: what a tracer sees when a signal interrupts a blocked
// syscall: the kernel-internal restart codes in rax at syscall-exit-stop
// (-ERESTARTSYS 512, -ERESTARTNOHAND 514, -ERESTART_RESTARTBLOCK 516), the
// signal-delivery-stop, the handler's rt_sigreturn, and the restarted
// syscall's new entry stop (restart_syscall for nanosleep).
//
// Linux: arch/x86/kernel/signal.c:arch_do_signal_or_restart(),
// arch/x86/kernel/signal_64.c:restore_sigcontext() (orig_ax = -1),
// handle_signal() (-EINTR or restart, SA_RESTART), kernel/signal.c;
// ptrace(2) "Syscall-stops" (ERESTART* seen by the tracer), signal(7)
// "Interruption of system calls and library functions by signal handlers".
#include "tap.h"
#include <time.h>

#define ERESTARTSYS_ 512
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516

static int pfd[2];
static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static void install(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = flags;
	sigaction(SIGUSR1, &sa, NULL);
}

// Each tracee returns 0 iff its syscall ended as expected.
static int t_read_restart(void *arg)
{
	(void)arg;
	install(SA_RESTART);
	char c;
	long r = syscall(SYS_read, pfd[0], &c, 1);
	return r == 1 && handled == 1 ? 0 : 1;
}

static int t_read_eintr(void *arg)
{
	(void)arg;
	install(0);
	char c;
	long r = syscall(SYS_read, pfd[0], &c, 1);
	return r == -1 && errno == EINTR && handled == 1 ? 0 : 1;
}

static int t_nanosleep(void *arg)
{
	(void)arg;
	struct timespec ts = {10, 0};
	syscall(SYS_nanosleep, &ts, NULL);
	return 0;
}

static int t_pause(void *arg)
{
	(void)arg;
	install(SA_RESTART);
	long r = syscall(SYS_pause);
	return r == -1 && errno == EINTR && handled == 1 ? 0 : 1;
}

// next resumes with PTRACE_SYSCALL (delivering sig) and returns the stop
// status; *nr and *ret get orig_rax and rax.
static int next(pid_t c, int sig, long *nr, long *ret)
{
	struct user_regs_struct r;
	pt(PTRACE_SYSCALL, c, 0, sig);
	int st = wait_pid(c);
	getregs(c, &r);
	*nr = (long)r.orig_rax;
	*ret = (long)r.rax;
	return st;
}

// block_in runs c to the entry of syscall nr, lets it block there and sends
// it SIGUSR1; it returns the status of the next stop (the exit stop).
static int block_in(pid_t c, long nr, long *got_nr, long *ret)
{
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	syscall_to(c, nr);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_state(c, 'S');
	kill(c, SIGUSR1);
	int st = wait_pid(c);
	struct user_regs_struct r;
	getregs(c, &r);
	*got_nr = (long)r.orig_rax;
	*ret = (long)r.rax;
	return st;
}

int main(void)
{
	tap_init();
	long nr, ret;
	int st;
	if (pipe(pfd) != 0)
		return 3;

	// read with an SA_RESTART handler.
	pid_t c = spawn_traceme(t_read_restart, NULL);
	st = block_in(c, SYS_read, &nr, &ret);
	ok(st == STOPPED(SIGTRAP | 0x80) && nr == SYS_read && ret == -ERESTARTSYS_,
	   "an interrupted read: syscall-exit-stop with rax -ERESTARTSYS", "got %s nr=%ld rax=%ld", desc(st), nr, ret);
	st = next(c, 0, &nr, &ret);
	check_status(st, STOPPED(SIGUSR1), "then the signal-delivery-stop");
	st = next(c, SIGUSR1, &nr, &ret);
	ok(st == STOPPED(SIGTRAP | 0x80) && nr == SYS_rt_sigreturn, "the handler returns through rt_sigreturn",
	   "got %s nr=%ld", desc(st), nr);
	next(c, 0, &nr, &ret); // rt_sigreturn's exit
	st = next(c, 0, &nr, &ret);
	ok(st == STOPPED(SIGTRAP | 0x80) && nr == SYS_read && ret == -ENOSYS,
	   "SA_RESTART: read is entered again (a new entry stop)", "got %s nr=%ld", desc(st), nr);
	if (write(pfd[1], "x", 1) != 1)
		return 3;
	st = next(c, 0, &nr, &ret);
	ok(nr == SYS_read && ret == 1, "the restarted read returns the byte", "got nr=%ld rax=%ld", nr, ret);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee saw one handler call and 1 byte");

	// read without SA_RESTART: EINTR after the handler.
	c = spawn_traceme(t_read_eintr, NULL);
	block_in(c, SYS_read, &nr, &ret);
	check_eq(ret, -ERESTARTSYS_, "without SA_RESTART the exit stop still shows -ERESTARTSYS");
	next(c, 0, &nr, &ret); // signal-delivery-stop
	next(c, SIGUSR1, &nr, &ret); // rt_sigreturn entry
	st = next(c, 0, &nr, &ret); // rt_sigreturn exit
	// restore_sigcontext() sets orig_ax to -1 so nothing restarts.
	ok(nr == -1 && ret == -EINTR, "rt_sigreturn's exit stop: orig_rax -1, rax the saved -EINTR",
	   "got nr=%ld rax=%ld", nr, ret);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee's read failed with EINTR");

	// A suppressed signal: the syscall restarts transparently.
	c = spawn_traceme(t_read_restart, NULL);
	block_in(c, SYS_read, &nr, &ret);
	next(c, 0, &nr, &ret); // signal-delivery-stop
	st = next(c, 0, &nr, &ret); // suppressed
	ok(st == STOPPED(SIGTRAP | 0x80) && nr == SYS_read && ret == -ENOSYS,
	   "a suppressed signal: read is entered again at once", "got %s nr=%ld", desc(st), nr);
	kill_reap(c);

	// nanosleep: -ERESTART_RESTARTBLOCK, restarted as restart_syscall.
	c = spawn_traceme(t_nanosleep, NULL);
	block_in(c, SYS_nanosleep, &nr, &ret);
	check_eq(ret, -ERESTART_RESTARTBLOCK_, "an interrupted nanosleep shows -ERESTART_RESTARTBLOCK");
	next(c, 0, &nr, &ret); // signal-delivery-stop
	st = next(c, 0, &nr, &ret);
	ok(st == STOPPED(SIGTRAP | 0x80) && nr == SYS_restart_syscall,
	   "with the signal suppressed it continues as restart_syscall", "got %s nr=%ld", desc(st), nr);
	kill_reap(c);

	// pause: -ERESTARTNOHAND; with a handler it fails with EINTR.
	c = spawn_traceme(t_pause, NULL);
	block_in(c, SYS_pause, &nr, &ret);
	check_eq(ret, -ERESTARTNOHAND_, "an interrupted pause shows -ERESTARTNOHAND");
	next(c, 0, &nr, &ret); // signal-delivery-stop
	pt(PTRACE_CONT, c, 0, SIGUSR1);
	check_status(wait_pid(c), EXITED(0), "with a handler (even SA_RESTART) pause fails with EINTR");

	return tap_done();
}
