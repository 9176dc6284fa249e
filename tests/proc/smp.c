/*
 * smp.c - several CPUs: two threads that really run at the same time,
 * sched_yield, sched_getaffinity/sched_setaffinity, getcpu.
 *
 * Concurrency test: two threads bump their own counters and each counts
 * how often the other's counter moved between two of its own back-to-back
 * reads. Time-sliced on one CPU that can only happen once per context
 * switch (at most a few thousand times in the 1.5 s bound); concurrent it
 * happens millions of times a second. Reaching 20000 such observations
 * thus needs the threads co-scheduled (they run pinned to two CPUs, at
 * SCHED_FIFO when permitted); the cases SKIP when fewer than two CPUs are
 * allowed by sched_getaffinity.
 *
 * Linux: kernel/sched/core.c (sched_setaffinity, sched_yield),
 * kernel/sys.c:getcpu.
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sched.h>

#define NEED 20000
#define YIELD_ROUNDS 200
static volatile uint64_t ctr[2];
static volatile int stop;
static volatile long seen[2];

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The two CPUs the runners are pinned to, and a start line. */
static int run_cpu[2];
static volatile int run_ready;

static void *runner(void *a)
{
	int me = (int)(intptr_t)a, other = 1 - me;
	long obs = 0;
	/* One runner per CPU, at SCHED_FIFO when permitted, so that a busy
	 * host cannot keep them from being co-scheduled; without the
	 * privilege they still usually are. */
	cpu_set_t cs;
	CPU_ZERO(&cs);
	CPU_SET(run_cpu[me], &cs);
	sched_setaffinity(0, sizeof cs, &cs);
	struct sched_param sp = { 1 };
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	__atomic_add_fetch(&run_ready, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 10000 && run_ready < 2; i++)
		usleep(100);
	uint64_t last = ctr[other];
	int64_t deadline = now_ns() + 1500LL * 1000 * 1000;
	for (long i = 0; !stop; i++) {
		ctr[me]++;
		uint64_t v = ctr[other];
		if (v != last) {
			obs++;
			last = v;
		}
		if (obs >= NEED) {
			stop = 1; /* the other side has proven it too */
			break;
		}
		if ((i & 0xfff) == 0 && now_ns() > deadline)
			break;
	}
	seen[me] = obs;
	return NULL;
}

static volatile int pinned_cpu[2];
static void *pinned(void *a)
{
	int cpu = (int)(intptr_t)a;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof s, &s) != 0)
		return (void *)1;
	unsigned got = 99, node = 99;
	syscall(SYS_getcpu, &got, &node, NULL);
	return (void *)(intptr_t)(got == (unsigned)cpu ? 0 : 2);
}

/* Yield ping-pong: two SCHED_FIFO threads pinned to one CPU pass a
 * token. An equal-priority FIFO thread is never preempted by its peer, so
 * the token moves only if sched_yield really hands the CPU over; a broken
 * yield shows as a timeout, not as slowness. */
static int yield_cpu;
static volatile int turn, rounds, yield_fail, yield_nofifo, yield_ready;
static void *yielder(void *a)
{
	int me = (int)(intptr_t)a;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(yield_cpu, &s);
	sched_setaffinity(0, sizeof s, &s);
	struct sched_param sp = { 1 };
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0) {
		yield_nofifo = 1;
		return NULL;
	}
	/* Sleep (not spin) until both are FIFO on the CPU: a FIFO spinner
	 * would starve a peer still in SCHED_OTHER until RT throttling. */
	__atomic_add_fetch(&yield_ready, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 30000 && yield_ready < 2 && !yield_nofifo; i++)
		usleep(100);
	/* 200 hand-overs prove the semantics; in the emulated test VM each
	 * takes milliseconds, so the count is kept small. */
	int64_t deadline = now_ns() + 5000LL * 1000 * 1000;
	while (rounds < YIELD_ROUNDS && !yield_fail && !yield_nofifo) {
		if (turn == me) {
			rounds++;
			turn = 1 - me;
			continue;
		}
		sched_yield();
		if (now_ns() > deadline)
			yield_fail = 1;
	}
	return NULL;
}

int main(void)
{
	tap_init();
	cpu_set_t set;
	check_ok(sched_getaffinity(0, sizeof set, &set), "sched_getaffinity");
	int n = CPU_COUNT(&set);
	ok(n >= 1, "at least one CPU allowed");
	check_eq(sched_yield(), 0, "sched_yield");

	unsigned cpu = 9999, node = 9999;
	check_eq(syscall(SYS_getcpu, &cpu, &node, NULL), 0, "getcpu");
	ok(CPU_ISSET(cpu, &set), "getcpu reports an allowed CPU");
	check_eq(node, 0, "getcpu node 0");
	check_eq(syscall(SYS_getcpu, NULL, NULL, NULL), 0, "getcpu with NULL pointers");

	int first = -1, second = -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set)) {
			if (first < 0)
				first = i;
			else if (second < 0)
				second = i;
		}
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	check_ok(sched_setaffinity(0, sizeof one, &one), "sched_setaffinity to one CPU");
	cpu_set_t back;
	sched_getaffinity(0, sizeof back, &back);
	ok(CPU_COUNT(&back) == 1 && CPU_ISSET(first, &back), "sched_getaffinity reads the single CPU back");
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	check_eq(cpu, first, "getcpu runs on the pinned CPU");
	check_ok(sched_setaffinity(0, sizeof set, &set), "restore the affinity");
	cpu_set_t empty;
	CPU_ZERO(&empty);
	check_err(sched_setaffinity(0, sizeof empty, &empty), EINVAL, "sched_setaffinity empty mask EINVAL");
	check_err(syscall(SYS_sched_getaffinity, 0, 1, &back), EINVAL, "sched_getaffinity 1-byte buffer EINVAL");
	check_err(sched_getaffinity(0x3ffffff0, sizeof back, &back), ESRCH, "sched_getaffinity nonexistent pid ESRCH");
	long raw = syscall(SYS_sched_getaffinity, 0, sizeof back, &back);
	ok(raw > 0 && raw % sizeof(long) == 0, "raw sched_getaffinity returns the mask size in bytes");

	/* A child inherits the mask. */
	sched_setaffinity(0, sizeof one, &one);
	pid_t p = tap_fork();
	if (p == 0) {
		cpu_set_t c;
		sched_getaffinity(0, sizeof c, &c);
		_exit(CPU_COUNT(&c) == 1 && CPU_ISSET(first, &c) ? 0 : 1);
	}
	check_eq(tap_wait(p), 0, "fork inherits the affinity mask");
	sched_setaffinity(0, sizeof set, &set);

	/* sched_yield hands the CPU to a FIFO peer on the same CPU. */
	yield_cpu = first;
	int64_t t_y = now_ns();
	{
		pthread_t y[2];
		pthread_create(&y[0], NULL, yielder, (void *)0);
		pthread_create(&y[1], NULL, yielder, (void *)1);
		pthread_join(y[0], NULL);
		pthread_join(y[1], NULL);
		fprintf(stderr, "smp: yield rounds %d after %lld ms\n", rounds, (long long)((now_ns() - t_y) / 1000000));
		if (yield_nofifo)
			skip("SCHED_FIFO not permitted", "sched_yield passes a token 200 times between FIFO threads on one CPU");
		else
			ok(!yield_fail && rounds >= YIELD_ROUNDS, "sched_yield passes a token 200 times between FIFO threads on one CPU");
	}

	if (n < 2) {
		skip("fewer than 2 CPUs allowed", "threads pinned to two CPUs see their own CPU in getcpu");
		skip("fewer than 2 CPUs allowed", "two threads run concurrently");
		return tap_done();
	}
	pthread_t t[2];
	void *r0, *r1;
	pthread_create(&t[0], NULL, pinned, (void *)(intptr_t)first);
	pthread_create(&t[1], NULL, pinned, (void *)(intptr_t)second);
	pthread_join(t[0], &r0);
	pthread_join(t[1], &r1);
	ok(r0 == NULL && r1 == NULL, "threads pinned to two CPUs see their own CPU in getcpu");

	const char *serial = getenv("RINGBOX_SERIAL_CPUS");
	if (serial && strcmp(serial, "1") == 0) {
		/* The test VM's CPUs take turns on one host thread. */
		skip("RINGBOX_SERIAL_CPUS=1: the CPUs take turns", "two threads run concurrently");
		return tap_done();
	}
	int done = 0;
	run_cpu[0] = first;
	run_cpu[1] = second;
	for (int attempt = 0; attempt < 2 && !done; attempt++) {
		stop = 0;
		run_ready = 0;
		seen[0] = seen[1] = 0;
		pthread_create(&t[0], NULL, runner, (void *)0);
		pthread_create(&t[1], NULL, runner, (void *)1);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		done = seen[0] >= NEED || seen[1] >= NEED;
		fprintf(stderr, "smp: observations %ld %ld\n", seen[0], seen[1]);
	}
	ok(done, "two threads run concurrently");
	return tap_done();
}
