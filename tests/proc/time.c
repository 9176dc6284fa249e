/*
 * time.c - clocks and sleeps: clock_gettime/clock_getres for every clock,
 * monotonicity and sane resolutions (no absolute values are printed),
 * gettimeofday and time agreeing with CLOCK_REALTIME, CPU-time clocks
 * advancing, nanosleep and clock_nanosleep (relative and TIMER_ABSTIME).
 *
 * Linux: kernel/time/posix-timers.c, posix-cpu-timers.c, hrtimer.c;
 * clock_gettime(2), clock_nanosleep(2).
 */
#include "tap.h"
#include "abi.h"
#include <pthread.h>
#include <sys/time.h>

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t read_ns(clockid_t c)
{
	struct timespec t;
	if (clock_gettime(c, &t) != 0)
		return -1;
	return ns(t);
}

static volatile uint64_t sink;
static void burn(int64_t want_ns)
{
	int64_t t0 = read_ns(CLOCK_THREAD_CPUTIME_ID);
	while (read_ns(CLOCK_THREAD_CPUTIME_ID) - t0 < want_ns)
		for (int i = 0; i < 1000; i++)
			sink += i;
}

static void *thread_cpu(void *a)
{
	(void)a;
	int64_t t0 = read_ns(CLOCK_THREAD_CPUTIME_ID);
	burn(5 * 1000 * 1000);
	return (void *)(intptr_t)(read_ns(CLOCK_THREAD_CPUTIME_ID) - t0 >= 5 * 1000 * 1000);
}

int main(void)
{
	tap_init();
	static const struct {
		clockid_t id;
		const char *name;
		int64_t max_res;
	} clocks[] = {
		{ CLOCK_REALTIME, "REALTIME", 1000000 },
		{ CLOCK_MONOTONIC, "MONOTONIC", 1000000 },
		{ CLOCK_BOOTTIME, "BOOTTIME", 1000000 },
		{ CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW", 1000000 },
		{ CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID", 1000000 },
		{ CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID", 1000000 },
		{ CLOCK_REALTIME_COARSE, "REALTIME_COARSE", 10000000 },
		{ CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE", 10000000 },
	};
	for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		struct timespec r = { -1, -1 };
		int ok1 = clock_getres(clocks[i].id, &r) == 0;
		ok(ok1 && r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= clocks[i].max_res,
		   "clock_getres(%s) is sane", clocks[i].name);
		int64_t prev = read_ns(clocks[i].id), bad = prev < 0;
		for (int k = 0; k < 200; k++) {
			int64_t v = read_ns(clocks[i].id);
			if (clocks[i].id != CLOCK_REALTIME && clocks[i].id != CLOCK_REALTIME_COARSE && v < prev)
				bad = 1;
			prev = v;
		}
		ok(!bad, "clock_gettime(%s) works and never goes backwards", clocks[i].name);
	}
	struct timespec fine, coarse;
	clock_getres(CLOCK_MONOTONIC, &fine);
	clock_getres(CLOCK_MONOTONIC_COARSE, &coarse);
	ok(ns(coarse) >= ns(fine), "coarse resolution no finer than the fine clock");
	ok(read_ns(CLOCK_BOOTTIME) >= read_ns(CLOCK_MONOTONIC) - 1000000, "BOOTTIME >= MONOTONIC");
	check_ok(clock_getres(CLOCK_MONOTONIC, NULL), "clock_getres with NULL res");
	struct timespec t;
	check_err(clock_gettime((clockid_t)77, &t), EINVAL, "clock_gettime unknown clock EINVAL");
	check_err(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8), EFAULT, "clock_gettime bad pointer EFAULT");
	check_err(clock_getres((clockid_t)77, &t), EINVAL, "clock_getres unknown clock EINVAL");

	/* Wall clock views agree. */
	struct timeval tv;
	check_ok(gettimeofday(&tv, NULL), "gettimeofday");
	int64_t rt = read_ns(CLOCK_REALTIME);
	int64_t tvns = (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000;
	ok(rt - tvns >= 0 && rt - tvns < 2000000000LL, "gettimeofday agrees with CLOCK_REALTIME");
	time_t tt = time(NULL);
	/* time() may come from the coarse clock, a tick behind. */
	ok(tt - (time_t)(rt / 1000000000) >= -1 && tt - (time_t)(rt / 1000000000) <= 2, "time() agrees with CLOCK_REALTIME");
	time_t tt2;
	ok(time(&tt2) == tt2, "time(&t) stores its result");

	/* CPU clocks advance with work. */
	int64_t p0 = read_ns(CLOCK_PROCESS_CPUTIME_ID);
	burn(10 * 1000 * 1000);
	ok(read_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 >= 10 * 1000 * 1000, "PROCESS_CPUTIME advances by the work done");
	pthread_t th;
	void *res;
	pthread_create(&th, NULL, thread_cpu, NULL);
	pthread_join(th, &res);
	ok(res == (void *)1, "THREAD_CPUTIME of another thread advances with its work");
	ok(read_ns(CLOCK_THREAD_CPUTIME_ID) <= read_ns(CLOCK_PROCESS_CPUTIME_ID), "thread CPU time <= process CPU time");
	clockid_t pc;
	ok(clock_getcpuclockid(getpid(), &pc) == 0 && read_ns(pc) > 0, "clock_getcpuclockid(self) gives a readable clock");

	/* Sleeps. */
	int64_t m0 = read_ns(CLOCK_MONOTONIC);
	struct timespec q = { 0, 30 * 1000 * 1000 };
	check_ok(nanosleep(&q, NULL), "nanosleep 30 ms");
	ok(read_ns(CLOCK_MONOTONIC) - m0 >= 30 * 1000 * 1000, "nanosleep slept at least the time asked");
	m0 = read_ns(CLOCK_MONOTONIC);
	check_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &q, NULL), 0, "clock_nanosleep relative");
	ok(read_ns(CLOCK_MONOTONIC) - m0 >= 30 * 1000 * 1000, "clock_nanosleep relative slept long enough");
	struct timespec abs;
	clock_gettime(CLOCK_MONOTONIC, &abs);
	int64_t target = ns(abs) + 30 * 1000 * 1000;
	abs.tv_sec = target / 1000000000;
	abs.tv_nsec = target % 1000000000;
	check_eq(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL), 0, "clock_nanosleep TIMER_ABSTIME");
	ok(read_ns(CLOCK_MONOTONIC) >= target, "TIMER_ABSTIME woke after the deadline");
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec -= 10;
	check_eq(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL), 0, "TIMER_ABSTIME in the past returns at once");
	q.tv_nsec = 1000000000;
	check_err(nanosleep(&q, NULL), EINVAL, "nanosleep tv_nsec 1e9 EINVAL");
	q.tv_sec = -1;
	q.tv_nsec = 0;
	check_err(nanosleep(&q, NULL), EINVAL, "nanosleep negative EINVAL");
	q.tv_sec = 0;
	check_eq(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &q, NULL), EINVAL, "clock_nanosleep on THREAD_CPUTIME EINVAL");
	check_eq(clock_nanosleep((clockid_t)77, 0, &q, NULL), EINVAL, "clock_nanosleep unknown clock EINVAL");
	check_err(syscall(SYS_nanosleep, (void *)8, NULL), EFAULT, "nanosleep bad pointer EFAULT");
	return tap_done();
}
