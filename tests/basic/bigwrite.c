/*
 * bigwrite.c - writes exactly 1 MiB to stdout in chunks of varied sizes
 * (1 byte to 128 KiB, straddling page and pipe-buffer boundaries), then
 * prints the byte count and a checksum of what it wrote on stderr. The
 * harness counts the bytes that arrive on its pipe and recomputes the
 * checksum, so a short write the program did not see, or bytes copied from
 * the wrong page, shows up as a mismatch.
 *
 * "bigwrite: 1048576 bytes fnv1a64 XXXXXXXXXXXXXXXX" (FNV-1a, 64 bit).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#define TOTAL (1 << 20)

static unsigned char buf[TOTAL];

int main(void)
{
	static const size_t chunks[] = {
		1, 7, 4096, 100, 65536, 4095, 4097, 3, 131072, 511, 12345,
		8192, 2, 65535, 1000, 32768,
	};
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t off = 0, i = 0;

	alarm(10);
	for (size_t k = 0; k < TOTAL; k++)
		buf[k] = (unsigned char)(k * 131 + (k >> 9));
	while (off < TOTAL) {
		size_t n = chunks[i++ % (sizeof chunks / sizeof chunks[0])];
		if (n > TOTAL - off)
			n = TOTAL - off;
		size_t end = off + n;
		/* A pipe may take less than asked for: finish each chunk. */
		while (off < end) {
			ssize_t w = write(1, buf + off, end - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr, "bigwrite: write at %zu: %d\n",
					off, w < 0 ? errno : 0);
				return 1;
			}
			off += (size_t)w;
		}
	}
	for (size_t k = 0; k < TOTAL; k++) {
		h ^= buf[k];
		h *= 0x100000001b3ULL;
	}
	fprintf(stderr, "bigwrite: %d bytes fnv1a64 %016llx\n", TOTAL,
		(unsigned long long)h);
	return 0;
}
