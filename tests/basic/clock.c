/*
 * clock.c - clock sanity: CLOCK_MONOTONIC never goes backwards and
 * advances across a sleep by at least the time slept, CLOCK_REALTIME is
 * after 2020, tv_nsec is always normalised, and a bad clock id is EINVAL.
 *
 * No upper bounds: how long a sleep overshoots depends on the machine
 * (the slow emulated test VM among them), so only what Linux guarantees
 * is checked. - clock_gettime(2), nanosleep(2)
 */
#include "tap.h"

#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

static int64_t ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int main(void)
{
	struct timespec a, b, r;
	int backwards = 0, badnsec = 0;

	tap_init();
	check_ok(clock_gettime(CLOCK_MONOTONIC, &a), "clock_gettime MONOTONIC");
	for (int i = 0; i < 1000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (ns(&b) < ns(&a))
			backwards++;
		if (b.tv_nsec < 0 || b.tv_nsec >= 1000000000)
			badnsec++;
		a = b;
	}
	check_eq(backwards, 0, "MONOTONIC never goes backwards in 1000 reads");
	check_eq(badnsec, 0, "tv_nsec is within [0, 1e9)");

	struct timespec req = {0, 2000000};
	clock_gettime(CLOCK_MONOTONIC, &a);
	check_ok(nanosleep(&req, NULL), "nanosleep 2 ms");
	clock_gettime(CLOCK_MONOTONIC, &b);
	ok(ns(&b) - ns(&a) >= 2000000, "MONOTONIC advanced by at least 2 ms");

	check_ok(clock_gettime(CLOCK_REALTIME, &r), "clock_gettime REALTIME");
	ok(r.tv_sec > 1577836800, "REALTIME is after 2020-01-01");
	check_ok(clock_getres(CLOCK_MONOTONIC, &r), "clock_getres MONOTONIC");
	ok(r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= 1000000,
	   "MONOTONIC resolution is at most 1 ms");
	/* Raw: a libc may answer a bad id from the vDSO path itself. */
	check_err(syscall(SYS_clock_gettime, 12345, &r), EINVAL,
		  "clock_gettime of an unknown clock");
	return tap_done();
}
