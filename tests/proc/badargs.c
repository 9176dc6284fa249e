/*
 * badargs.c - bad arguments to every system call of the process-model
 * suite: NULL, low and kernel-half pointers, unaligned or huge lengths,
 * negative and closed fds, unknown flags and commands. Each row checks
 * the errno Linux returns (measured natively); ringbox must match, and
 * must never crash or hang on any of them.
 *
 * All calls are raw syscalls so glibc and musl run the same rows. Rows
 * whose errno depends on the order of Linux's checks say so; the order is
 * part of what is tested.
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

#define K 0xffff800000000000L /* first kernel-half address */
#define LOW 8L                /* unmapped, in the zero page */
#define ARCH_SET_FS_ 0x1002

struct row {
	const char *name;
	int want;
	long nr;
	long a[6];
};

static int pr[2], pw; /* a pipe with data waiting, its write end */

int main(void)
{
	tap_init();
	pipe(pr);
	pw = pr[1];
	write(pw, "abcdefgh", 8);
	long buf[64];
	long B = (long)buf;
	long P = (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long H = (long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap((void *)H, 4096); /* H: a hole */
	sigset_t ss;
	sigemptyset(&ss);
	long S = (long)&ss;
	struct timespec ts0 = { 0, 0 }, tsbad = { 0, -1 };
	long T0 = (long)&ts0, TB = (long)&tsbad;
	int tid_timer = -1;
	struct { int v[16]; } ev = { { 0, SIGUSR2, SIGEV_NONE } };
	syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &tid_timer);
	uint32_t fw = 0;
	long F = (long)&fw;
	pid_t me = getpid();
	long R = pr[0]; /* read end, with data waiting, never blocks */

	const struct row rows[] = {
		/* read/write family */
		{ "read fd -1", EBADF, SYS_read, { -1, B, 1 } },
		{ "read closed fd", EBADF, SYS_read, { 999, B, 1 } },
		{ "read into a kernel address", EFAULT, SYS_read, { R, K, 1 } },
		{ "read into NULL", EFAULT, SYS_read, { R, 0, 1 } },
		{ "write from a kernel address", EFAULT, SYS_write, { pw, K, 1 } },
		{ "write fd -1", EBADF, SYS_write, { -1, B, 1 } },
		{ "write to a pipe's read end", EBADF, SYS_write, { R, B, 1 } },
		{ "readv iovcnt -1", EINVAL, SYS_readv, { R, B, -1 } },
		{ "readv iovcnt 1025", EINVAL, SYS_readv, { R, B, 1025 } },
		{ "readv iov at a kernel address", EFAULT, SYS_readv, { R, K, 1 } },
		{ "lseek on a pipe", ESPIPE, SYS_lseek, { R, 0, SEEK_SET } },
		{ "lseek fd -1", EBADF, SYS_lseek, { -1, 0, SEEK_SET } },
		{ "ioctl fd -1", EBADF, SYS_ioctl, { -1, 0x5401, B } },
		{ "ioctl unknown request on a pipe", ENOTTY, SYS_ioctl, { R, 0xdead, B } },
		{ "open kernel-address path", EFAULT, SYS_open, { K, O_RDONLY } },
		{ "open empty path", ENOENT, SYS_open, { (long)"", O_RDONLY } },
		/* fds */
		{ "pipe2 kernel address", EFAULT, SYS_pipe2, { K, 0 } },
		{ "pipe2 unknown flags", EINVAL, SYS_pipe2, { B, 0xffff } },
		{ "dup -1", EBADF, SYS_dup, { -1 } },
		{ "dup2 -1", EBADF, SYS_dup2, { -1, 50 } },
		{ "dup2 to a negative fd", EBADF, SYS_dup2, { 0, -1 } },
		{ "dup3 same fd", EINVAL, SYS_dup3, { 0, 0, 0 } },
		{ "dup3 unknown flags", EINVAL, SYS_dup3, { 0, 50, 0xff } },
		{ "fcntl -1", EBADF, SYS_fcntl, { -1, F_GETFD } },
		{ "fcntl unknown command", EINVAL, SYS_fcntl, { 0, 9999 } },
		{ "fcntl F_DUPFD -1", EINVAL, SYS_fcntl, { 0, F_DUPFD, -1 } },
		{ "fcntl F_DUPFD INT_MAX", EINVAL, SYS_fcntl, { 0, F_DUPFD, INT_MAX } },
		{ "close -1", EBADF, SYS_close, { -1 } },
		{ "close INT_MAX", EBADF, SYS_close, { INT_MAX } },
		{ "close_range first > last", EINVAL, SYS_close_range, { 5, 3, 0 } },
		{ "close_range unknown flag", EINVAL, SYS_close_range, { 100, 200, 8 } },
		{ "poll kernel address", EFAULT, SYS_poll, { K, 1, 0 } },
		{ "poll nfds INT_MAX", EINVAL, SYS_poll, { B, INT_MAX, 0 } },
		{ "ppoll timeout at a kernel address", EFAULT, SYS_ppoll, { B, 0, K, 0, 8 } },
		{ "ppoll bad tv_nsec", EINVAL, SYS_ppoll, { B, 0, TB, 0, 8 } },
		{ "ppoll sigsetsize 4", EINVAL, SYS_ppoll, { B, 0, T0, S, 4 } },
		/* memory */
		{ "mmap length 0", EINVAL, SYS_mmap, { 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 } },
		{ "mmap MAP_FIXED unaligned", EINVAL, SYS_mmap, { 0x10001, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0 } },
		{ "mmap no mapping type", EINVAL, SYS_mmap, { 0, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0 } },
		{ "mmap file fd -1", EBADF, SYS_mmap, { 0, 4096, PROT_READ, MAP_PRIVATE, -1, 0 } },
		{ "mmap of a pipe", ENODEV, SYS_mmap, { 0, 4096, PROT_READ, MAP_PRIVATE, R, 0 } },
		{ "mmap unaligned offset", EINVAL, SYS_mmap, { 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1 } },
		{ "mmap length 2^63", ENOMEM, SYS_mmap, { 0, LONG_MIN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 } },
		{ "mmap MAP_FIXED at a kernel address", ENOMEM, SYS_mmap, { K, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0 } },
		{ "munmap kernel address", EINVAL, SYS_munmap, { K, 4096 } },
		{ "munmap unaligned", EINVAL, SYS_munmap, { 0x10001, 4096 } },
		{ "munmap length 0", EINVAL, SYS_munmap, { P, 0 } },
		{ "mprotect unaligned", EINVAL, SYS_mprotect, { P + 1, 4096, PROT_READ } },
		{ "mprotect unknown prot bit", EINVAL, SYS_mprotect, { P, 4096, 0x1000 } },
		{ "mprotect a hole", ENOMEM, SYS_mprotect, { H, 4096, PROT_READ } },
		{ "mprotect kernel address", ENOMEM, SYS_mprotect, { K, 4096, PROT_READ } },
		{ "mremap unaligned", EINVAL, SYS_mremap, { P + 1, 4096, 8192, 1 } },
		{ "mremap unknown flags", EINVAL, SYS_mremap, { P, 4096, 8192, 0x100 } },
		{ "mremap new length 0", EINVAL, SYS_mremap, { P, 4096, 0, 1 } },
		{ "mremap a hole", EFAULT, SYS_mremap, { H, 4096, 8192, 1 } },
		{ "madvise unaligned", EINVAL, SYS_madvise, { P + 1, 4096, MADV_DONTNEED } },
		{ "madvise unknown advice", EINVAL, SYS_madvise, { P, 4096, 9999 } },
		{ "madvise a hole", ENOMEM, SYS_madvise, { H, 4096, MADV_DONTNEED } },
		{ "mincore unaligned", EINVAL, SYS_mincore, { P + 1, 4096, B } },
		{ "mincore vector at a kernel address", EFAULT, SYS_mincore, { P, 4096, K } },
		{ "mincore a hole", ENOMEM, SYS_mincore, { H, 4096, B } },
		{ "mincore kernel address", ENOMEM, SYS_mincore, { K, 4096, B } },
		{ "msync unknown flags", EINVAL, SYS_msync, { P, 4096, 0x100 } },
		{ "msync a hole", ENOMEM, SYS_msync, { H, 4096, MS_SYNC } },
		/* processes */
		{ "clone THREAD without SIGHAND", EINVAL, SYS_clone, { CLONE_THREAD | CLONE_VM, 0, 0, 0, 0 } },
		{ "clone SIGHAND without VM", EINVAL, SYS_clone, { CLONE_SIGHAND, 0, 0, 0, 0 } },
		{ "clone3 size 0", EINVAL, SYS_clone3, { B, 0 } },
		{ "clone3 args at a kernel address", EFAULT, SYS_clone3, { K, 88 } },
		{ "clone3 size above a page", E2BIG, SYS_clone3, { B, 8192 } },
		{ "execve path at a kernel address", EFAULT, SYS_execve, { K, 0, 0 } },
		{ "execve empty path", ENOENT, SYS_execve, { (long)"", 0, 0 } },
		{ "execve argv at a kernel address", EFAULT, SYS_execve, { (long)"/proc/self/exe", K, 0 } },
		{ "execveat dirfd -1, relative path", EBADF, SYS_execveat, { -1, (long)"x", B, B, 0 } },
		{ "execveat unknown flag", EINVAL, SYS_execveat, { AT_FDCWD, (long)"/", B, B, 0x8 } },
		{ "wait4 no children", ECHILD, SYS_wait4, { -1, B, 0, 0 } },
		{ "wait4 unknown option", EINVAL, SYS_wait4, { -1, B, 0x100000, 0 } },
		{ "waitid bad idtype", EINVAL, SYS_waitid, { 9, 0, B, WEXITED, 0 } },
		{ "waitid no options", EINVAL, SYS_waitid, { P_ALL, 0, B, 0, 0 } },
		{ "waitid P_PIDFD -1", EINVAL, SYS_waitid, { P_PIDFD, -1, B, WEXITED, 0 } },
		{ "pidfd_open -1", EINVAL, SYS_pidfd_open, { -1, 0 } },
		{ "pidfd_open unknown flag", EINVAL, SYS_pidfd_open, { me, 1 } },
		{ "pidfd_open nonexistent", ESRCH, SYS_pidfd_open, { 0x3ffffff0, 0 } },
		{ "pidfd_getfd fd -1", EBADF, SYS_pidfd_getfd, { -1, 0, 0 } },
		{ "pidfd_getfd not a pidfd", EBADF, SYS_pidfd_getfd, { R, 0, 0 } },
		{ "setpgid -1", EINVAL, SYS_setpgid, { -1, 0 } },
		{ "getpgid -1", ESRCH, SYS_getpgid, { -1 } },
		{ "getsid -1", ESRCH, SYS_getsid, { -1 } },
		/* signals */
		{ "kill signal 65", EINVAL, SYS_kill, { me, 65 } },
		{ "kill nonexistent", ESRCH, SYS_kill, { 0x3ffffff0, 0 } },
		{ "kill INT_MIN", ESRCH, SYS_kill, { INT_MIN, 0 } },
		{ "tkill tid -1", EINVAL, SYS_tkill, { -1, SIGUSR1 } },
		{ "tgkill tgid -1", EINVAL, SYS_tgkill, { -1, me, SIGUSR1 } },
		{ "tgkill signal 65", EINVAL, SYS_tgkill, { me, me, 65 } },
		{ "rt_sigaction SIGKILL", EINVAL, SYS_rt_sigaction, { SIGKILL, B, 0, 8 } },
		{ "rt_sigaction signal 0", EINVAL, SYS_rt_sigaction, { 0, 0, B, 8 } },
		{ "rt_sigaction signal 65", EINVAL, SYS_rt_sigaction, { 65, 0, B, 8 } },
		{ "rt_sigaction sigsetsize 7", EINVAL, SYS_rt_sigaction, { SIGUSR1, 0, B, 7 } },
		{ "rt_sigaction act at a kernel address", EFAULT, SYS_rt_sigaction, { SIGUSR1, K, 0, 8 } },
		{ "rt_sigaction oldact at a kernel address", EFAULT, SYS_rt_sigaction, { SIGUSR1, 0, K, 8 } },
		{ "rt_sigprocmask how 3", EINVAL, SYS_rt_sigprocmask, { 3, S, 0, 8 } },
		{ "rt_sigprocmask set at a kernel address", EFAULT, SYS_rt_sigprocmask, { SIG_BLOCK, K, 0, 8 } },
		{ "rt_sigprocmask sigsetsize 4", EINVAL, SYS_rt_sigprocmask, { SIG_BLOCK, S, 0, 4 } },
		{ "rt_sigpending kernel address", EFAULT, SYS_rt_sigpending, { K, 8 } },
		{ "rt_sigpending sigsetsize 16", EINVAL, SYS_rt_sigpending, { B, 16 } },
		{ "rt_sigtimedwait set at a kernel address", EFAULT, SYS_rt_sigtimedwait, { K, 0, T0, 8 } },
		{ "rt_sigtimedwait timeout at a kernel address", EFAULT, SYS_rt_sigtimedwait, { S, 0, K, 8 } },
		{ "rt_sigtimedwait sigsetsize 4", EINVAL, SYS_rt_sigtimedwait, { S, 0, T0, 4 } },
		{ "rt_sigqueueinfo info at a kernel address", EFAULT, SYS_rt_sigqueueinfo, { me, SIGUSR1, K } },
		{ "rt_sigsuspend kernel address", EFAULT, SYS_rt_sigsuspend, { K, 8 } },
		{ "rt_sigsuspend sigsetsize 4", EINVAL, SYS_rt_sigsuspend, { S, 4 } },
		{ "sigaltstack kernel address", EFAULT, SYS_sigaltstack, { K, 0 } },
		{ "sigaltstack old at a kernel address", EFAULT, SYS_sigaltstack, { 0, K } },
		/* futex */
		{ "futex kernel address", EFAULT, SYS_futex, { K, FUTEX_WAIT_, 0, 0, 0, 0 } },
		{ "futex NULL", EFAULT, SYS_futex, { 0, FUTEX_WAIT_, 0, 0, 0, 0 } },
		{ "futex unaligned", EINVAL, SYS_futex, { F + 1, FUTEX_WAIT_, 0, 0, 0, 0 } },
		{ "futex unknown op", ENOSYS, SYS_futex, { F, 99, 0, 0, 0, 0 } },
		{ "futex timeout at a kernel address", EFAULT, SYS_futex, { F, FUTEX_WAIT_, 0, K, 0, 0 } },
		{ "futex WAKE_OP uaddr2 at a kernel address", EFAULT, SYS_futex, { F, FUTEX_WAKE_OP_, 1, 1, K, 0 } },
		{ "futex CMP_REQUEUE uaddr2 at a kernel address", EFAULT, SYS_futex, { F, FUTEX_CMP_REQUEUE_, 1, 1, K, 0 } },
		{ "futex WAIT_BITSET bitset 0", EINVAL, SYS_futex, { F, FUTEX_WAIT_BITSET_, 0, 0, 0, 0 } },
		{ "set_robust_list len 0", EINVAL, SYS_set_robust_list, { B, 0 } },
		{ "get_robust_list nonexistent", ESRCH, SYS_get_robust_list, { 0x3ffffff0, B, B } },
		{ "get_robust_list head at a kernel address", EFAULT, SYS_get_robust_list, { 0, K, B } },
		/* time */
		{ "clock_gettime clock 99", EINVAL, SYS_clock_gettime, { 99, B } },
		{ "clock_gettime kernel address", EFAULT, SYS_clock_gettime, { CLOCK_MONOTONIC, K } },
		{ "clock_getres kernel address", EFAULT, SYS_clock_getres, { CLOCK_MONOTONIC, K } },
		{ "clock_nanosleep clock 99", EINVAL, SYS_clock_nanosleep, { 99, 0, T0, 0 } },
		{ "nanosleep kernel address", EFAULT, SYS_nanosleep, { K, 0 } },
		{ "nanosleep tv_nsec -1", EINVAL, SYS_nanosleep, { TB, 0 } },
		{ "gettimeofday kernel address", EFAULT, SYS_gettimeofday, { K, 0 } },
		{ "time kernel address", EFAULT, SYS_time, { K } },
		{ "setitimer which 5", EINVAL, SYS_setitimer, { 5, B, 0 } },
		{ "setitimer value at a kernel address", EFAULT, SYS_setitimer, { ITIMER_REAL, K, 0 } },
		{ "getitimer kernel address", EFAULT, SYS_getitimer, { ITIMER_REAL, K } },
		{ "timer_create clock 99", EINVAL, SYS_timer_create, { 99, 0, B } },
		{ "timer_create sigevent at a kernel address", EFAULT, SYS_timer_create, { CLOCK_MONOTONIC, K, B } },
		{ "timer_settime unknown id", EINVAL, SYS_timer_settime, { 4242, 0, B, 0 } },
		{ "timer_settime value at a kernel address", EFAULT, SYS_timer_settime, { tid_timer, 0, K, 0 } },
		{ "timer_gettime kernel address", EFAULT, SYS_timer_gettime, { tid_timer, K } },
		{ "timer_delete unknown id", EINVAL, SYS_timer_delete, { 4242 } },
		{ "times kernel address", EFAULT, SYS_times, { K } },
		{ "getrusage who 5", EINVAL, SYS_getrusage, { 5, B } },
		{ "getrusage kernel address", EFAULT, SYS_getrusage, { RUSAGE_SELF, K } },
		/* limits, identity, misc */
		{ "getrlimit resource 99", EINVAL, SYS_getrlimit, { 99, B } },
		{ "getrlimit kernel address", EFAULT, SYS_getrlimit, { RLIMIT_NOFILE, K } },
		{ "setrlimit kernel address", EFAULT, SYS_setrlimit, { RLIMIT_NOFILE, K } },
		{ "prlimit64 new at a kernel address", EFAULT, SYS_prlimit64, { 0, RLIMIT_NOFILE, K, 0 } },
		{ "sysinfo kernel address", EFAULT, SYS_sysinfo, { K } },
		{ "getrandom kernel address", EFAULT, SYS_getrandom, { K, 8, 0 } },
		{ "getrandom unknown flag", EINVAL, SYS_getrandom, { B, 8, 0x100 } },
		{ "uname kernel address", EFAULT, SYS_uname, { K } },
		{ "getresuid kernel address", EFAULT, SYS_getresuid, { K, B, B } },
		{ "getgroups -1", EINVAL, SYS_getgroups, { -1, B } },
		{ "setgroups -1", EINVAL, SYS_setgroups, { -1, B } },
		{ "setgroups 65537", EINVAL, SYS_setgroups, { 65537, B } },
		{ "setgroups list at a kernel address", EFAULT, SYS_setgroups, { 1, K } },
		{ "capget header at a kernel address", EFAULT, SYS_capget, { K, B } },
		{ "prctl PR_SET_PDEATHSIG 65", EINVAL, SYS_prctl, { PR_SET_PDEATHSIG, 65 } },
		{ "prctl PR_GET_PDEATHSIG kernel address", EFAULT, SYS_prctl, { PR_GET_PDEATHSIG, K } },
		{ "prctl PR_SET_NAME kernel address", EFAULT, SYS_prctl, { PR_SET_NAME, K } },
		{ "prctl unknown option", EINVAL, SYS_prctl, { 0x7fff1234 } },
		{ "sched_getaffinity size 0", EINVAL, SYS_sched_getaffinity, { 0, 0, B } },
		{ "sched_getaffinity kernel address", EFAULT, SYS_sched_getaffinity, { 0, 64, K } },
		{ "sched_setaffinity kernel address", EFAULT, SYS_sched_setaffinity, { 0, 64, K } },
		{ "sched_getparam kernel address", EFAULT, SYS_sched_getparam, { 0, K } },
		{ "sched_getparam pid -1", EINVAL, SYS_sched_getparam, { -1, B } },
		{ "getcpu kernel address", EFAULT, SYS_getcpu, { K, 0, 0 } },
		{ "membarrier unknown flag", EINVAL, SYS_membarrier, { 0, 1, 0 } },
		{ "rseq length 0", EINVAL, SYS_rseq, { B, 0, 0, 0 } },
		{ "seccomp SET_MODE_FILTER kernel address", EFAULT, SYS_seccomp, { 1, 0, K } },
		{ "seccomp SET_MODE_FILTER hole", EFAULT, SYS_seccomp, { 1, 0, H } },
		{ "seccomp SET_MODE_FILTER unknown flag", EINVAL, SYS_seccomp, { 1, 1L << 40, B } },
		{ "seccomp SET_MODE_STRICT with flags", EINVAL, SYS_seccomp, { 0, 1, 0 } },
		{ "seccomp GET_ACTION_AVAIL kernel address", EFAULT, SYS_seccomp, { 2, 0, K } },
		{ "seccomp GET_NOTIF_SIZES kernel address", EFAULT, SYS_seccomp, { 3, 0, K } },
		{ "seccomp unknown operation", EINVAL, SYS_seccomp, { -1, 0, 0 } },
		{ "prctl PR_SET_SECCOMP unknown mode", EINVAL, SYS_prctl, { PR_SET_SECCOMP, 3 } },
		{ "prctl PR_SET_SECCOMP filter kernel address", EFAULT, SYS_prctl, { PR_SET_SECCOMP, 2, K } },
		{ "arch_prctl ARCH_SET_FS kernel address", EPERM, SYS_arch_prctl, { ARCH_SET_FS_, K } },
		{ "arch_prctl unknown code", EINVAL, SYS_arch_prctl, { 0x9999, 0 } },
	};

	for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		errno = 0;
		long ret = syscall(r->nr, r->a[0], r->a[1], r->a[2], r->a[3], r->a[4], r->a[5]);
		int e = errno;
		char got[48];
		snprintf(got, sizeof got, "ret %ld errno %s", ret == -1 ? -1L : 0L, tap_errname(e));
		tap_report(ret == -1 && e == r->want, got, tap_errname(r->want), "%s: %s", r->name, tap_errname(r->want));
	}

	/* Rows that need a zombie child to get past ECHILD; each also checks
	 * whether Linux reaped the child before failing the copy-out. */
	static const struct {
		const char *name;
		int which; /* 0 wait4 status, 1 wait4 rusage, 2 waitid infop */
	} zrows[] = {
		{ "wait4 status at a kernel address", 0 },
		{ "wait4 rusage at a kernel address", 1 },
		{ "waitid infop at a kernel address", 2 },
	};
	for (unsigned i = 0; i < sizeof zrows / sizeof zrows[0]; i++) {
		pid_t c = tap_fork();
		if (c == 0)
			_exit(0);
		siginfo_t si;
		waitid(P_PID, c, &si, WEXITED | WNOWAIT);
		long ret;
		errno = 0;
		if (zrows[i].which == 0)
			ret = syscall(SYS_wait4, c, K, 0, 0);
		else if (zrows[i].which == 1)
			ret = syscall(SYS_wait4, c, B, 0, K);
		else
			ret = syscall(SYS_waitid, P_PID, c, K, WEXITED, 0);
		int e = errno;
		ok(ret == -1 && e == EFAULT, "%s: EFAULT", zrows[i].name);
		errno = 0;
		long again = syscall(SYS_wait4, c, B, WNOHANG, 0);
		ok(again == -1 && errno == ECHILD, "%s: the child was reaped all the same", zrows[i].name);
		if (again == 0)
			tap_wait(c);
	}
	syscall(SYS_timer_delete, tid_timer);
	return tap_done();
}
