/*
 * mm.c - the memory-management system calls a first kernel needs: brk,
 * anonymous mmap, MAP_FIXED, munmap, MAP_FIXED_NOREPLACE and mprotect,
 * with the errors Linux gives for malformed requests.
 *
 * brk is called raw (SYS_brk), not through sbrk(3): the libc wrappers
 * cache the break and hide the kernel's answer. - brk(2), "C
 * library/kernel differences".
 */
#include "tap.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PAGE 4096UL

/* zeroed reports whether n bytes at p are all zero. */
static int zeroed(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void test_brk(void)
{
	uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
	uintptr_t want = cur + 16 * PAGE;

	ok(cur != 0, "brk(0) returns the current break");
	/* The break is not required to be page-aligned, only its pages. */
	check_eq((uintptr_t)syscall(SYS_brk, want), want,
		 "brk grows the heap by 64 KiB");
	unsigned char *p = (unsigned char *)((cur + PAGE - 1) & ~(PAGE - 1));
	size_t n = want - (uintptr_t)p;
	ok(zeroed(p, n), "new heap pages read as zero");
	memset(p, 0xa5, n);
	ok(p[0] == 0xa5 && p[n - 1] == 0xa5, "new heap pages are writable");
	/* "On failure, the system call returns the current break." */
	check_eq((uintptr_t)syscall(SYS_brk, 1), want,
		 "brk below the heap start fails with the current break");
	check_eq((uintptr_t)syscall(SYS_brk, cur), cur,
		 "brk shrinks the heap back");
}

static void test_mmap(void)
{
	unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ok(p != MAP_FAILED, "mmap 4 anonymous pages");
	if (p == MAP_FAILED)
		return;
	check_eq((uintptr_t)p % PAGE, 0, "mmap returns a page-aligned address");
	ok(zeroed(p, 4 * PAGE), "anonymous pages read as zero");
	memset(p, 0x5a, 4 * PAGE);

	/* MAP_FIXED replaces page 1 with a fresh zero page. */
	void *q = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ok(q == p + PAGE, "MAP_FIXED maps at the address asked for");
	ok(zeroed(p + PAGE, PAGE) && p[0] == 0x5a && p[2 * PAGE] == 0x5a,
	   "MAP_FIXED replaced exactly one page");

	check_ok(munmap(p + 2 * PAGE, PAGE), "munmap one page");
	check_err(mmap(p + 3 * PAGE, PAGE, PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
		       0) == MAP_FAILED ? -1 : 0,
		  EEXIST, "MAP_FIXED_NOREPLACE over a mapped page");
	q = mmap(p + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ok(q == p + 2 * PAGE, "MAP_FIXED_NOREPLACE fills the hole");
	ok(zeroed(p + 2 * PAGE, PAGE), "the refilled page is a zero page");

	check_ok(mprotect(p, 4 * PAGE, PROT_READ), "mprotect read-only");
	ok(p[0] == 0x5a && p[3 * PAGE] == 0x5a,
	   "read-only pages keep their contents");
	check_ok(mprotect(p, 4 * PAGE, PROT_NONE), "mprotect PROT_NONE");
	check_ok(mprotect(p, 4 * PAGE, PROT_READ | PROT_WRITE),
		 "mprotect read-write again");
	p[4 * PAGE - 1] = 1;
	ok(p[0] == 0x5a && p[4 * PAGE - 1] == 1,
	   "pages are writable again with their contents");

	/* Raw: musl's mprotect(3) rounds the address down itself. */
	check_err(syscall(SYS_mprotect, p + 1, PAGE, PROT_READ), EINVAL,
		  "mprotect of an unaligned address");
	check_err(munmap(p + 1, PAGE), EINVAL, "munmap of an unaligned address");
	check_err(munmap(p, 0), EINVAL, "munmap of length 0");
	check_err(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
			  MAP_FAILED ? -1 : 0,
		  EINVAL, "mmap of length 0");
	check_ok(munmap(p, 4 * PAGE), "munmap the whole range");
	/* Unmapping nothing is not an error. - munmap(2) */
	check_ok(munmap(p, 4 * PAGE), "munmap of an unmapped range");
}

int main(void)
{
	tap_init();
	test_brk();
	test_mmap();
	return tap_done();
}
