/*
 * fork.c - fork, vfork, copy-on-write and process exit.
 *
 * Linux: kernel/fork.c, kernel/exit.c, mm/memory.c (do_wp_page). The COW
 * cases exchange pages through pipes so ordering never depends on timing.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

static int global_val = 1;
static char big[3 * 4096];

static void rd(int fd, void *b, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			_exit(99);
		}
		b = (char *)b + r;
		n -= r;
	}
}

static void *thread_exit_group(void *arg)
{
	(void)arg;
	/* exit_group from a non-leader thread ends every thread, and the
	 * status given is the process's. - exit_group(2) */
	syscall(SYS_exit_group, 42);
	return NULL;
}

static void *thread_sleep(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static volatile long ticks;
static volatile int stop_ticker;
static void *ticker(void *a)
{
	(void)a;
	while (!stop_ticker)
		ticks++;
	return NULL;
}

static void *fork_from_thread(void *a)
{
	(void)a;
	pid_t p = fork();
	if (p == 0)
		_exit(sys_gettid() == getpid() && getppid() > 0 ? 0 : 1);
	if (p < 0)
		return (void *)2;
	int st;
	waitpid(p, &st, 0);
	return (void *)(intptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
}

int main(void)
{
	tap_init();
	int to_child[2], to_parent[2];
	if (pipe(to_child) || pipe(to_parent))
		return 1;

	/* Child writes are not seen by the parent, and vice versa. */
	int stackv = 10;
	memset(big, 'a', sizeof big);
	pid_t p = tap_fork();
	if (p == 0) {
		char b;
		global_val = 2;
		stackv = 20;
		big[4096] = 'c';
		write(to_parent[1], "w", 1);
		rd(to_child[0], &b, 1);
		/* The parent wrote after the fork; the child keeps its copies. */
		int bad = (global_val != 2) | (stackv != 20) << 1 |
			  (big[0] != 'a') << 2 | (big[4096] != 'c') << 3 |
			  (big[8192] != 'a') << 4;
		_exit(bad);
	}
	char b;
	rd(to_parent[0], &b, 1);
	check_eq(global_val, 1, "COW: child's write to .data not seen by parent");
	check_eq(stackv, 10, "COW: child's write to stack not seen by parent");
	check_eq(big[4096], 'a', "COW: child's write to .bss not seen by parent");
	global_val = 3;
	big[8192] = 'p';
	write(to_child[1], "g", 1);
	check_eq(tap_wait(p), 0, "COW: parent's writes not seen by child");

	/* Anonymous private mapping is COW too, shared mapping is not. */
	char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *shr = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv[0] = shr[0] = 'x';
	p = tap_fork();
	if (p == 0) {
		priv[0] = shr[0] = 'y';
		_exit(0);
	}
	check_eq(tap_wait(p), 0, "child with mappings exits 0");
	check_eq(priv[0], 'x', "MAP_PRIVATE anon is copied on fork");
	check_eq(shr[0], 'y', "MAP_SHARED anon is shared with the child");

	/* fork returns the child's pid to the parent and 0 to the child. */
	p = tap_fork();
	if (p == 0) {
		char pid_b[sizeof(pid_t)];
		pid_t me = getpid();
		memcpy(pid_b, &me, sizeof me);
		write(to_parent[1], pid_b, sizeof pid_b);
		_exit(7);
	}
	pid_t reported;
	rd(to_parent[0], &reported, sizeof reported);
	check_eq(reported, p, "fork returns the child's pid");
	check_eq(tap_wait(p), 7, "exit status 7 seen by wait");

	/* vfork: the child shares memory, and the parent runs only after
	 * the child has exited. - vfork(2) */
	volatile int shared = 0;
	p = vfork();
	if (p == 0) {
		shared = 5;
		_exit(3);
	}
	check_eq(shared, 5, "vfork child's write seen by parent (shared VM)");
	check_eq(tap_wait(p), 3, "vfork child exit status");

	/* Exit statuses are truncated to 8 bits. */
	p = tap_fork();
	if (p == 0)
		_exit(0x1ff);
	check_eq(tap_wait(p), 0xff, "exit(0x1ff) reports 255");

	/* Raw exit from the only thread ends the process. */
	p = tap_fork();
	if (p == 0)
		syscall(SYS_exit, 9);
	check_eq(tap_wait(p), 9, "SYS_exit of the only thread ends the process");

	/* exit_group from a second thread while the leader is blocked. */
	p = tap_fork();
	if (p == 0) {
		pthread_t t1, t2;
		pthread_create(&t1, NULL, thread_sleep, NULL);
		pthread_create(&t2, NULL, thread_exit_group, NULL);
		for (;;)
			pause();
	}
	check_eq(tap_wait(p), 42, "exit_group from a thread kills all threads");

	/* Only the forking thread exists in the child; a fork from a
	 * non-leader thread gives a child whose only thread has tid == pid. */
	{
		pthread_t t;
		pthread_create(&t, NULL, ticker, NULL);
		while (ticks == 0)
			sched_yield();
		p = tap_fork();
		if (p == 0) {
			long t0 = ticks;
			usleep(20000);
			_exit(ticks == t0 ? 0 : 1);
		}
		check_eq(tap_wait(p), 0, "fork from a multi-threaded process copies only the calling thread");
		pthread_create(&t, NULL, fork_from_thread, NULL);
		void *r;
		pthread_join(t, &r);
		check_eq((long)(intptr_t)r, 0, "fork from a non-leader thread: the child's thread has tid == pid");
		stop_ticker = 1;
	}

	/* Many forks in a row, all reaped, none leaking. */
	int good = 0;
	for (int i = 0; i < 20; i++) {
		p = tap_fork();
		if (p == 0)
			_exit(i);
		if (tap_wait(p) == i)
			good++;
	}
	check_eq(good, 20, "20 sequential fork/exit/wait round trips");
	check_err(wait(NULL), ECHILD, "no children left: ECHILD");
	return tap_done();
}
