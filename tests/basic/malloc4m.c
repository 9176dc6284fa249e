/*
 * malloc4m.c - malloc(3) of 4 MiB (an mmap in both glibc and musl),
 * touched one page at a time so that every page faults in separately, then
 * verified and freed.
 */
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>

#define SIZE (4UL << 20)
#define PAGE 4096UL

int main(void)
{
	unsigned char *p;
	uint64_t sum = 0, want = 0;
	size_t bad = 0;

	tap_init();
	p = malloc(SIZE);
	ok(p != NULL, "malloc 4 MiB");
	if (p == NULL)
		return tap_done();
	/* One byte per page, in order: the first touch of each page. */
	for (size_t i = 0; i < SIZE; i += PAGE)
		p[i] = (unsigned char)(i / PAGE);
	for (size_t i = 0; i < SIZE; i += PAGE) {
		if (p[i] != (unsigned char)(i / PAGE))
			bad++;
		sum += p[i];
		want += (unsigned char)(i / PAGE);
	}
	check_eq(bad, 0, "every page keeps its byte");
	check_eq(sum, want, "checksum of the touched bytes");
	/* Then the whole buffer, to catch pages aliased to one another. */
	for (size_t i = 0; i < SIZE; i++)
		p[i] = (unsigned char)(i * 7 + i / PAGE);
	bad = 0;
	for (size_t i = 0; i < SIZE; i++)
		if (p[i] != (unsigned char)(i * 7 + i / PAGE))
			bad++;
	check_eq(bad, 0, "every byte of 4 MiB keeps its value");
	free(p);
	ok(1, "free");
	return tap_done();
}
