/*
 * mprotect_segv.c - a write to a page made read-only with mprotect kills
 * the program with SIGSEGV after the page was read successfully. The
 * harness expects the two "ok" lines and then 128+11.
 *
 * Linux: arch/x86/mm/fault.c:access_error() -> bad_area_access_error().
 */
#include "tap.h"

#include <sys/mman.h>

int main(void)
{
	volatile char *p;

	tap_init();
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("not ok 1 - mmap: got %s want success\n",
		       tap_errname(errno));
		return 1;
	}
	p[0] = 'x';
	check_ok(mprotect((void *)p, 4096, PROT_READ), "mprotect read-only");
	check_eq(p[0], 'x', "the read-only page is readable");
	p[0] = 'y';
	printf("not ok 3 - the write to a read-only page was not stopped\n");
	return 1;
}
