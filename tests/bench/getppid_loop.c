/*
 * getppid_loop.c - the cost of the cheapest system call: argv[1] (default
 * 100000) getppid calls, mean nanoseconds per call on stdout. Run natively
 * and under each ringbox platform, it gives the per-syscall overhead of
 * the platform against the host.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	long ppid = getppid(), bad = 0;

	alarm(600);
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (raw_getppid() != ppid)
			bad++;
	int64_t t1 = now_ns();
	printf("getppid_loop: %ld calls, %.1f ns/call\n", n,
	       (double)(t1 - t0) / (double)n);
	if (bad) {
		fprintf(stderr, "getppid_loop: %ld calls returned a wrong ppid\n", bad);
		return 1;
	}
	return 0;
}
