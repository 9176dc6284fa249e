/*
 * misc.c - resource limits (getrlimit/setrlimit/prlimit64), sysinfo,
 * getrandom, membarrier, rseq, personality, scheduler queries, nice,
 * uname.
 *
 * Linux: kernel/sys.c (prlimit64, sysinfo, uname, setpriority),
 * drivers/char/random.c, kernel/sched/membarrier.c, kernel/rseq.c,
 * kernel/exec_domain.c, kernel/sched/core.c.
 *
 * rseq: glibc (2.35+) registers an rseq area for every thread, musl does
 * not; the glibc build checks that the kernel keeps the registered area's
 * cpu_id current, the musl build registers and unregisters its own.
 */
#include "tap.h"
#include "abi.h"
#include <sched.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

/* Linux: include/uapi/linux/rseq.h */
struct rseq_ {
	uint32_t cpu_id_start;
	int32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id, mm_cid;
	char end[0];
} __attribute__((aligned(32)));
#define RSEQ_SIG_ 0x53053053
#define RSEQ_FLAG_UNREGISTER_ 1

#ifdef __GLIBC__
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
#endif

/* prctl_dumpable_off keeps a core-action signal from writing a core. */
static void prctl_dumpable_off(void)
{
	struct rlimit z = { 0, 0 };
	setrlimit(RLIMIT_CORE, &z);
	syscall(SYS_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0, 0, 0);
}

int main(void)
{
	tap_init();
	struct rlimit rl, old;

	/* rlimits */
	check_ok(getrlimit(RLIMIT_NOFILE, &rl), "getrlimit RLIMIT_NOFILE");
	ok(rl.rlim_cur <= rl.rlim_max, "soft limit <= hard limit");
	old = rl;
	rl.rlim_cur = 100;
	check_ok(setrlimit(RLIMIT_NOFILE, &rl), "setrlimit lowers the soft limit");
	struct rlimit now;
	getrlimit(RLIMIT_NOFILE, &now);
	check_eq(now.rlim_cur, 100, "soft limit reads back");
	rl.rlim_cur = rl.rlim_max + 1;
	if (rl.rlim_max != RLIM_INFINITY)
		check_err(setrlimit(RLIMIT_NOFILE, &rl), EINVAL, "soft above hard EINVAL");
	else
		skip("hard limit infinite", "soft above hard EINVAL");
	setrlimit(RLIMIT_NOFILE, &old);
	check_err(getrlimit(99, &rl), EINVAL, "getrlimit bad resource EINVAL");
	check_err(syscall(SYS_getrlimit, RLIMIT_NOFILE, (void *)8), EFAULT, "getrlimit bad pointer EFAULT");

	struct rlimit nw = { 64, old.rlim_max }, prev;
	check_eq(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &nw, &prev), 0, "prlimit64 self set+get");
	ok(prev.rlim_cur == old.rlim_cur && prev.rlim_max == old.rlim_max, "prlimit64 returns the old limits");
	setrlimit(RLIMIT_NOFILE, &old);
	check_err(syscall(SYS_prlimit64, 0x3ffffff0, RLIMIT_NOFILE, NULL, &prev), ESRCH, "prlimit64 nonexistent pid ESRCH");
	check_err(syscall(SYS_prlimit64, 0, 99, NULL, &prev), EINVAL, "prlimit64 bad resource EINVAL");
	int pp[2];
	pipe(pp);
	pid_t c = tap_fork();
	if (c == 0) {
		char b;
		read(pp[0], &b, 1);
		struct rlimit x;
		getrlimit(RLIMIT_CORE, &x);
		_exit(x.rlim_cur == 0 ? 0 : 1);
	}
	struct rlimit zero = { 0, 0 };
	getrlimit(RLIMIT_CORE, &rl);
	zero.rlim_max = rl.rlim_max;
	check_eq(syscall(SYS_prlimit64, c, RLIMIT_CORE, &zero, NULL), 0, "prlimit64 sets a child's limit");
	write(pp[1], "g", 1);
	check_eq(tap_wait(c), 0, "the child sees the limit set from outside");
	c = tap_fork();
	if (c == 0) {
		struct rlimit x;
		getrlimit(RLIMIT_NOFILE, &x);
		x.rlim_max = x.rlim_cur;
		setrlimit(RLIMIT_NOFILE, &x);
		if (setresuid(1000, 1000, 1000) != 0 && getuid() == 0)
			_exit(3);
		x.rlim_max += 1;
		errno = 0;
		_exit(setrlimit(RLIMIT_NOFILE, &x) == -1 && errno == EPERM ? 0 : 1);
	}
	check_eq(tap_wait(c), 0, "unprivileged raise of a hard limit EPERM");

	/* RLIMIT_FSIZE: a write past it raises SIGXFSZ, or fails with EFBIG
	 * when SIGXFSZ is ignored. memfd avoids needing a filesystem. */
	c = tap_fork();
	if (c == 0) {
		int fd = memfd_create("fsize", 0);
		struct rlimit fl = { 4096, 4096 };
		setrlimit(RLIMIT_FSIZE, &fl);
		char b[8192] = { 0 };
		if (write(fd, b, 4096) != 4096)
			_exit(1);
		signal(SIGXFSZ, SIG_IGN);
		errno = 0;
		if (write(fd, b, 1) != -1 || errno != EFBIG)
			_exit(2);
		signal(SIGXFSZ, SIG_DFL);
		write(fd, b, 1);
		_exit(3);
	}
	check_eq(tap_wait(c), 1000 + SIGXFSZ, "RLIMIT_FSIZE: EFBIG with SIGXFSZ ignored, then killed by SIGXFSZ");

	/* RLIMIT_CPU: SIGXCPU once the soft limit of CPU time is used. */
	c = tap_fork();
	if (c == 0) {
		struct rlimit cl = { 1, 5 };
		setrlimit(RLIMIT_CPU, &cl);
		prctl_dumpable_off();
		for (volatile unsigned long i = 0;; i++)
			;
	}
	check_eq(tap_wait(c), 1000 + SIGXCPU, "RLIMIT_CPU: killed by SIGXCPU after 1 s of CPU");

	/* sysinfo */
	struct sysinfo si;
	check_ok(sysinfo(&si), "sysinfo");
	ok(si.uptime > 0 && si.totalram > 0 && si.mem_unit >= 1 && si.procs >= 1, "sysinfo fields are sane");
	ok(si.freeram <= si.totalram, "freeram <= totalram");
	check_err(syscall(SYS_sysinfo, (void *)8), EFAULT, "sysinfo bad pointer EFAULT");

	/* getrandom */
	unsigned char r1[32], r2[32];
	check_eq(getrandom(r1, sizeof r1, 0), 32, "getrandom 32 bytes");
	getrandom(r2, sizeof r2, GRND_NONBLOCK);
	ok(memcmp(r1, r2, sizeof r1) != 0, "two draws differ");
	check_eq(getrandom(r1, 0, 0), 0, "getrandom 0 bytes returns 0");
	check_err(getrandom(r1, 8, 0x40), EINVAL, "getrandom unknown flag EINVAL");
	check_err(syscall(SYS_getrandom, (void *)8, 8, 0), EFAULT, "getrandom bad pointer EFAULT");

	/* membarrier */
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY_, 0, 0);
	ok(q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED_), "membarrier QUERY lists PRIVATE_EXPEDITED");
	check_err(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_, 0, 0), EPERM, "PRIVATE_EXPEDITED before registering EPERM");
	check_eq(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_, 0, 0), 0, "REGISTER_PRIVATE_EXPEDITED");
	check_eq(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_, 0, 0), 0, "PRIVATE_EXPEDITED after registering");
	check_err(syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY_, 1, 0), EINVAL, "membarrier QUERY with flags EINVAL");
	check_err(syscall(SYS_membarrier, 1 << 20, 0, 0), EINVAL, "membarrier unknown command EINVAL");

	/* rseq */
	static struct rseq_ area;
	check_err(syscall(SYS_rseq, &area, 8, 0, RSEQ_SIG_), EINVAL, "rseq with a short length EINVAL");
	check_err(syscall(SYS_rseq, (char *)&area + 4, 32, 0, RSEQ_SIG_), EINVAL, "rseq unaligned area EINVAL");
	check_err(syscall(SYS_rseq, &area, 32, 0x10, RSEQ_SIG_), EINVAL, "rseq unknown flag EINVAL");
#ifdef __GLIBC__
	if (&__rseq_size && __rseq_size > 0) {
		struct rseq_ *mine = (struct rseq_ *)((char *)__builtin_thread_pointer() + __rseq_offset);
		ok(mine->cpu_id >= 0, "glibc's registered rseq area has a current cpu_id");
		check_err(syscall(SYS_rseq, &area, 32, 0, RSEQ_SIG_), EINVAL, "second rseq registration at another address EINVAL");
		check_err(syscall(SYS_rseq, mine, __rseq_size < 32 ? 32 : __rseq_size, 0, RSEQ_SIG_), EBUSY,
			  "re-registering glibc's own area EBUSY");
	} else {
		skip("glibc did not register rseq", "glibc's registered rseq area has a current cpu_id");
		skip("glibc did not register rseq", "second rseq registration at another address EINVAL");
		skip("glibc did not register rseq", "re-registering glibc's own area EBUSY");
	}
#else
	area.cpu_id = -1;
	check_eq(syscall(SYS_rseq, &area, 32, 0, RSEQ_SIG_), 0, "rseq registration");
	sched_yield();
	ok(area.cpu_id >= 0, "the kernel fills cpu_id");
	check_eq(syscall(SYS_rseq, &area, 32, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG_), 0, "rseq unregistration");
#endif

	/* personality */
	int pers = personality(0xffffffff);
	check_eq(pers & 0xff, PER_LINUX, "personality query: PER_LINUX");
	c = tap_fork();
	if (c == 0) {
		personality(PER_LINUX | ADDR_NO_RANDOMIZE);
		_exit(personality(0xffffffff) == (PER_LINUX | ADDR_NO_RANDOMIZE) ? 0 : 1);
	}
	check_eq(tap_wait(c), 0, "personality flags set and read back");

	/* scheduler queries (raw: musl's wrappers return ENOSYS by design) */
	check_eq(syscall(SYS_sched_getscheduler, 0), SCHED_OTHER, "sched_getscheduler SCHED_OTHER");
	struct sched_param sp = { 99 };
	check_ok(syscall(SYS_sched_getparam, 0, &sp), "sched_getparam");
	check_eq(sp.sched_priority, 0, "SCHED_OTHER priority 0");
	check_eq(sched_get_priority_max(SCHED_FIFO), 99, "SCHED_FIFO max priority 99");
	check_eq(sched_get_priority_min(SCHED_FIFO), 1, "SCHED_FIFO min priority 1");
	check_eq(sched_get_priority_max(SCHED_OTHER), 0, "SCHED_OTHER max priority 0");
	check_err(sched_get_priority_max(77), EINVAL, "sched_get_priority_max bad policy EINVAL");
	check_err(syscall(SYS_sched_getscheduler, -1), EINVAL, "sched_getscheduler(-1) EINVAL");
	check_err(syscall(SYS_sched_getscheduler, 0x3ffffff0), ESRCH, "sched_getscheduler nonexistent ESRCH");
	sp.sched_priority = 5;
	check_err(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp), EINVAL, "SCHED_OTHER with priority 5 EINVAL");
	struct timespec ts;
	check_ok(sched_rr_get_interval(0, &ts), "sched_rr_get_interval");

	/* nice */
	c = tap_fork();
	if (c == 0) {
		errno = 0;
		int before = getpriority(PRIO_PROCESS, 0);
		if (setpriority(PRIO_PROCESS, 0, before + 3) != 0)
			_exit(1);
		_exit(getpriority(PRIO_PROCESS, 0) == before + 3 ? 0 : 2);
	}
	check_eq(tap_wait(c), 0, "setpriority/getpriority round trip");
	check_err(getpriority(77, 0), EINVAL, "getpriority bad which EINVAL");

	/* uname */
	struct utsname u;
	check_ok(uname(&u), "uname");
	ok(strcmp(u.sysname, "Linux") == 0 && strcmp(u.machine, "x86_64") == 0, "uname: Linux x86_64");
	return tap_done();
}
