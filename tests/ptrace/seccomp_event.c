// seccomp_event.c: PTRACE_EVENT_SECCOMP: SECCOMP_TRACE filters with and
// without a PTRACE_O_TRACESECCOMP tracer, the event message (the filter's
// data), PTRACE_GET_SYSCALL_INFO's seccomp op, skipping the syscall, and the
// order against syscall-enter-stops.
//
// ringbox may not implement seccomp yet: with RINGBOX_NO_SECCOMP=1 every
// case prints "ok N - ... # SKIP", so this program can be run but its
// stdout then differs from a native run (the harness may exclude it).
//
// Linux: kernel/seccomp.c:__seccomp_filter() (SECCOMP_TRACE: ENOSYS
// without a tracer using PTRACE_O_TRACESECCOMP), kernel/ptrace.c:
// ptrace_get_syscall_info_seccomp(); seccomp(2), ptrace(2).
#include "tap.h"

#include "../include/seccomp_abi.h"

#define MODE_FILTER 2
#define SIZE_SECCOMP 84 // offsetof(seccomp.ret_data) + 4

// install traces getppid with data 0x42 and allows everything else.
static int install(void)
{
	static struct sf f[] = {
		{LD_W_ABS, 0, 0, 0},
		{JEQ_K, 0, 1, SYS_getppid},
		{RET_K, 0, 0, TRACE | 0x42},
		{RET_K, 0, 0, ALLOW},
	};
	struct fprog p = {4, f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, MODE_FILTER, &p, 0, 0);
}

// t_getppid installs the filter, stops, and returns an encoding of what
// getppid returned: 0 = real ppid, 1 = -ENOSYS, 2 = 55, 3 = other.
static int t_getppid(void *arg)
{
	(void)arg;
	pid_t ppid = getppid(); // before the filter traces getppid
	if (install() != 0)
		return 9;
	kill(getpid(), SIGSTOP);
	long r = syscall(SYS_getppid);
	if (r == ppid)
		return 0;
	if (r == -1 && errno == ENOSYS)
		return 1;
	return r == 55 ? 2 : 3;
}

static const char *names[] = {
	"SECCOMP_TRACE with TRACESECCOMP gives PTRACE_EVENT_SECCOMP",
	"GETEVENTMSG is the filter's data (0x42)",
	"orig_rax is the traced syscall",
	"GET_SYSCALL_INFO returns the seccomp size 84",
	"op is SECCOMP with nr and ret_data",
	"continuing runs the syscall",
	"setting orig_rax to -1 skips it with the tracer's result",
	"without TRACESECCOMP the traced syscall fails with ENOSYS",
	"without a tracer it fails with ENOSYS",
	"the syscall-enter-stop comes first (Linux >= 4.8)",
	"then the seccomp stop",
	"PTRACE_SECCOMP_GET_FILTER of filter 0 returns its length",
	"it copies the instructions as installed",
	"a filter index past the last ENOENT",
	"GET_FILTER on a tracee without filters EINVAL",
	"PTRACE_SECCOMP_GET_METADATA returns its size, flags 0",
	"PTRACE_O_SUSPEND_SECCOMP: the filter does not run",
	"PTRACE_O_SUSPEND_SECCOMP at PTRACE_SEIZE is accepted for root",
};

int main(void)
{
	tap_init();
	const char *no = getenv("RINGBOX_NO_SECCOMP");
	if (no && strcmp(no, "1") == 0) {
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			skip(names[i], "RINGBOX_NO_SECCOMP=1");
		return tap_done();
	}
	unsigned long msg = 0;
	struct user_regs_struct r;
	struct sc_info si;

	pid_t c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESECCOMP);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c); // its own SIGSTOP, filter installed
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_SECCOMP), names[0]);
	pt(PTRACE_GETEVENTMSG, c, 0, (unsigned long)&msg);
	check_hex(msg, 0x42, names[1]);
	getregs(c, &r);
	check_eq((long)r.orig_rax, SYS_getppid, names[2]);
	memset(&si, 0, sizeof si);
	check_eq(pt(PT_GET_SYSCALL_INFO, c, sizeof si, (unsigned long)&si), SIZE_SECCOMP, names[3]);
	ok(si.op == PT_SYSCALL_INFO_SECCOMP && si.seccomp.nr == SYS_getppid && si.seccomp.ret_data == 0x42, names[4],
	   "got op=%d nr=%llu data=%#x", si.op, (unsigned long long)si.seccomp.nr, si.seccomp.ret_data);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), names[5]);

	c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESECCOMP);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	getregs(c, &r);
	r.orig_rax = -1;
	r.rax = 55;
	pt(PTRACE_SETREGS, c, 0, (unsigned long)&r);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(2), names[6]);

	c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(1), names[7]);

	c = xfork();
	if (c == 0) {
		if (install() != 0)
			_exit(9);
		long r2 = syscall(SYS_getppid);
		_exit(r2 == -1 && errno == ENOSYS ? 1 : 0);
	}
	check_status(wait_pid(c), EXITED(1), names[8]);

	c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	// PTRACE_SYSCALL until getppid: its syscall-enter-stop comes first.
	int st = -1;
	for (int i = 0; i < 20; i++) {
		pt(PTRACE_SYSCALL, c, 0, 0);
		st = wait_pid(c);
		getregs(c, &r);
		if (r.orig_rax == SYS_getppid)
			break;
	}
	check_status(st, STOPPED(SIGTRAP | 0x80), names[9]);
	pt(PTRACE_SYSCALL, c, 0, 0);
	check_status(wait_pid(c), EVENT_STATUS(PTRACE_EVENT_SECCOMP), names[10]);

	// Reading the filter back (CAP_SYS_ADMIN, which root has): index
	// 0 is the oldest filter (kernel/seccomp.c:get_nth_filter()).
	struct sf got[8];
	memset(got, 0xee, sizeof got);
	check_eq(pt(PTRACE_SECCOMP_GET_FILTER, c, 0, 0), 4, names[11]);
	long n = pt(PTRACE_SECCOMP_GET_FILTER, c, 0, (unsigned long)got);
	ok(n == 4 && got[1].code == JEQ_K && got[1].k == SYS_getppid && got[2].k == (TRACE | 0x42) &&
		   got[4].code == 0xeeee,
	   names[12], "got n=%ld code1=%#x k2=%#x", n, got[1].code, got[2].k);
	check_err(pt(PTRACE_SECCOMP_GET_FILTER, c, 1, 0), ENOENT, names[13]);
	unsigned long long md[2] = {0, 0xff};
	n = pt(PTRACE_SECCOMP_GET_METADATA, c, sizeof md, (unsigned long)md);
	ok(n == 16 && md[0] == 0 && md[1] == 0, names[15], "got n=%ld flags=%#llx", n, md[1]);
	kill_reap(c);

	c = spawn_traceme(NULL, NULL);
	check_err(pt(PTRACE_SECCOMP_GET_FILTER, c, 0, 0), EINVAL, names[14]);
	kill_reap(c);

	c = spawn_traceme(t_getppid, NULL);
	pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_SUSPEND_SECCOMP);
	pt(PTRACE_CONT, c, 0, 0);
	wait_pid(c);
	pt(PTRACE_CONT, c, 0, 0);
	check_status(wait_pid(c), EXITED(0), names[16]);

	c = xfork();
	if (c == 0) {
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	waitpid(c, &st, WUNTRACED);
	long r2 = pt(PTRACE_SEIZE, c, 0, PTRACE_O_SUSPEND_SECCOMP);
	check_eq(r2, 0, names[17]);
	kill_reap(c);

	return tap_done();
}
