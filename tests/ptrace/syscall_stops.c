// syscall_stops.c: PTRACE_SYSCALL entry and exit stops, TRACESYSGOOD, and a
// tracer changing the syscall number, arguments and result.
//
// Linux: kernel/entry/syscall-common.c:syscall_trace_enter(),
// include/linux/ptrace.h:ptrace_report_syscall(); ptrace(2) "Syscall-stops".
#include "tap.h"

static int pipefd[2];

// Each tracee below returns 0 iff what it saw matches the tracer's changes.
static int t_getppid(void *arg)
{
	(void)arg;
	syscall(SYS_getpid, 11, 22, 33, 44, 55, 66);
	return syscall(SYS_getppid) == getppid() ? 0 : 1;
}

static int t_renumber(void *arg)
{
	(void)arg;
	long r = syscall(SYS_getpid); // the tracer turns it into getppid
	return r == getppid() ? 0 : 1;
}

static int t_skip(void *arg)
{
	(void)arg;
	long r = syscall(SYS_write, pipefd[1], "x", 1); // skipped, result 1234
	return r == 1234 ? 0 : 1;
}

static int t_args(void *arg)
{
	(void)arg;
	long r = syscall(SYS_write, pipefd[1], "abc", 1); // the tracer makes it 3 bytes
	return r == 3 ? 0 : 1;
}

static int t_result(void *arg)
{
	(void)arg;
	return syscall(SYS_getppid) == 7777 ? 0 : 1;
}

int main(void)
{
	tap_init();
	struct user_regs_struct r;
	int st;

	// The stops of getpid(11..66) and getppid() without TRACESYSGOOD.
	pid_t c = spawn_traceme(t_getppid, NULL);
	st = syscall_to(c, SYS_getpid);
	check_status(st, STOPPED(SIGTRAP), "syscall-enter-stop without TRACESYSGOOD is SIGTRAP");
	getregs(c, &r);
	check_eq((long)r.rax, -ENOSYS, "rax is -ENOSYS at syscall-enter-stop");
	ok(r.rdi == 11 && r.rsi == 22 && r.rdx == 33 && r.r10 == 44 && r.r8 == 55 && r.r9 == 66,
	   "arguments are in rdi rsi rdx r10 r8 r9 at entry", "got %llu %llu %llu %llu %llu %llu",
	   r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "syscall-exit-stop follows");
	getregs(c, &r);
	check_eq((long)r.rax, c, "rax holds the result at syscall-exit-stop");
	check_eq((long)r.orig_rax, SYS_getpid, "orig_rax keeps the syscall number at exit");
	// Now with TRACESYSGOOD.
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSCALL, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	ok(st == STOPPED(SIGTRAP | 0x80) && r.orig_rax == SYS_getppid,
	   "TRACESYSGOOD: entry stop is SIGTRAP|0x80", "got %s nr=%lld", desc(st), (long long)r.orig_rax);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP | 0x80), "TRACESYSGOOD: exit stop is SIGTRAP|0x80");
	getregs(c, &r);
	check_eq((long)r.rax, getpid(), "getppid result at exit is the tracer's pid");
	// PTRACE_CONT from here: no more syscall stops, the tracee exits.
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "PTRACE_CONT stops syscall tracing; tracee saw real results");

	// Changing orig_rax at entry runs another syscall.
	c = spawn_traceme(t_renumber, NULL);
	syscall_to(c, SYS_getpid);
	getregs(c, &r);
	r.orig_rax = SYS_getppid;
	check_eq(pt(PTRACE_SETREGS, c, 0, (unsigned long)&r), 0, "SETREGS at entry succeeds");
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c);
	getregs(c, &r);
	check_eq((long)r.orig_rax, SYS_getppid, "exit stop shows the replaced syscall number");
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the replaced syscall ran (getpid became getppid)");

	// orig_rax = -1 skips the syscall; the result is -ENOSYS until the
	// tracer sets one.
	if (pipe(pipefd) != 0)
		return 3;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	c = spawn_traceme(t_skip, NULL);
	syscall_to(c, SYS_write);
	getregs(c, &r);
	r.orig_rax = -1;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "a skipped syscall still has an exit stop");
	getregs(c, &r);
	check_eq((long)r.rax, -ENOSYS, "a skipped syscall returns -ENOSYS");
	char buf[8];
	check_err(read(pipefd[0], buf, sizeof buf), EAGAIN, "the skipped write wrote nothing");
	r.rax = 1234;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees the result set at exit");

	// Changing an argument at entry.
	c = spawn_traceme(t_args, NULL);
	syscall_to(c, SYS_write);
	getregs(c, &r);
	r.rdx = 3;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "a changed count argument is used by the syscall");
	memset(buf, 0, sizeof buf);
	check_eq(read(pipefd[0], buf, sizeof buf), 3, "three bytes reached the pipe");

	// Changing the result at exit.
	c = spawn_traceme(t_result, NULL);
	syscall_to(c, SYS_getppid);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c);
	getregs(c, &r);
	r.rax = 7777;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee sees a result changed at exit");

	// PTRACE_SYSCALL with a signal delivers it.
	c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_SYSCALL, c, 0, SIGTERM);
	check_status(wait_pid(c), KILLED(SIGTERM), "PTRACE_SYSCALL with SIGTERM delivers it");

	return tap_done();
}
