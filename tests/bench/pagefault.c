/*
 * pagefault.c - maps argv[1] (default 4096) pages of anonymous memory,
 * writes one byte to each (one page fault each), unmaps, 4 times; mean ns
 * per page faulted in.
 */
#include "bench.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long pages = iterations(argc, argv, 4096);
	const int rounds = 4;
	alarm(600);
	int64_t total = 0;
	for (int r = 0; r < rounds; r++) {
		char *m = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			die("mmap");
		int64_t t0 = now_ns();
		for (long i = 0; i < pages; i++)
			m[i * 4096] = 1;
		total += now_ns() - t0;
		munmap(m, (size_t)pages * 4096);
	}
	printf("pagefault: %ld pages x %d, %.0f ns/page\n", pages, rounds, (double)total / (double)(pages * rounds));
	return 0;
}
