// get_syscall_info.c: PTRACE_GET_SYSCALL_INFO in syscall-entry, syscall-exit,
// SYSEMU and other stops; returned sizes and short buffers.
//
// Linux: kernel/ptrace.c:ptrace_get_syscall_info() (keyed on the stop's
// si_code: only SIGTRAP|0x80 stops are syscall stops), include/uapi/linux/
// ptrace.h; ptrace(2) "PTRACE_GET_SYSCALL_INFO".
#include "tap.h"

#define SIZE_NONE 24  // offsetof(entry)
#define SIZE_ENTRY 80 // offsetof(entry.args) + sizeof(entry.args)
#define SIZE_EXIT 33  // offsetof(exit.is_error) + 1

static int t_calls(void *arg)
{
	(void)arg;
	syscall(SYS_getpid, 1, 2, 3, 4, 5, 6);
	syscall(SYS_close, -1L);
	syscall(SYS_getppid);
	return 0;
}

static long get_info(pid_t c, struct sc_info *si, size_t size)
{
	memset(si, 0xcc, sizeof *si);
	return pt(PT_GET_SYSCALL_INFO, c, size, (unsigned long)si);
}

int main(void)
{
	tap_init();
	struct sc_info si;
	struct user_regs_struct r;

	pid_t c = spawn_traceme(t_calls, NULL);
	check_eq(get_info(c, &si, sizeof si), SIZE_NONE, "in a signal-delivery-stop the size is 24");
	check_eq(si.op, PT_SYSCALL_INFO_NONE, "and op is NONE");
	check_hex(si.arch, AUDIT_ARCH_X86_64_, "arch is AUDIT_ARCH_X86_64");

	// Without TRACESYSGOOD a syscall stop is not recognised (si_code SIGTRAP).
	syscall_to(c, SYS_getpid);
	check_eq(get_info(c, &si, sizeof si), SIZE_NONE, "without TRACESYSGOOD a syscall stop reports NONE");
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c); // getpid exit

	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c); // close entry
	getregs(c, &r);
	check_eq(get_info(c, &si, sizeof si), SIZE_ENTRY, "at syscall entry the size is 80");
	check_eq(si.op, PT_SYSCALL_INFO_ENTRY, "op is ENTRY");
	check_eq(si.entry.nr, SYS_close, "nr is the syscall number");
	check_eq((long)si.entry.args[0], -1, "args[0] is the first argument");
	ok(si.instruction_pointer == r.rip && si.stack_pointer == r.rsp, "instruction and stack pointers match regs",
	   "mismatch");
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c); // close exit
	check_eq(get_info(c, &si, sizeof si), SIZE_EXIT, "at syscall exit the size is 33");
	check_eq(si.op, PT_SYSCALL_INFO_EXIT, "op is EXIT");
	ok(si.exit.rval == -EBADF && si.exit.is_error == 1, "a failing close has rval -EBADF and is_error 1",
	   "got rval=%lld is_error=%d", (long long)si.exit.rval, si.exit.is_error);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c); // getppid entry
	check_eq(get_info(c, &si, 8), SIZE_ENTRY, "a short buffer still returns the full size");
	ok(si.op == PT_SYSCALL_INFO_ENTRY && ((unsigned char *)&si)[8] == 0xcc, "but only 8 bytes are written",
	   "op=%d byte8=%#x", si.op, ((unsigned char *)&si)[8]);
	pt(PTRACE_SYSCALL, c, 0, 0);
	wait_pid(c); // getppid exit
	get_info(c, &si, sizeof si);
	ok(si.op == PT_SYSCALL_INFO_EXIT && si.exit.rval == getpid() && si.exit.is_error == 0,
	   "a successful getppid has is_error 0 and the tracer's pid", "got op=%d", si.op);
	check_err(pt(PT_GET_SYSCALL_INFO, c, sizeof si, 8), EFAULT, "a bad buffer is EFAULT");
	pt(PTRACE_CONT, c, 0, 0);
	check_err(get_info(c, &si, sizeof si), ESRCH, "a running tracee is ESRCH");
	wait_pid(c);

	// SYSEMU stops are entry stops.
	c = spawn_traceme(t_calls, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_SYSEMU, c, 0, 0);
	wait_pid(c);
	get_info(c, &si, sizeof si);
	ok(si.op == PT_SYSCALL_INFO_ENTRY && si.entry.nr == SYS_getpid && si.entry.args[5] == 6,
	   "a SYSEMU stop reports ENTRY with its arguments", "got op=%d nr=%llu", si.op,
	   (unsigned long long)si.entry.nr);
	kill_reap(c);

	// Event stops report NONE.
	c = spawn_traceme(NULL, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACEEXIT | PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	check_eq(get_info(c, &si, sizeof si), SIZE_NONE, "a PTRACE_EVENT_EXIT stop reports NONE");
	kill_reap(c);

	return tap_done();
}
