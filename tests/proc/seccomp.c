/*
 * seccomp.c - seccomp(2) and prctl(PR_SET_SECCOMP): strict mode, filter
 * mode with every action (ERRNO, TRAP, KILL_PROCESS, KILL_THREAD, LOG,
 * ALLOW, TRACE without a tracer), the precedence of several filters,
 * seccomp_data (nr, arch, args), inheritance over fork and execve, TSYNC,
 * the right to install (no_new_privs or CAP_SYS_ADMIN), the filter checks
 * and the errnos, SECCOMP_GET_ACTION_AVAIL and SECCOMP_GET_NOTIF_SIZES,
 * PR_GET_SECCOMP and /proc/self/status.
 *
 * A filter cannot be removed, so each case installs it in a child and
 * reports through the child's exit status.
 *
 * Linux: kernel/seccomp.c, net/core/filter.c:bpf_check_classic();
 * seccomp(2), PR_SET_SECCOMP(2const).
 */
#include "tap.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <ucontext.h>

#include "../include/seccomp_abi.h"

/* onecall builds "nr == N ? RET action : RET ALLOW" into f. */
static struct fprog onecall(struct sf *f, int nr, uint32_t action)
{
	f[0] = (struct sf){LD_W_ABS, 0, 0, OFF_NR};
	f[1] = (struct sf){JEQ_K, 0, 1, (uint32_t)nr};
	f[2] = (struct sf){RET_K, 0, 0, action};
	f[3] = (struct sf){RET_K, 0, 0, ALLOW};
	return (struct fprog){4, f};
}

/* install sets no_new_privs and installs "nr -> action". */
static long install(int nr, uint32_t action, unsigned flags)
{
	static struct sf f[4];
	struct fprog p = onecall(f, nr, action);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return sc(OP_FILTER, flags, &p);
}

/* child runs fn in a child and returns tap_status of its end. */
static int child(int (*fn)(void))
{
	pid_t p = tap_fork();
	if (p == 0)
		_exit(fn());
	return tap_wait(p);
}

static int errno_of_getppid(void)
{
	long r = syscall(SYS_getppid);
	return r == -1 ? errno : 200;
}

static int c_errno(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0)
		return 100;
	if (syscall(SYS_getpid) <= 0)
		return 101;
	return errno_of_getppid();
}

static int c_errno_cap(void)
{
	if (install(SYS_getppid, ERRNO | 0xffff, 0) != 0)
		return 100;
	long r = syscall(SYS_getppid);
	return r == -1 && errno == 4095 ? 0 : 1;
}

static int c_errno_zero(void)
{
	if (install(SYS_dup, ERRNO | 0, 0) != 0)
		return 100;
	long r = syscall(SYS_dup, 1);
	/* The call is not made: 0 comes back and no descriptor is new. */
	return r == 0 && fcntl(3, F_GETFD) == -1 && fcntl(4, F_GETFD) == -1 ? 0 : 1;
}

static volatile sig_atomic_t sys_code, sys_errno, sys_nr, sys_arch, sys_addr_ok, sys_rax_ok;
static void on_sigsys(int s, siginfo_t *si, void *ucv)
{
	(void)s;
	ucontext_t *uc = ucv;
	sys_code = si->si_code;
	sys_errno = si->si_errno;
	sys_nr = si->si_syscall;
	sys_arch = si->si_arch == AUDIT_X86_64;
	sys_addr_ok = si->si_call_addr == (void *)uc->uc_mcontext.gregs[REG_RIP];
	sys_rax_ok = uc->uc_mcontext.gregs[REG_RAX] == SYS_getppid;
}

static int c_trap(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (install(SYS_getppid, TRAP | 0x123, 0) != 0)
		return 100;
	long r = syscall(SYS_getppid);
	int bad = 0;
	bad |= (sys_code != SYS_SECCOMP_CODE) << 0;
	bad |= (sys_errno != 0x123) << 1;
	bad |= (sys_nr != SYS_getppid) << 2;
	bad |= (!sys_arch) << 3;
	bad |= (!sys_addr_ok) << 4;
	bad |= (!sys_rax_ok) << 5;
	/* The call is not made; RAX holds its number again. */
	bad |= (r != SYS_getppid) << 6;
	return bad;
}

static int c_trap_blocked(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGSYS);
	sigprocmask(SIG_BLOCK, &m, NULL);
	if (install(SYS_getppid, TRAP, 0) != 0)
		return 100;
	syscall(SYS_getppid);
	return 0; /* not reached: a blocked SIGSYS is forced to its default */
}

static int c_kill_process(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (install(SYS_getppid, KILL_PROCESS, 0) != 0)
		return 100;
	syscall(SYS_getppid);
	return 0;
}

static int c_kill_thread_single(void)
{
	if (install(SYS_getppid, KILL_THREAD, 0) != 0)
		return 100;
	syscall(SYS_getppid);
	return 0;
}

static volatile pid_t victim_tid;
static void *call_getppid(void *a)
{
	(void)a;
	victim_tid = (pid_t)syscall(SYS_gettid);
	syscall(SYS_getppid);
	return (void *)1;
}

static int c_kill_thread_multi(void)
{
	if (install(SYS_getppid, KILL_THREAD, 0) != 0)
		return 100;
	pthread_t t;
	if (pthread_create(&t, NULL, call_getppid, NULL) != 0)
		return 101;
	/* musl's pthread_join waits for the thread's own exit path, which
	 * a killed thread never runs: watch its TID disappear instead. */
	for (int i = 0; i < 5000; i++) {
		if (victim_tid != 0 && syscall(SYS_tgkill, getpid(), victim_tid, 0) == -1 && errno == ESRCH)
			return 0;
		usleep(1000);
	}
	return 1;
}

static int c_kill_process_multi(void)
{
	if (install(SYS_getppid, KILL_PROCESS, 0) != 0)
		return 100;
	pthread_t t;
	pthread_create(&t, NULL, call_getppid, NULL);
	pthread_join(t, NULL);
	return 0; /* not reached */
}

static int c_log_allow(void)
{
	if (install(SYS_getppid, LOG, 0) != 0 || install(SYS_getpid, ALLOW | 7, F_LOG) != 0)
		return 100;
	return syscall(SYS_getppid) > 0 && syscall(SYS_getpid) > 0 ? 0 : 1;
}

static int c_trace_no_tracer(void)
{
	if (install(SYS_getppid, TRACE | 1, 0) != 0)
		return 100;
	return errno_of_getppid();
}

static int c_precedence_strongest(void)
{
	/* The older filter's ERRNO wins over the newer ALLOW. */
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0 || install(SYS_getppid, ALLOW, 0) != 0)
		return 100;
	return errno_of_getppid();
}

static int c_precedence_newest_data(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0 || install(SYS_getppid, ERRNO | EACCES, 0) != 0)
		return 100;
	return errno_of_getppid();
}

static int c_precedence_kill(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0 || install(SYS_getppid, KILL_PROCESS, 0) != 0)
		return 100;
	syscall(SYS_getppid);
	return 0;
}

static int c_args(void)
{
	static struct sf f[] = {
		{LD_W_ABS, 0, 0, OFF_NR},
		{JEQ_K, 0, 3, SYS_dup},
		{LD_W_ABS, 0, 0, OFF_ARG0},
		{JEQ_K, 0, 1, 2},
		{RET_K, 0, 0, ERRNO | ENOMSG},
		{RET_K, 0, 0, ALLOW},
	};
	struct fprog p = {6, f};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (sc(OP_FILTER, 0, &p) != 0)
		return 100;
	int fd = dup(1);
	if (fd < 0)
		return 1;
	close(fd);
	return dup(2) == -1 && errno == ENOMSG ? 0 : 2;
}

static int c_arch_len(void)
{
	/* arch must read AUDIT_ARCH_X86_64 and the data length 64. */
	static struct sf f[] = {
		{LD_W_ABS, 0, 0, OFF_ARCH},
		{JEQ_K, 1, 0, AUDIT_X86_64},
		{RET_K, 0, 0, KILL_PROCESS},
		{LD_W_LEN, 0, 0, 0},
		{JEQ_K, 1, 0, 64},
		{RET_K, 0, 0, KILL_PROCESS},
		{RET_K, 0, 0, ALLOW},
	};
	struct fprog p = {7, f};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (sc(OP_FILTER, 0, &p) != 0)
		return 100;
	return syscall(SYS_getppid) > 0 ? 0 : 1;
}

static int c_ret_a(void)
{
	/* RET A with the value computed: -(-(ERRNO|EIO)) through the
	 * scratch memory. */
	static struct sf g[] = {
		{LD_W_ABS, 0, 0, OFF_NR},
		{JEQ_K, 0, 6, SYS_getppid},
		{0x00, 0, 0, ERRNO | EIO}, /* LD IMM */
		{ST, 0, 0, 3},
		{LD_MEM, 0, 0, 3},
		{ALU_NEG, 0, 0, 0},
		{ALU_NEG, 0, 0, 0},
		{RET_A, 0, 0, 0},
		{RET_K, 0, 0, ALLOW},
	};
	struct fprog p = {9, g};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (sc(OP_FILTER, 0, &p) != 0)
		return 100;
	return errno_of_getppid();
}

static int c_fork_inherits(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0)
		return 100;
	pid_t p = fork();
	if (p == 0)
		_exit(errno_of_getppid());
	int st = tap_wait(p);
	return st == EPERM ? 0 : 1;
}

static const char *self;
static int c_exec_keeps(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0)
		return 100;
	char *av[] = {(char *)self, "exec-child", NULL};
	char *ev[] = {NULL};
	execve(self, av, ev);
	return 101;
}

static int c_status(void)
{
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return 1;
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0 || install(SYS_getppid, ERRNO | EPERM, 0) != 0)
		return 100;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return 2;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 3;
	char line[256];
	int mode = -1, n = -1, nnp = -1;
	while (fgets(line, sizeof line, f)) {
		sscanf(line, "Seccomp: %d", &mode);
		sscanf(line, "Seccomp_filters: %d", &n);
		sscanf(line, "NoNewPrivs: %d", &nnp);
	}
	fclose(f);
	return (mode != 2) << 2 | (n != 2) << 3 | (nnp != 1) << 4;
}

static int c_strict(void)
{
	if (prctl(PR_SET_SECCOMP, 1, 0, 0, 0) != 0)
		return 100;
	/* read, write, exit and rt_sigreturn only. */
	if (syscall(SYS_write, 1, "", 0) != 0)
		return 101;
	syscall(SYS_exit, 42);
	return 102;
}

static int c_strict_kill(void)
{
	if (sc(OP_STRICT, 0, NULL) != 0)
		return 100;
	syscall(SYS_getpid);
	syscall(SYS_exit, 0);
	return 0;
}

static int c_strict_after_filter(void)
{
	if (install(SYS_getppid, ERRNO | EPERM, 0) != 0)
		return 100;
	long r = sc(OP_STRICT, 0, NULL);
	return r == -1 && errno == EINVAL ? 0 : 1;
}

static int c_unprivileged(void)
{
	static struct sf f[4];
	struct fprog p = onecall(f, SYS_getppid, ERRNO | EPERM);
	if (setgid(65534) != 0 || setuid(65534) != 0)
		return 100;
	long r = sc(OP_FILTER, 0, &p);
	if (r != -1 || errno != EACCES)
		return 1;
	r = prctl(PR_SET_SECCOMP, 2, &p, 0, 0);
	if (r != -1 || errno != EACCES)
		return 2;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (sc(OP_FILTER, 0, &p) != 0)
		return 3;
	return errno_of_getppid() == EPERM ? 0 : 4;
}

static int c_root_without_nnp(void)
{
	static struct sf f[4];
	struct fprog p = onecall(f, SYS_getppid, ERRNO | EPERM);
	if (prctl(PR_SET_SECCOMP, 2, &p, 0, 0) != 0)
		return 1;
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0 ? errno_of_getppid() : 2;
}

static int c_path_limit(void)
{
	/* The filters of a path may have 16384 instructions, counting 4
	 * more for each filter already installed: three of 4096 leave
	 * room for 4084 more (measured on Linux 6.18). */
	static struct sf f[4096];
	for (int i = 0; i < 4096; i++)
		f[i] = (struct sf){RET_K, 0, 0, ALLOW};
	struct fprog p = {4096, f};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (int i = 0; i < 3; i++)
		if (sc(OP_FILTER, 0, &p) != 0)
			return 10 + i;
	struct fprog over = {4085, f};
	long r = sc(OP_FILTER, 0, &over);
	if (r != -1 || errno != ENOMEM)
		return 1;
	struct fprog fits = {4084, f};
	return sc(OP_FILTER, 0, &fits) == 0 ? 0 : 2;
}

static pthread_barrier_t bar;
static volatile long thread_result;
static volatile pid_t thread_tid;

static void *tsync_thread(void *a)
{
	thread_tid = (pid_t)syscall(SYS_gettid);
	if (a)
		install(SYS_getpid, ERRNO | EPERM, 0);
	pthread_barrier_wait(&bar); /* the main thread installs */
	pthread_barrier_wait(&bar);
	thread_result = syscall(SYS_getppid) == -1 ? errno : 0;
	return NULL;
}

static int tsync_case(int thread_own_filter, unsigned flags, long *ret)
{
	pthread_t t;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, tsync_thread, thread_own_filter ? (void *)1 : NULL);
	pthread_barrier_wait(&bar);
	errno = 0;
	*ret = install(SYS_getppid, ERRNO | EPERM, flags);
	if (*ret == -1)
		*ret = -errno;
	pthread_barrier_wait(&bar);
	pthread_join(t, NULL);
	return (int)thread_result;
}

static int c_no_tsync(void)
{
	long r;
	int seen = tsync_case(0, 0, &r);
	return r == 0 && seen == 0 ? 0 : 1;
}

static int c_tsync(void)
{
	long r;
	int seen = tsync_case(0, F_TSYNC, &r);
	return r == 0 && seen == EPERM ? 0 : 1;
}

static int c_tsync_fails(void)
{
	long r;
	int seen = tsync_case(1, F_TSYNC, &r);
	return r == thread_tid && seen == 0 ? 0 : 1;
}

static int c_tsync_esrch(void)
{
	long r;
	int seen = tsync_case(1, F_TSYNC | F_TSYNC_ESRCH, &r);
	return r == -ESRCH && seen == 0 ? 0 : 1;
}

static int c_errnos(void)
{
	struct sf ret[1] = {{RET_K, 0, 0, ALLOW}};
	struct sf unaligned[2] = {{LD_W_ABS, 0, 0, 2}, {RET_K, 0, 0, ALLOW}};
	struct sf past[2] = {{LD_W_ABS, 0, 0, 64}, {RET_K, 0, 0, ALLOW}};
	struct sf mod[2] = {{ALU_MOD_K, 0, 0, 3}, {RET_K, 0, 0, ALLOW}};
	struct sf noret[1] = {{LD_W_ABS, 0, 0, 0}};
	struct sf jump[2] = {{JEQ_K, 0, 1, 0}, {RET_K, 0, 0, ALLOW}};
	struct sf scratch[2] = {{LD_MEM, 0, 0, 1}, {RET_K, 0, 0, ALLOW}};
	struct fprog p;
	int bad = 0, bit = 0;
#define EXPECT(call, e) (bad |= !((call) == -1 && errno == (e)) << bit++)
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	EXPECT(sc(OP_FILTER, 0, NULL), EFAULT);
	p = (struct fprog){0, ret};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){4097, ret};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){1, (struct sf *)8};
	EXPECT(sc(OP_FILTER, 0, &p), EFAULT);
	p = (struct fprog){1, ret};
	EXPECT(sc(OP_FILTER, 1u << 10, &p), EINVAL);
	EXPECT(sc(OP_FILTER, F_TSYNC | F_NEW_LISTENER, &p), EINVAL);
	EXPECT(sc(OP_FILTER, F_WAIT_KILLABLE, &p), EINVAL);
	p = (struct fprog){2, unaligned};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){2, past};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){2, mod};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){1, noret};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){2, jump};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	p = (struct fprog){2, scratch};
	EXPECT(sc(OP_FILTER, 0, &p), EINVAL);
	EXPECT(sc(OP_STRICT, 1, NULL), EINVAL);
	EXPECT(sc(OP_STRICT, 0, &p), EINVAL);
	EXPECT(sc(99, 0, NULL), EINVAL);
	EXPECT(prctl(PR_SET_SECCOMP, 3, 0, 0, 0), EINVAL);
	/* Nothing was installed by the failures. */
	bad |= (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0) << bit++;
#undef EXPECT
	return bad ? 1 + __builtin_ctz(bad) : 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
		return errno_of_getppid() == EPERM ? 0 : 1;
	tap_init();
	self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];

	uint32_t acts[] = {KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG, ALLOW};
	int avail = 0;
	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
		avail += sc(OP_ACTION_AVAIL, 0, &acts[i]) == 0;
	check_eq(avail, 7, "GET_ACTION_AVAIL knows the seven actions");
	uint32_t unknown = 0x7ffd0000u;
	check_err(sc(OP_ACTION_AVAIL, 0, &unknown), EOPNOTSUPP, "GET_ACTION_AVAIL of an unknown action EOPNOTSUPP");
	check_err(sc(OP_ACTION_AVAIL, 1, &acts[0]), EINVAL, "GET_ACTION_AVAIL with flags EINVAL");
	check_err(sc(OP_ACTION_AVAIL, 0, (void *)8), EFAULT, "GET_ACTION_AVAIL bad pointer EFAULT");
	uint16_t sizes[3] = {0};
	check_ok(sc(OP_NOTIF_SIZES, 0, sizes), "GET_NOTIF_SIZES");
	ok(sizes[0] == 80 && sizes[1] == 24 && sizes[2] == 64, "notif 80, resp 24, data 64 bytes");
	check_eq(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0, "PR_GET_SECCOMP is 0 without seccomp");

	check_eq(child(c_errnos), 0, "bad filters, flags and operations fail with Linux's errnos, installing nothing");
	check_eq(child(c_errno), EPERM, "SECCOMP_RET_ERRNO fails the call with the data as errno");
	check_eq(child(c_errno_cap), 0, "ERRNO data above 4095 is capped at 4095");
	check_eq(child(c_errno_zero), 0, "ERRNO 0 returns 0 without making the call");
	check_eq(child(c_trap), 0, "SECCOMP_RET_TRAP: SIGSYS with SYS_SECCOMP, data, nr, arch, call address; RAX is the nr");
	check_eq(child(c_trap_blocked), 1000 + SIGSYS, "TRAP with SIGSYS blocked kills with SIGSYS");
	check_eq(child(c_kill_process), 1000 + SIGSYS, "KILL_PROCESS kills with SIGSYS despite a handler");
	check_eq(child(c_kill_thread_single), 1000 + SIGSYS, "KILL_THREAD of the only thread kills the process");
	check_eq(child(c_kill_thread_multi), 0, "KILL_THREAD kills only the calling thread");
	check_eq(child(c_kill_process_multi), 1000 + SIGSYS, "KILL_PROCESS from a thread kills the whole process");
	check_eq(child(c_log_allow), 0, "LOG and ALLOW (with data) let the call run");
	check_eq(child(c_trace_no_tracer), ENOSYS, "TRACE without a tracer fails with ENOSYS");
	check_eq(child(c_precedence_strongest), EPERM, "the strictest action of all filters wins");
	check_eq(child(c_precedence_newest_data), EACCES, "among equal actions the newest filter's data wins");
	check_eq(child(c_precedence_kill), 1000 + SIGSYS, "a newer KILL_PROCESS wins over an older ERRNO");
	check_eq(child(c_args), 0, "filters read the arguments");
	check_eq(child(c_arch_len), 0, "filters read the arch and the data length");
	check_eq(child(c_ret_a), EIO, "RET A, scratch memory and NEG");
	check_eq(child(c_fork_inherits), 0, "fork inherits the filters");
	check_eq(child(c_exec_keeps), 0, "execve keeps the filters");
	check_eq(child(c_status), 0, "PR_GET_SECCOMP 2, /proc/self/status Seccomp 2, Seccomp_filters 2, NoNewPrivs 1");
	check_eq(child(c_strict), 42, "strict mode allows write and exit");
	check_eq(child(c_strict_kill), 1000 + SIGKILL, "strict mode kills with SIGKILL on another call");
	check_eq(child(c_strict_after_filter), 0, "strict mode after a filter EINVAL");
	check_eq(child(c_unprivileged), 0, "without CAP_SYS_ADMIN a filter needs no_new_privs (EACCES)");
	check_eq(child(c_root_without_nnp), EPERM, "CAP_SYS_ADMIN installs without no_new_privs");
	check_eq(child(c_path_limit), 0, "more than 16384 instructions on the path ENOMEM");
	check_eq(child(c_no_tsync), 0, "a filter applies to the calling thread only");
	check_eq(child(c_tsync), 0, "TSYNC gives the filter to every thread");
	check_eq(child(c_tsync_fails), 0, "TSYNC fails with the TID of a thread with another filter");
	check_eq(child(c_tsync_esrch), 0, "TSYNC_ESRCH makes that failure ESRCH");
	return tap_done();
}
