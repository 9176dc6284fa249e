/*
 * futex.c - futex(2): WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP,
 * WAIT_BITSET, WAKE_BITSET, private and shared (across fork over
 * MAP_SHARED), timeouts and errors.
 *
 * Linux: kernel/futex/{waitwake,requeue,syscalls}.c. Waiter counts are
 * made deterministic with CMP_REQUEUE: it returns how many waiters it moved,
 * so the test loops until every waiter is queued instead of sleeping.
 */
#include "tap.h"
#include "abi.h"
#include <limits.h>
#include <pthread.h>
#include <sys/mman.h>

static volatile uint32_t fa, fb;
static volatile int woke;

static void *waiter(void *a)
{
	uint32_t mask = (uint32_t)(uintptr_t)a;
	long r;
	do {
		if (mask)
			r = sys_futex(&fa, FUTEX_WAIT_BITSET_ | FUTEX_PRIVATE_, 0, NULL, NULL, mask);
		else
			r = sys_futex(&fa, FUTEX_WAIT_ | FUTEX_PRIVATE_, 0, NULL, NULL, 0);
	} while (r != 0 && fa == 0); /* spurious EINTR/EAGAIN: wait again */
	__atomic_add_fetch(&woke, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* move_all requeues waiters from fa to fb until n have moved (bounded). */
static int move_all(int n)
{
	int moved = 0;
	for (int i = 0; i < 5000 && moved < n; i++) {
		long r = sys_futex(&fa, FUTEX_CMP_REQUEUE_ | FUTEX_PRIVATE_, 0,
				   (void *)(uintptr_t)INT_MAX, &fb, 0);
		if (r > 0)
			moved += r;
		else
			usleep(1000);
	}
	return moved;
}

/* wake_until wakes one waiter at uaddr, retrying until one was there. */
static long wake_until(volatile uint32_t *u, int op)
{
	for (int i = 0; i < 5000; i++) {
		long r = sys_futex(u, op, 1, NULL, NULL, 0);
		if (r != 0)
			return r;
		usleep(1000);
	}
	return 0;
}

int main(void)
{
	tap_init();
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	pthread_t t[4];

	fa = 1;
	check_err(sys_futex(&fa, FUTEX_WAIT_, 2, NULL, NULL, 0), EAGAIN, "WAIT with a mismatched value EAGAIN");
	check_err(sys_futex(&fa, FUTEX_WAIT_ | FUTEX_PRIVATE_, 1, &ts, NULL, 0), ETIMEDOUT, "WAIT relative timeout ETIMEDOUT");
	check_eq(sys_futex(&fa, FUTEX_WAKE_, 10, NULL, NULL, 0), 0, "WAKE with no waiters returns 0");

	/* One waiter, woken. */
	fa = 0;
	woke = 0;
	pthread_create(&t[0], NULL, waiter, NULL);
	check_eq(move_all(1), 1, "CMP_REQUEUE moves the queued waiter");
	fb = 1;
	check_eq(sys_futex(&fb, FUTEX_WAKE_ | FUTEX_PRIVATE_, 1, NULL, NULL, 0), 1, "WAKE on the requeue target wakes it");
	pthread_join(t[0], NULL);
	check_eq(woke, 1, "requeued waiter returned from WAIT");

	/* Three waiters: wake counts. */
	fa = 0;
	fb = 0;
	woke = 0;
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, waiter, NULL);
	check_eq(move_all(3), 3, "three waiters queued and requeued");
	fa = 1;
	check_eq(sys_futex(&fb, FUTEX_WAKE_ | FUTEX_PRIVATE_, 2, NULL, NULL, 0), 2, "WAKE 2 of 3 returns 2");
	check_eq(sys_futex(&fb, FUTEX_WAKE_ | FUTEX_PRIVATE_, 5, NULL, NULL, 0), 1, "WAKE 5 of 1 returns 1");
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	check_eq(woke, 3, "all three returned");

	/* REQUEUE (no compare): wake 1, move the rest. */
	fa = 0;
	fb = 0;
	woke = 0;
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, waiter, NULL);
	int moved = move_all(2); /* park both on fb */
	fa = 0;
	/* Now move them back with plain REQUEUE: wake 1 and requeue 1. */
	long r = sys_futex(&fb, FUTEX_REQUEUE_ | FUTEX_PRIVATE_, 1, (void *)1, &fa, 0);
	ok(moved == 2 && r == 2, "REQUEUE returns woken + requeued (1 + 1)");
	fa = 1;
	check_eq(sys_futex(&fa, FUTEX_WAKE_ | FUTEX_PRIVATE_, 1, NULL, NULL, 0), 1, "requeued waiter woken at the new address");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	fa = 5;
	check_err(sys_futex(&fa, FUTEX_CMP_REQUEUE_, 0, (void *)1, &fb, 4), EAGAIN, "CMP_REQUEUE with a mismatched val3 EAGAIN");
	check_err(sys_futex(&fa, FUTEX_CMP_REQUEUE_, (uint32_t)-1, (void *)1, &fb, 5), EINVAL, "CMP_REQUEUE negative nr_wake EINVAL");

	/* WAKE_OP: *uaddr2 op= oparg, wake uaddr1, and uaddr2 if cmp held. */
	fa = 0;
	fb = 5;
	r = sys_futex(&fa, FUTEX_WAKE_OP_ | FUTEX_PRIVATE_, 1, (void *)1, &fb,
		      FUTEX_OP_(FUTEX_OP_ADD_, 3, FUTEX_OP_CMP_GT_, 4));
	ok(r == 0 && fb == 8, "WAKE_OP ADD: uaddr2 updated, no waiters");
	r = sys_futex(&fa, FUTEX_WAKE_OP_ | FUTEX_PRIVATE_, 1, (void *)1, &fb,
		      FUTEX_OP_(FUTEX_OP_SET_, 1, FUTEX_OP_CMP_EQ_, 8));
	ok(r == 0 && fb == 1, "WAKE_OP SET: uaddr2 set");
	/* A waiter on uaddr2 is woken when the comparison holds. */
	fa = 0;
	fb = 0;
	woke = 0;
	pthread_create(&t[0], NULL, waiter, NULL);
	move_all(1); /* now waiting on fb with expected value 0 */
	r = sys_futex(&fa, FUTEX_WAKE_OP_ | FUTEX_PRIVATE_, 1, (void *)1, &fb,
		      FUTEX_OP_(FUTEX_OP_SET_, 7, FUTEX_OP_CMP_EQ_, 0));
	fa = 1;
	ok(r == 1 && fb == 7, "WAKE_OP wakes the uaddr2 waiter when the old value matched");
	pthread_join(t[0], NULL);

	/* BITSET */
	struct timespec abs;
	clock_gettime(CLOCK_MONOTONIC, &abs);
	abs.tv_nsec += 20 * 1000 * 1000;
	if (abs.tv_nsec >= 1000000000) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000;
	}
	fa = 0;
	check_err(sys_futex(&fa, FUTEX_WAIT_BITSET_ | FUTEX_PRIVATE_, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY_), ETIMEDOUT,
		  "WAIT_BITSET absolute CLOCK_MONOTONIC timeout ETIMEDOUT");
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_nsec += 20 * 1000 * 1000;
	if (abs.tv_nsec >= 1000000000) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000;
	}
	check_err(sys_futex(&fa, FUTEX_WAIT_BITSET_ | FUTEX_PRIVATE_ | FUTEX_CLOCK_REALTIME_, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY_),
		  ETIMEDOUT, "WAIT_BITSET absolute CLOCK_REALTIME timeout ETIMEDOUT");
	check_err(sys_futex(&fa, FUTEX_WAIT_BITSET_, 0, NULL, NULL, 0), EINVAL, "WAIT_BITSET with bitset 0 EINVAL");
	woke = 0;
	fa = 0;
	pthread_create(&t[0], NULL, waiter, (void *)1); /* bitset 0x1 */
	/* Poll with a non-matching bitset; it must never wake the waiter. */
	long miss = 0, hit = 0;
	for (int i = 0; i < 5000 && !hit; i++) {
		miss += sys_futex(&fa, FUTEX_WAKE_BITSET_ | FUTEX_PRIVATE_, 1, NULL, NULL, 2);
		if (i % 10 == 9) {
			fa = 1;
			hit = sys_futex(&fa, FUTEX_WAKE_BITSET_ | FUTEX_PRIVATE_, 1, NULL, NULL, 1);
			if (!hit)
				fa = 0;
		}
		if (!hit)
			usleep(500);
	}
	/* The waiter may have seen fa == 1 and not waited at all; only a
	 * matching bitset may ever have woken it. */
	check_eq(miss, 0, "WAKE_BITSET with a disjoint bitset wakes nobody");
	pthread_join(t[0], NULL);
	ok(hit == 1 || woke == 1, "WAKE_BITSET with a matching bitset wakes the waiter");

	/* Shared futex across fork over MAP_SHARED. */
	volatile uint32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*sh = 0;
	pid_t p = tap_fork();
	if (p == 0) {
		while (*sh == 0)
			sys_futex(sh, FUTEX_WAIT_, 0, NULL, NULL, 0);
		_exit(*sh == 1 ? 0 : 1);
	}
	/* A private wake from another process never finds the child. */
	long priv = 0;
	for (int i = 0; i < 20; i++) {
		priv += sys_futex(sh, FUTEX_WAKE_ | FUTEX_PRIVATE_, 1, NULL, NULL, 0);
		usleep(1000);
	}
	check_eq(priv, 0, "private WAKE does not reach another process's shared waiter");
	*sh = 1;
	check_eq(wake_until(sh, FUTEX_WAKE_), 1, "shared WAKE reaches the child over MAP_SHARED");
	check_eq(tap_wait(p), 0, "child woke with the new value");

	/* Errors. */
	check_err(sys_futex((uint32_t *)8, FUTEX_WAIT_, 0, NULL, NULL, 0), EFAULT, "WAIT on a bad address EFAULT");
	check_err(sys_futex((uint32_t *)((char *)&fa + 1), FUTEX_WAIT_, 0, NULL, NULL, 0), EINVAL, "WAIT on an unaligned address EINVAL");
	check_err(sys_futex(&fa, 99, 0, NULL, NULL, 0), ENOSYS, "unknown op ENOSYS");
	struct timespec neg = { -1, 0 };
	fa = 0;
	check_err(sys_futex(&fa, FUTEX_WAIT_, 0, &neg, NULL, 0), EINVAL, "negative timeout EINVAL");
	struct timespec badns = { 0, 1000000000 };
	check_err(sys_futex(&fa, FUTEX_WAIT_, 0, &badns, NULL, 0), EINVAL, "tv_nsec 1e9 EINVAL");
	return tap_done();
}
