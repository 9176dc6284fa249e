// sysemu.c: PTRACE_SYSEMU and PTRACE_SYSEMU_SINGLESTEP: stop at syscall
// entry, never run the syscall, no exit stop, the tracer's rax is the result.
//
// Linux: arch/x86/kernel/ptrace.c (PTRACE_SYSEMU), kernel/entry/syscall-common.c:
// syscall_trace_enter() (SYSCALL_EMU); ptrace(2) "PTRACE_SYSEMU".
#define TAP_STEP_REGION
#include "tap.h"

static int pipefd[2];

static int t_emu(void *arg)
{
	(void)arg;
	long a = syscall(SYS_write, pipefd[1], "x", 1); // emulated: 5
	long b = syscall(SYS_getppid);                  // emulated: 6
	return a == 5 && b == 6 ? 0 : 1;
}

static int t_step(void *arg)
{
	(void)arg;
	return step_region_fn() == 4242 ? 0 : 1;
}

int main(void)
{
	tap_init();
	struct user_regs_struct r;
	int st;
	char buf[8];

	if (pipe(pipefd) != 0)
		return 3;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);

	// SYSEMU from the initial stop until the write.
	pid_t c = spawn_traceme(t_emu, NULL);
	long nr = -1;
	for (int i = 0; i < 50 && nr != SYS_write; i++) {
		pt(PTRACE_SYSEMU, c, 0, 0);
		st = wait_pid(c);
		if (st != STOPPED(SIGTRAP))
			break;
		getregs(c, &r);
		nr = r.orig_rax;
		if (nr != SYS_write) {
			// Emulate the libc syscalls before the write by running nothing:
			// only a few (rt_sigprocmask of raise) may come; make them succeed.
			r.rax = 0;
			pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
		}
	}
	check_status(st, STOPPED(SIGTRAP), "SYSEMU stops at syscall entry with SIGTRAP");
	check_eq(nr, SYS_write, "orig_rax holds the emulated syscall number");
	check_eq((long)r.rax, -ENOSYS, "rax is -ENOSYS at the SYSEMU stop");
	unsigned long ins = ptrace(PTRACE_PEEKTEXT, c, r.rip - 2, 0) & 0xffff;
	check_hex(ins, 0x050f, "rip points right after the syscall instruction");
	r.rax = 5;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSEMU, c, 0, 0);
	st = wait_pid(c);
	check_status(st, STOPPED(SIGTRAP | 0x80), "no exit stop: next stop is the next entry (SIGTRAP|0x80)");
	check_err(read(pipefd[0], buf, sizeof buf), EAGAIN, "the emulated write did not run");
	getregs(c, &r);
	check_eq((long)r.orig_rax, SYS_getppid, "the next stop is getppid's entry");
	r.rax = 6;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "the tracee saw the tracer's results (5 and 6)");

	// SYSEMU_SINGLESTEP over step_region: instruction steps, then the
	// syscall is stopped at entry and not run.
	c = spawn_traceme(t_step, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	st = wait_pid(c); // the int3 at step_region
	getregs(c, &r);
	ok(st == STOPPED(SIGTRAP) && r.rip == (unsigned long)step_start, "tracee reaches the int3 before step_start",
	   "got %s", desc(st));
	int steps = 0;
	for (; steps < 20; steps++) {
		pt(PTRACE_SYSEMU_SINGLESTEP, c, 0, 0);
		st = wait_pid(c);
		getregs(c, &r);
		if (st != STOPPED(SIGTRAP) || r.orig_rax == SYS_getpid)
			break;
	}
	check_eq(steps, 4, "SYSEMU_SINGLESTEP steps 4 instructions before the syscall");
	check_eq((long)r.orig_rax, SYS_getpid, "then stops at the syscall's entry");
	check_eq(r.rip - (unsigned long)step_after, 0, "rip is after the syscall instruction");
	check_eq((long)r.rax, -ENOSYS, "rax is -ENOSYS at that stop");
	r.rax = 4242;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_SYSEMU_SINGLESTEP, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	ok(st == STOPPED(SIGTRAP) && r.rip == (unsigned long)step_ret,
	   "the next step executes the nop after the syscall", "got %s rip off %ld", desc(st),
	   (long)(r.rip - (unsigned long)step_region));
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "getpid returned the tracer's 4242");

	return tap_done();
}
