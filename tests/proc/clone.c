/*
 * clone.c - clone and clone3 with the flags glibc, musl and Go use.
 *
 * Linux: kernel/fork.c:copy_process() (flag checks), kernel/fork.c:
 * clone3 (struct clone_args). Children that share our VM run on their own
 * stacks through libc's clone(); fork-like clones use the raw syscall.
 */
#include "tap.h"
#include "abi.h"
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <fcntl.h>

#define STK (64 * 1024)
static char *stack_top(void)
{
	char *s = mmap(NULL, STK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return s + STK;
}

static volatile int shared_word;
static int fd_to_close;

static int fn_write(void *a)
{
	(void)a;
	shared_word = 77;
	return 0;
}
static int fn_close(void *a)
{
	(void)a;
	return close(fd_to_close) == 0 ? 0 : 1;
}
static int fn_umask(void *a)
{
	(void)a;
	umask(0077);
	return 0;
}
static void h_usr2(int s) { (void)s; }
static int fn_sigaction(void *a)
{
	(void)a;
	signal(SIGUSR2, h_usr2);
	return 0;
}

/* Thread-clone children: they must not touch libc's TLS (errno, the
 * stack protector) since they run on the parent's or a fake TLS. */
static volatile uint32_t ctid_word, ptid_word, seen_ctid;
static volatile long child_tid, child_pid, child_fs8;
static volatile int thread_done;

__attribute__((noinline)) static long raw_syscall0(long n)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
	return r;
}

static int fn_thread(void *a)
{
	(void)a;
	child_tid = raw_syscall0(SYS_gettid);
	child_pid = raw_syscall0(SYS_getpid);
	seen_ctid = ctid_word;
	return 0;
}

static int fn_tls(void *a)
{
	(void)a;
	long v;
	__asm__ volatile("mov %%fs:8, %0" : "=r"(v));
	child_fs8 = v;
	return 0;
}

static int fn_exit_code(void *a)
{
	return (int)(long)a;
}

static int fn_parent(void *a)
{
	(void)a;
	return 0;
}

/* futex_wait_zero waits until *w is 0 via the futex the kernel wakes on
 * CLONE_CHILD_CLEARTID. - set_tid_address(2) */
static int futex_wait_zero(volatile uint32_t *w)
{
	struct timespec ts = { 5, 0 };
	for (int i = 0; i < 100; i++) {
		uint32_t v = *w;
		if (v == 0)
			return 0;
		sys_futex(w, FUTEX_WAIT_, v, &ts, NULL, 0);
	}
	return *w == 0 ? 0 : -1;
}

static long clone3_(struct clone_args_ *ca, size_t size)
{
	return syscall(SYS_clone3, ca, size);
}

int main(void)
{
	tap_init();
	pid_t p;

	/* CLONE_VM shares memory; without it the child has a copy. */
	shared_word = 0;
	p = clone(fn_write, stack_top(), CLONE_VM | SIGCHLD, NULL);
	check_eq(tap_wait(p), 0, "CLONE_VM child exits 0");
	check_eq(shared_word, 77, "CLONE_VM: child's write visible");
	shared_word = 0;
	p = clone(fn_write, stack_top(), SIGCHLD, NULL);
	tap_wait(p);
	check_eq(shared_word, 0, "no CLONE_VM: child's write not visible");

	/* CLONE_FILES shares the fd table. */
	fd_to_close = open("/dev/null", O_RDONLY);
	p = clone(fn_close, stack_top(), CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
	check_eq(tap_wait(p), 0, "CLONE_FILES child closes fd");
	check_err(fcntl(fd_to_close, F_GETFD), EBADF, "CLONE_FILES: fd closed for the parent too");
	fd_to_close = open("/dev/null", O_RDONLY);
	p = clone(fn_close, stack_top(), CLONE_VM | SIGCHLD, NULL);
	tap_wait(p);
	check_ok(fcntl(fd_to_close, F_GETFD), "no CLONE_FILES: parent's fd stays open");
	close(fd_to_close);

	/* CLONE_FS shares umask/cwd/root. */
	umask(022);
	p = clone(fn_umask, stack_top(), CLONE_VM | CLONE_FS | SIGCHLD, NULL);
	tap_wait(p);
	check_eq(umask(022), 0077, "CLONE_FS: child's umask seen by parent");
	p = clone(fn_umask, stack_top(), CLONE_VM | SIGCHLD, NULL);
	tap_wait(p);
	check_eq(umask(022), 022, "no CLONE_FS: child's umask private");

	/* CLONE_SIGHAND shares the handler table. */
	signal(SIGUSR2, SIG_DFL);
	p = clone(fn_sigaction, stack_top(), CLONE_VM | CLONE_SIGHAND | SIGCHLD, NULL);
	tap_wait(p);
	struct sigaction old;
	sigaction(SIGUSR2, NULL, &old);
	ok(old.sa_handler == h_usr2, "CLONE_SIGHAND: child's handler seen by parent");
	signal(SIGUSR2, SIG_DFL);
	p = clone(fn_sigaction, stack_top(), CLONE_VM | SIGCHLD, NULL);
	tap_wait(p);
	sigaction(SIGUSR2, NULL, &old);
	ok(old.sa_handler == SIG_DFL, "no CLONE_SIGHAND: child's handler private");

	/* A glibc/musl-style thread: THREAD|SIGHAND|VM|FS|FILES|SYSVSEM with
	 * PARENT_SETTID, CHILD_SETTID and CHILD_CLEARTID. */
	ptid_word = 0;
	ctid_word = 0xdead;
	int tflags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
		     CLONE_THREAD | CLONE_SYSVSEM | CLONE_PARENT_SETTID |
		     CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
	p = clone(fn_thread, stack_top(), tflags, NULL, &ptid_word, NULL, &ctid_word);
	ok(p > 0, "thread clone succeeds");
	check_eq(ptid_word, p, "CLONE_PARENT_SETTID stores the tid before clone returns");
	check_eq(futex_wait_zero(&ctid_word), 0, "CLONE_CHILD_CLEARTID clears and wakes the futex at exit");
	check_eq(child_tid, p, "thread's gettid is the returned tid");
	check_eq(child_pid, getpid(), "thread's getpid is the group's pid");
	check_eq(seen_ctid, p, "CLONE_CHILD_SETTID stored the tid in the child");
	check_err(waitpid(p, NULL, __WALL | WNOHANG), ECHILD, "a CLONE_THREAD child is not waitable");

	/* CLONE_SETTLS: the thread's fs base is the given block; the block's
	 * first word points to itself, as the x86-64 TLS ABI wants. */
	static uint64_t tls_block[4];
	tls_block[0] = (uint64_t)tls_block;
	tls_block[1] = 0x5eed1234;
	ctid_word = 1;
	p = clone(fn_tls, stack_top(), tflags | CLONE_SETTLS, NULL, &ptid_word,
		  tls_block, &ctid_word);
	futex_wait_zero(&ctid_word);
	check_eq(child_fs8, 0x5eed1234, "CLONE_SETTLS: %%fs:8 reads the new TLS block");

	/* Exit signal other than SIGCHLD: waitable with __WCLONE/__WALL. */
	signal(SIGUSR2, h_usr2); /* the child's exit signal */
	p = clone(fn_exit_code, stack_top(), CLONE_VM | SIGUSR2, (void *)5);
	int st;
	check_err(waitpid(p, &st, 0), ECHILD, "non-SIGCHLD child invisible to plain waitpid");
	ok(waitpid(p, &st, __WCLONE) == p && WEXITSTATUS(st) == 5, "__WCLONE waits for the non-SIGCHLD child");
	signal(SIGUSR2, SIG_DFL);

	/* CLONE_VFORK: the parent resumes after the child exits. */
	shared_word = 0;
	p = clone(fn_write, stack_top(), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	check_eq(shared_word, 77, "CLONE_VFORK: parent resumes after the child ran");
	tap_wait(p);

	/* CLONE_PARENT: a child's clone becomes our sibling's child... i.e.
	 * the grandchild is our child. */
	p = tap_fork();
	if (p == 0) {
		pid_t g = clone(fn_parent, stack_top(), CLONE_PARENT | CLONE_VM | SIGCHLD, NULL);
		_exit(g > 0 ? 0 : 1);
	}
	check_eq(tap_wait(p), 0, "CLONE_PARENT clone from a child");
	pid_t g = waitpid(-1, &st, 0);
	ok(g > 0 && g != p && WIFEXITED(st), "CLONE_PARENT: grandchild is reaped by us");

	/* Invalid combinations. - clone(2) ERRORS */
	check_err(syscall(SYS_clone, CLONE_THREAD | CLONE_VM, 0, 0, 0, 0), EINVAL, "CLONE_THREAD without CLONE_SIGHAND EINVAL");
	check_err(syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0), EINVAL, "CLONE_SIGHAND without CLONE_VM EINVAL");
	check_err(syscall(SYS_clone, CLONE_FS | CLONE_NEWNS, 0, 0, 0, 0), EINVAL, "CLONE_FS|CLONE_NEWNS EINVAL");

	/* CLONE_SYSVSEM shares the semaphore undo list: the child's SEM_UNDO
	 * is not rolled back when it exits while the list is shared. */
	int sem = semget(IPC_PRIVATE, 1, 0600);
	if (sem < 0) {
		skip("no SysV semaphores", "CLONE_SYSVSEM: shared undo list not applied at child exit");
		skip("no SysV semaphores", "no CLONE_SYSVSEM: SEM_UNDO rolled back at child exit");
	} else {
		for (int share = 1; share >= 0; share--) {
			pid_t c = tap_fork();
			if (c == 0) {
				struct sembuf op = { 0, 1, SEM_UNDO };
				semop(sem, &op, 1); /* our own undo entry */
				long r = syscall(SYS_clone, SIGCHLD | (share ? CLONE_SYSVSEM : 0), 0, 0, 0, 0);
				if (r == 0) {
					struct sembuf op2 = { 0, 1, SEM_UNDO };
					semop(sem, &op2, 1);
					_exit(0);
				}
				tap_wait(r);
				_exit(semctl(sem, 0, GETVAL));
			}
			int v = tap_wait(c);
			if (share)
				check_eq(v, 2, "CLONE_SYSVSEM: shared undo list not applied at child exit");
			else
				check_eq(v, 1, "no CLONE_SYSVSEM: SEM_UNDO rolled back at child exit");
		}
		semctl(sem, 0, IPC_RMID);
	}

	/* clone3, fork-like, with PARENT_SETTID and PIDFD. */
	uint32_t ptid3 = 0;
	int pidfd = -1;
	struct clone_args_ ca = { 0 };
	ca.flags = CLONE_PARENT_SETTID | CLONE_PIDFD;
	ca.parent_tid = (uint64_t)&ptid3;
	ca.pidfd = (uint64_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	fflush(stdout);
	long r = clone3_(&ca, 64);
	if (r == 0)
		_exit(12);
	if (r < 0 && errno == ENOSYS) {
		skip("no clone3", "clone3 fork-like");
	} else {
		check_eq(ptid3, r, "clone3: CLONE_PARENT_SETTID");
		ok(pidfd >= 0, "clone3: CLONE_PIDFD returns an fd");
		check_eq(tap_wait(r), 12, "clone3: child exit status");
		close(pidfd);
	}
	/* CLONE_CLEAR_SIGHAND: the child starts with default handlers, but
	 * keeps ignored signals ignored. - clone(2) */
	signal(SIGUSR1, h_usr2);
	signal(SIGUSR2, SIG_IGN);
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_CLEAR_SIGHAND;
	ca.exit_signal = SIGCHLD;
	fflush(stdout);
	r = clone3_(&ca, 64);
	if (r == 0) {
		struct sigaction a1, a2;
		sigaction(SIGUSR1, NULL, &a1);
		sigaction(SIGUSR2, NULL, &a2);
		_exit((a1.sa_handler == SIG_DFL ? 0 : 1) | (a2.sa_handler == SIG_IGN ? 0 : 2));
	}
	check_eq(tap_wait(r), 0, "clone3 CLONE_CLEAR_SIGHAND: handlers reset, ignored stays ignored");
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	ca.flags = CLONE_CLEAR_SIGHAND | CLONE_SIGHAND | CLONE_VM;
	check_err(clone3_(&ca, 64), EINVAL, "clone3 CLONE_CLEAR_SIGHAND with CLONE_SIGHAND EINVAL");

	memset(&ca, 0, sizeof ca);
	ca.exit_signal = SIGCHLD;
	check_err(clone3_(&ca, 32), EINVAL, "clone3 size below VER0 EINVAL");
	ca.flags = 1ULL << 40;
	check_err(clone3_(&ca, 64), EINVAL, "clone3 unknown flag bit EINVAL");
	ca.flags = 0;
	ca.exit_signal = 1000;
	check_err(clone3_(&ca, 64), EINVAL, "clone3 bad exit_signal EINVAL");
	ca.exit_signal = SIGCHLD;
	ca.stack = 0x1000;
	ca.stack_size = 0;
	check_err(clone3_(&ca, 64), EINVAL, "clone3 stack without stack_size EINVAL");
	check_err(clone3_((void *)0x10, 64), EFAULT, "clone3 bad args pointer EFAULT");
	tap_reap_all();
	return tap_done();
}
