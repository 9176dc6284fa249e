/*
 * readstdin.c - reads stdin to end of file in reads of varied sizes and
 * prints how many bytes came and their FNV-1a checksum. The harness feeds
 * it a fixed 100000-byte pattern through a pipe; with no input it reads 0.
 */
#include "tap.h"

#include <stdint.h>

int main(void)
{
	static const size_t sizes[] = {1, 4096, 13, 65536, 100, 8191};
	unsigned char buf[65536];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t total = 0, i = 0;

	tap_init();
	for (;;) {
		ssize_t n = read(0, buf, sizes[i++ % 6]);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("not ok 1 - read: got %s want success\n",
			       tap_errname(errno));
			return 1;
		}
		if (n == 0)
			break;
		for (ssize_t k = 0; k < n; k++) {
			h ^= buf[k];
			h *= 0x100000001b3ULL;
		}
		total += (size_t)n;
	}
	printf("read %zu bytes fnv1a64 %016llx\n", total, (unsigned long long)h);
	check_eq(read(0, buf, 1), 0, "read at end of file returns 0 again");
	return tap_done();
}
