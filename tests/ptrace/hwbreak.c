// hwbreak.c: x86 debug registers through PEEKUSER/POKEUSER of
// struct user's u_debugreg: an execution breakpoint and a write watchpoint,
// DR6 status bits, TRAP_HWBKPT siginfo, and invalid settings.
//
// Linux: arch/x86/kernel/ptrace.c:ptrace_set_debugreg(), ptrace_get_debugreg(),
// ptrace_write_dr7(), ptrace_triggered() (virtual_dr6); arch/x86/kernel/
// hw_breakpoint.c:hw_breakpoint_arch_parse(); Intel SDM vol. 3 ch. 17.
#include "tap.h"

#define DR(n) (offsetof(struct user, u_debugreg) + (n) * sizeof(long))
#define TRAP_HWBKPT_ 4
#define DR7_L(n) (1UL << ((n) * 2))
#define DR7_RW(n, v) ((unsigned long)(v) << (16 + (n) * 4))
#define DR7_LEN(n, v) ((unsigned long)(v) << (18 + (n) * 4))

extern char hw_target[];
void hw_target_fn(void) __asm__("hw_target");
__asm__(".text\n.globl hw_target\nhw_target:\n  nop\n  ret\n");

volatile long watched[2];

static int t_hw(void *arg)
{
	(void)arg;
	hw_target_fn();
	watched[0] = 5;
	hw_target_fn(); // DR0 is disabled by then
	return watched[0] == 5 ? 0 : 1;
}

static long peek_dr(pid_t c, int n)
{
	long v = -1;
	if (pt(PTRACE_PEEKUSER, c, DR(n), (unsigned long)&v) != 0)
		return -1;
	return v;
}

int main(void)
{
	tap_init();
	struct user_regs_struct r;
	siginfo_t si;

	pid_t c = spawn_traceme(t_hw, NULL);
	check_eq(peek_dr(c, 7), 0, "DR7 of a new tracee is 0");
	check_eq(peek_dr(c, 0), 0, "DR0 of a new tracee is 0");
	check_eq(peek_dr(c, 4), 0, "DR4 reads as 0");
	check_err(pt(PTRACE_POKEUSER, c, DR(4), 0), EIO, "writing DR4 is EIO");

	check_eq(pt(PTRACE_POKEUSER, c, DR(0), (unsigned long)hw_target), 0, "POKEUSER DR0 = a code address");
	check_eq(peek_dr(c, 0) == (long)hw_target, 1, "DR0 reads it back");
	check_eq(pt(PTRACE_POKEUSER, c, DR(1), (unsigned long)&watched[0]), 0, "POKEUSER DR1 = a data address");
	unsigned long dr7 = DR7_L(0) | DR7_L(1) | DR7_RW(1, 1) | DR7_LEN(1, 3);
	check_eq(pt(PTRACE_POKEUSER, c, DR(7), dr7), 0, "DR7 enables an execute breakpoint and a write watchpoint");
	check_hex(peek_dr(c, 7), dr7, "DR7 reads back as written");

	// The execution breakpoint.
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "the execution breakpoint gives SIGTRAP");
	getregs(c, &r);
	check_eq(r.rip == (unsigned long)hw_target, 1, "rip is the breakpoint address (fault-like trap)");
	check_hex(peek_dr(c, 6) & 0xf, 1, "DR6 has B0 set");
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	check_eq(si.si_code, TRAP_HWBKPT_, "the siginfo has si_code TRAP_HWBKPT");

	// The write watchpoint: DR0 off, DR1 on.
	pt(PTRACE_POKEUSER, c, DR(7), DR7_L(1) | DR7_RW(1, 1) | DR7_LEN(1, 3));
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), STOPPED(SIGTRAP), "the write watchpoint gives SIGTRAP");
	check_hex(peek_dr(c, 6) & 0xf, 2, "DR6 has only B1 set");
	long v = 0;
	pt(PTRACE_PEEKDATA, c, (unsigned long)&watched[0], (unsigned long)&v);
	check_eq(v, 5, "the trap comes after the write");
	memset(&si, 0, sizeof si);
	pt(PTRACE_GETSIGINFO, c, 0, (unsigned long)&si);
	check_eq(si.si_code, TRAP_HWBKPT_, "with si_code TRAP_HWBKPT");
	check_eq(pt(PTRACE_POKEUSER, c, DR(6), 0), 0, "DR6 can be cleared");
	check_eq(peek_dr(c, 6), 0, "and reads 0");

	// Invalid settings.
	check_eq(pt(PTRACE_POKEUSER, c, DR(2), (unsigned long)&watched[0] + 1), 0,
		 "an unaligned address is accepted while its slot is disabled");
	check_err(pt(PTRACE_POKEUSER, c, DR(7), DR7_L(2) | DR7_RW(2, 1) | DR7_LEN(2, 3)), EINVAL,
		  "enabling an 8-byte watch at an unaligned address is EINVAL");
	check_err(pt(PTRACE_POKEUSER, c, DR(7), DR7_L(1) | DR7_RW(1, 2)), EINVAL,
		  "an I/O breakpoint (RW=10) is EINVAL");
	check_err(pt(PTRACE_POKEUSER, c, DR(3), 0xffffffff81000000UL), EINVAL,
		  "a kernel address in DR3 is EINVAL");
	pt(PTRACE_POKEUSER, c, DR(7), 0);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), "with DR7 0 the tracee runs to its end");

	return tap_done();
}
