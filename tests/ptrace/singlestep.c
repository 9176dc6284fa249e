// singlestep.c: PTRACE_SINGLESTEP (the trap flag): one instruction per stop,
// TRAP_TRACE siginfo, TF hidden from the tracer, stepping over a syscall.
//
// Linux: arch/x86/kernel/step.c:user_enable_single_step() (TIF_FORCED_TF),
// arch/x86/kernel/traps.c:exc_debug_user(); ptrace(2) "PTRACE_SINGLESTEP".
#define TAP_STEP_REGION
#include "tap.h"

#define TRAP_TRACE_ 2
#define SI_KERNEL_ 0x80
#define X86_TF 0x100

static int t_step(void *arg)
{
	(void)arg;
	long r = step_region_fn();
	// TF must be clear again after the tracer continued: read eflags.
	unsigned long fl;
	__asm__ volatile("pushf; pop %0" : "=r"(fl));
	return r == getpid() && !(fl & X86_TF) ? 0 : 1;
}

int main(void)
{
	tap_init();
	struct user_regs_struct r;
	siginfo_t si;
	int st;

	pid_t c = spawn_traceme(t_step, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	check_status(st, STOPPED(SIGTRAP), "int3 gives a SIGTRAP signal-delivery-stop");
	check_eq(r.rip - (unsigned long)step_start, 0, "rip is after the int3");
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	check_hex(si.si_code, SI_KERNEL_, "int3 SIGTRAP has si_code SI_KERNEL");

	// Suppress the SIGTRAP and step.
	pt(PTRACE_SINGLESTEP, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	check_status(st, STOPPED(SIGTRAP), "a single step stops with SIGTRAP");
	check_eq(r.rip - (unsigned long)step_start, 1, "one step executes one nop");
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	check_hex(si.si_code, TRAP_TRACE_, "single-step SIGTRAP has si_code TRAP_TRACE");
	check_hex(r.eflags & X86_TF, 0, "the tracer does not see the TF it set");

	int n = 0;
	while (r.rip != (unsigned long)step_syscall && n < 10) {
		pt(PTRACE_SINGLESTEP, c, 0, 0);
		wait_pid(c);
		getregs(c, &r);
		n++;
	}
	check_eq(n, 3, "three more steps reach the syscall instruction");

	// Step over the syscall: it runs and the step ends after it.
	pt(PTRACE_SINGLESTEP, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	check_status(st, STOPPED(SIGTRAP), "stepping over syscall stops with SIGTRAP");
	check_eq(r.rip - (unsigned long)step_after, 0, "rip is after the syscall instruction");
	check_eq((long)r.rax, c, "the stepped getpid syscall ran");

	// A step with PTRACE_O_TRACESYSGOOD is still a plain SIGTRAP.
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SINGLESTEP, c, 0, 0);
	st = wait_pid(c);
	getregs(c, &r);
	check_status(st, STOPPED(SIGTRAP), "TRACESYSGOOD does not mark step stops");
	check_eq(r.rip - (unsigned long)step_ret, 0, "the nop after the syscall was stepped");

	// Setting TF through SETREGS is how a tracee sees it; here we only check
	// that continuing leaves the tracee with TF clear.
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "after CONT the tracee runs with TF clear");

	// Stepping with a signal delivers it first: the handler-less SIGTERM kills.
	c = spawn_traceme(t_step, NULL);
	pt(PTRACE_SINGLESTEP, c, 0, SIGTERM);
	check_status(wait_pid(c), KILLED(SIGTERM), "SINGLESTEP with SIGTERM delivers it");

	return tap_done();
}
