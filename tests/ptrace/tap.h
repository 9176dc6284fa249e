/*
 * tap.h: shared helpers of the ptrace(2) conformance suite.
 *
 * Every program of tests/ptrace prints TAP-like lines ("ok N - name",
 * "not ok N - name: got X want Y", "# passed P failed F") and exits 0 iff
 * nothing failed, so that the e2e harness can compare a native run with a
 * run under ringbox byte for byte.  Nothing printed on stdout may depend on
 * PIDs, addresses or timing.
 *
 * The helpers here:
 *   - TAP reporting (ok/check_eq/check_err/skip/tap_done),
 *   - a watchdog: alarm(tap_watchdog_secs()) that SIGKILLs every child we forked and fails,
 *   - raw ptrace and wait wrappers that keep the syscall ABI visible,
 *   - spawners of tracees that stop themselves or wait on a gate pipe,
 *   - /proc/[pid]/status readers (State, TracerPid).
 *
 * Only libc headers are used (no <linux/...>), so that every program builds
 * with both glibc and musl.
 */
#ifndef RINGBOX_TESTS_PTRACE_TAP_H
#define RINGBOX_TESTS_PTRACE_TAP_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "../include/tap_common.h"

/* Values from include/uapi/linux/ptrace.h and wait.h, for libcs that lack them. */
#ifndef __WALL
#define __WALL 0x40000000
#endif
#ifndef __WCLONE
#define __WCLONE 0x80000000
#endif
#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif
#ifndef PTRACE_SYSEMU_SINGLESTEP
#define PTRACE_SYSEMU_SINGLESTEP 32
#endif
#ifndef PTRACE_ARCH_PRCTL
#define PTRACE_ARCH_PRCTL 30
#endif
#define PT_GET_SYSCALL_INFO 0x420e
#define PT_SYSCALL_INFO_NONE 0
#define PT_SYSCALL_INFO_ENTRY 1
#define PT_SYSCALL_INFO_EXIT 2
#define PT_SYSCALL_INFO_SECCOMP 3
#define PT_EVENT_STOP 128
#define PT_O_EXITKILL 0x00100000
#define PT_O_SUSPEND_SECCOMP 0x00200000
#define PT_PEEKSIGINFO_SHARED 1
#define AUDIT_ARCH_X86_64_ 0xc000003eu
#define ARCH_SET_FS_ 0x1002
#define ARCH_GET_FS_ 0x1003

/* struct ptrace_syscall_info of include/uapi/linux/ptrace.h (88 bytes). */
struct sc_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
		} entry;
		struct {
			int64_t rval;
			uint8_t is_error;
		} exit;
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint32_t ret_data;
		} seccomp;
	};
};

/* struct ptrace_peeksiginfo_args of include/uapi/linux/ptrace.h. */
struct peeksiginfo_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

/* The wait status of a ptrace event stop: SIGTRAP | (event << 8). */
#define EVENT_STATUS(ev) ((SIGTRAP | ((ev) << 8)) << 8 | 0x7f)
/* The event number of a stop status, 0 if none. */
#define STATUS_EVENT(st) ((unsigned)(st) >> 16)

/* kill is wrapped so that a failed spawn (pid -1 or 0) can never signal
 * every process of the machine or our whole process group. */
static inline int tap_safe_kill(pid_t pid, int sig)
{
	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	return (int)syscall(SYS_kill, pid, sig);
}
#define kill(pid, sig) tap_safe_kill(pid, sig)

static int tap_n, tap_failed, tap_passed;
static pid_t tap_kids[256];
static int tap_nkids;

/* tap_track remembers a child so that the watchdog and tap_done kill it. */
static inline void tap_track(pid_t pid)
{
	if (pid > 0 && tap_nkids < (int)(sizeof tap_kids / sizeof tap_kids[0]))
		tap_kids[tap_nkids++] = pid;
}

/* tap_untrack forgets a child that was reaped, so that its pid, if reused,
 * is never signalled. */
static inline void tap_untrack(pid_t pid)
{
	for (int i = 0; i < tap_nkids; i++)
		if (tap_kids[i] == pid)
			tap_kids[i] = 0;
}

static inline void tap_killall(void)
{
	for (int i = 0; i < tap_nkids; i++)
		if (tap_kids[i] > 0)
			kill(tap_kids[i], SIGKILL);
}

static inline void tap_alarm(int sig)
{
	static const char msg[] = "not ok - watchdog: timed out\n";
	(void)sig;
	tap_killall();
	if (write(1, msg, sizeof msg - 1) < 0) {
		/* nothing left to do */
	}
	_exit(2);
}

/* tap_init must be called first: unbuffered stdout keeps the order of lines
 * identical across fork, and the watchdog kills stragglers after 10 s. */
static inline void tap_init(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGALRM, tap_alarm);
	alarm(tap_watchdog_secs());
}

static inline void vreport(int good, const char *name, const char *fmt, va_list ap)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "%sok %d - %s", good ? "" : "not ", ++tap_n, name);
	if (!good && fmt && n < (int)sizeof buf) {
		n += snprintf(buf + n, sizeof buf - n, ": ");
		if (n < (int)sizeof buf)
			n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	}
	if (n >= (int)sizeof buf - 1)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) < 0) {
		/* stdout gone: the exit status still reports */
	}
	if (good)
		tap_passed++;
	else
		tap_failed++;
}

/* ok reports one case; fmt (printf-style) explains a failure. */
static inline void ok(int good, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(good, name, fmt, ap);
	va_end(ap);
}

/* check_eq reports got == want. */
static inline void check_eq(long long got, long long want, const char *name)
{
	ok(got == want, name, "got %lld want %lld", got, want);
}

/* check_hex is check_eq with hexadecimal output (wait statuses, masks). */
static inline void check_hex(unsigned long long got, unsigned long long want, const char *name)
{
	ok(got == want, name, "got %#llx want %#llx", got, want);
}

/* check_err reports that a call returned -1 with errno want; call it right
 * after the call so that errno is still the call's. */
static inline void check_err(long ret, int want, const char *name)
{
	int e = errno;
	ok(ret == -1 && e == want, name, "got ret=%ld errno=%s want errno=%s", ret,
	   ret == -1 ? tap_errname(e) : "none", tap_errname(want));
}

/* check_ok reports that a call returned 0 (or any non-negative value). */
static inline void check_ok(long ret, const char *name)
{
	int e = errno;
	ok(ret >= 0, name, "got ret=%ld errno=%s want success", ret, ret == -1 ? tap_errname(e) : "none");
}

/* skip reports a case that does not run here; it counts as passed. */
static inline void skip(const char *name, const char *reason)
{
	printf("ok %d - %s # SKIP %s\n", ++tap_n, name, reason);
	tap_passed++;
}

static inline void kill_reap(pid_t pid);

/* tap_done kills and reaps leftover children (none may keep stdout open
 * after the program exits), prints the summary and returns the exit status
 * for main. */
static inline int tap_done(void)
{
	for (int i = tap_nkids - 1; i >= 0; i--)
		if (tap_kids[i] > 0)
			kill_reap(tap_kids[i]);
	while (waitpid(-1, NULL, __WALL | WNOHANG) > 0)
		;
	printf("# passed %d failed %d\n", tap_passed, tap_failed);
	return tap_failed ? 1 : 0;
}

/* pt is ptrace(2) as the raw syscall: PEEK* store the word at data. */
static inline long pt(long req, pid_t pid, unsigned long addr, unsigned long data)
{
	return syscall(SYS_ptrace, req, (long)pid, addr, data);
}

/* wait_pid waits for pid with __WALL and returns the status, -1 on error. */
static inline int wait_pid(pid_t pid)
{
	int st;
	pid_t r;
	if (pid <= 0) { // a failed spawn: never wait for "any child"
		errno = ECHILD;
		return -1;
	}
	do
		r = waitpid(pid, &st, __WALL);
	while (r == -1 && errno == EINTR);
	if (r != pid)
		return -1;
	if (WIFEXITED(st) || WIFSIGNALED(st))
		tap_untrack(pid);
	return st;
}

/* desc formats a wait status for failure messages (no PIDs). */
static const char *desc(int st)
{
	static char buf[4][64];
	static int i;
	char *b = buf[i++ & 3];
	if (st == -1)
		snprintf(b, 64, "wait-error(%s)", tap_errname(errno));
	else if (WIFEXITED(st))
		snprintf(b, 64, "exited(%d)", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(b, 64, "killed(%d)", WTERMSIG(st));
	else if (WIFSTOPPED(st))
		snprintf(b, 64, "stopped(%d,event=%d)", WSTOPSIG(st), STATUS_EVENT(st));
	else
		snprintf(b, 64, "status(%#x)", st);
	return b;
}

/* check_status compares a wait status and prints both in words. */
static inline void check_status(int got, int want, const char *name)
{
	ok(got == want, name, "got %s want %s", desc(got), desc(want));
}

/* STOPPED(sig) and EXITED(code), KILLED(sig) build wait statuses. */
#define STOPPED(sig) (((sig) << 8) | 0x7f)
#define EXITED(code) ((code) << 8)
#define KILLED(sig) (sig)

/* xfork forks a tracked child which dies with its parent. */
static inline pid_t xfork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		tap_nkids = 0;
		return 0;
	}
	if (pid < 0) {
		perror("fork");
		exit(3);
	}
	tap_track(pid);
	return pid;
}

typedef int (*tracee_fn)(void *arg);

/* spawn_traceme forks a child that calls PTRACE_TRACEME and stops itself with
 * SIGSTOP, then runs fn and exits with its result; it returns once the child
 * is in its signal-delivery-stop for that SIGSTOP (or -1 if it is not). */
static inline pid_t spawn_traceme(tracee_fn fn, void *arg)
{
	pid_t pid = xfork();
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(98);
		kill(getpid(), SIGSTOP);
		_exit(fn ? fn(arg) : 0);
	}
	int st = wait_pid(pid);
	if (st != STOPPED(SIGSTOP)) {
		fprintf(stderr, "spawn_traceme: %s\n", desc(st));
		return -1;
	}
	return pid;
}

/* A gate is a pipe a child blocks on until the parent opens it, so that the
 * parent can attach or seize a child at a known point. */
struct gate {
	int rd, wr;
};

static inline void gate_init(struct gate *g)
{
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		exit(3);
	}
	g->rd = p[0];
	g->wr = p[1];
}

/* gate_wait blocks in read(2) until gate_open, retrying after stops. */
static inline void gate_wait(struct gate *g)
{
	char c;
	close(g->wr);
	while (read(g->rd, &c, 1) == -1 && errno == EINTR)
		;
	close(g->rd);
}

/* gate_open lets the child run on. */
static inline void gate_open(struct gate *g)
{
	close(g->rd);
	if (write(g->wr, "g", 1) != 1)
		perror("gate_open");
	close(g->wr);
}

/* spawn_gated forks a child that waits on *g and then runs fn. */
static inline pid_t spawn_gated(struct gate *g, tracee_fn fn, void *arg)
{
	gate_init(g);
	pid_t pid = xfork();
	if (pid == 0) {
		gate_wait(g);
		_exit(fn ? fn(arg) : 0);
	}
	return pid;
}

/* spawn_sleeper forks a child that pauses forever (until killed). */
static inline pid_t spawn_sleeper(void)
{
	pid_t pid = xfork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* attach_stopped attaches with PTRACE_ATTACH and waits for the SIGSTOP stop. */
static inline int attach_stopped(pid_t pid)
{
	if (pt(PTRACE_ATTACH, pid, 0, 0) != 0)
		return -1;
	return wait_pid(pid) == STOPPED(SIGSTOP) ? 0 : -1;
}

/* kill_reap kills a child and reaps it. A tracee already in its
 * PTRACE_EVENT_EXIT stop ignores SIGKILL, so it is also resumed; stops
 * reported on the way are resumed too. */
static inline void kill_reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	pt(PTRACE_CONT, pid, 0, 0);
	for (;;) {
		pid_t r = waitpid(pid, &st, __WALL);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == pid && WIFSTOPPED(st)) {
			pt(PTRACE_CONT, pid, 0, 0);
			continue;
		}
		break;
	}
	tap_untrack(pid);
}

/* proc_field returns the value of a "Key:\t..." line of /proc/pid/status in
 * buf (trailing newline removed), or NULL. */
static const char *proc_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t kl = strlen(key);
	const char *res = NULL;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *v = line + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			size_t vl = strlen(v);
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, v, vl);
			buf[vl] = 0;
			res = buf;
			break;
		}
	}
	fclose(f);
	return res;
}

/* proc_state returns the State letter of /proc/pid/status, '?' if none. */
static inline char proc_state(pid_t pid)
{
	char buf[64];
	return proc_field(pid, "State", buf, sizeof buf) ? buf[0] : '?';
}

/* proc_tracer returns TracerPid of /proc/pid/status, -1 if unreadable. */
static inline long proc_tracer(pid_t pid)
{
	char buf[64];
	return proc_field(pid, "TracerPid", buf, sizeof buf) ? atol(buf) : -1;
}

/* wait_state polls until pid's State letter is c (at most ~2 s); it is used
 * only where Linux gives no event to wait for (a tracee entering a stop it
 * reports to no one). */
static inline int wait_state(pid_t pid, char c)
{
	for (int i = 0; i < 2000; i++) {
		if (proc_state(pid) == c)
			return 1;
		usleep(1000);
	}
	return 0;
}

/* other_thread returns a thread of pid's group other than pid itself,
 * waiting up to ~1 s for one to appear; 0 if none. */
static inline pid_t other_thread(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	for (int i = 0; i < 1000; i++) {
		DIR *d = opendir(path);
		pid_t tid = 0;
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			pid_t t = (pid_t)atoi(e->d_name);
			if (t > 0 && t != pid)
				tid = t;
		}
		if (d)
			closedir(d);
		if (tid)
			return tid;
		usleep(1000);
	}
	return 0;
}

/* cont_end resumes pid with PTRACE_CONT and waits for its next report,
 * delivering SIGCHLD signal-delivery-stops on the way (a tracee's own
 * children send it SIGCHLD); returns the first other status. */
static inline int cont_end(pid_t pid)
{
	int sig = 0, st = -1;
	for (int i = 0; i < 64; i++) {
		if (pt(PTRACE_CONT, pid, 0, sig) != 0)
			return -1;
		st = wait_pid(pid);
		if (st == STOPPED(SIGCHLD)) {
			sig = SIGCHLD;
			continue;
		}
		break;
	}
	return st;
}

/* NOBODY is the unprivileged uid and gid the access tests drop to. */
#define NOBODY 65534

/* drop_creds sets the calling (single-threaded) process's real, effective
 * and saved uids and gids and clears its supplementary groups; dumpable
 * (0 or 1) is set afterwards because a credential change resets it to
 * suid_dumpable (Linux: kernel/cred.c:commit_creds()). -1 keeps it. */
static inline int drop_creds(uid_t ru, uid_t eu, uid_t su, gid_t rg, gid_t eg, gid_t sg, int dumpable)
{
	if (syscall(SYS_setgroups, 0, NULL) != 0 || setresgid(rg, eg, sg) != 0 || setresuid(ru, eu, su) != 0)
		return -1;
	if (dumpable >= 0 && prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0) != 0)
		return -1;
	return 0;
}

/* spawn_as forks a child that drops to the given uid/gid (all three ids
 * equal) and dumpable setting and then pauses; it returns once the child
 * has done so. The child also calls PR_SET_PTRACER(PR_SET_PTRACER_ANY) so
 * that YAMA's default scope 1, where YAMA exists (ringbox), does not add
 * its relational check to the checks under test; without YAMA the call
 * fails with EINVAL, which is ignored. */
static inline pid_t spawn_as(uid_t uid, gid_t gid, int dumpable)
{
	int p[2];
	char c = 'x';
	if (pipe(p) != 0)
		return -1;
	pid_t pid = xfork();
	if (pid == 0) {
		close(p[0]);
		if (drop_creds(uid, uid, uid, gid, gid, gid, dumpable) != 0)
			_exit(97);
		prctl(0x59616d61 /* PR_SET_PTRACER */, -1UL /* PR_SET_PTRACER_ANY */, 0, 0, 0);
		if (write(p[1], &c, 1) != 1)
			_exit(96);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		pid = -1;
	close(p[0]);
	return pid;
}

/* getregs reads the tracee's registers; returns 0 on success. */
static inline int getregs(pid_t pid, struct user_regs_struct *r)
{
	return (int)pt(PTRACE_GETREGS, pid, 0, (unsigned long)r);
}

/* syscall_to resumes pid with PTRACE_SYSCALL until a syscall-entry-stop of
 * syscall nr (it assumes entry and exit stops alternate from an entry) and
 * returns the stop's status, or -1. */
static inline int syscall_to(pid_t pid, long nr)
{
	struct user_regs_struct r;
	int st;
	for (int i = 0; i < 200; i++) {
		if (pt(PTRACE_SYSCALL, pid, 0, 0) != 0)
			return -1;
		st = wait_pid(pid);
		if (st == -1 || !WIFSTOPPED(st))
			return -1;
		if ((WSTOPSIG(st) & 0x7f) != SIGTRAP)
			continue;
		if (getregs(pid, &r) != 0)
			return -1;
		if ((long)r.orig_rax == nr && (long)r.rax == -ENOSYS)
			return st;
	}
	return -1;
}

#ifdef TAP_STEP_REGION
/*
 * step_region is a known instruction sequence for single-step tests: an int3
 * (so the tracee reports a SIGTRAP right before step_start), three one-byte
 * nops, "mov $SYS_getpid,%eax" (5 bytes), a syscall instruction (2 bytes),
 * a nop and a ret.  It is called as a C function returning getpid().
 */
extern char step_region[], step_start[], step_mov[], step_syscall[], step_after[], step_ret[];
long step_region_fn(void) __asm__("step_region");
__asm__(".text\n"
	".globl step_region\n"
	"step_region:\n"
	"  int3\n"
	"step_start:\n"
	"  nop\n"
	"  nop\n"
	"  nop\n"
	"step_mov:\n"
	"  mov $39, %eax\n"
	"step_syscall:\n"
	"  syscall\n"
	"step_after:\n"
	"  nop\n"
	"step_ret:\n"
	"  ret\n");
#endif

#ifdef TAP_REGS_PROBE
/*
 * regs_probe(pid, in, out) loads the 16 bytes at in into xmm0, zeroes r12,
 * stops itself with a raw kill(pid, SIGSTOP), then stores xmm1 at out and
 * returns r12: a tracer changing r12 or xmm1 in that stop is observable, and
 * xmm0 holds a known value during it.  The stop's rip is regs_probe_after.
 */
extern char regs_probe_after[];
long regs_probe(pid_t pid, const void *in, void *out);
__asm__(".text\n"
	".globl regs_probe\n"
	"regs_probe:\n"
	"  push %r12\n"
	"  xor %r12d, %r12d\n"
	"  movdqu (%rsi), %xmm0\n"
	"  mov $62, %eax\n"
	"  mov $19, %esi\n"
	"  syscall\n"
	"regs_probe_after:\n"
	"  movdqu %xmm1, (%rdx)\n"
	"  mov %r12, %rax\n"
	"  pop %r12\n"
	"  ret\n");
#endif

#endif
