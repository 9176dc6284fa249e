/*
 * mmap.c - anonymous mappings: private and shared (seen by a forked
 * child), MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_GROWSDOWN,
 * MAP_POPULATE, munmap (then SIGSEGV on access), and the errnos.
 *
 * Linux: mm/mmap.c:do_mmap(), mm/mmap.c:__do_munmap(); mmap(2). Faults
 * are caught with a SIGSEGV handler and siglongjmp.
 */
#include "tap.h"
#include "abi.h"
#include <setjmp.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define PG 4096

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	fault_addr = si->si_addr;
	fault_code = si->si_code;
	siglongjmp(jb, 1);
}

/* touch reads (write=0) or writes one byte; returns 0 or the signal. */
static int touch(volatile char *p, int write)
{
	fault_addr = NULL;
	if (sigsetjmp(jb, 1))
		return SIGSEGV;
	if (write)
		*p = 1;
	else
		(void)*p;
	return 0;
}

/* deep_stack grows the main thread's stack by n bytes, touching each
 * page from the top down as a deep call chain would. */
static __attribute__((noinline)) int deep_stack(size_t n)
{
	volatile char big[n];
	for (size_t off = n; off >= PG; off -= PG)
		big[off - 1] = (char)off;
	big[0] = 1;
	return big[0] + big[n - 1];
}

int main(void)
{
	tap_init();
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);

	char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok(a != MAP_FAILED, "anonymous private mapping");
	ok(((uintptr_t)a & (PG - 1)) == 0, "mapping is page aligned");
	int zero = 1;
	for (int i = 0; i < 4 * PG; i++)
		if (a[i])
			zero = 0;
	ok(zero, "anonymous memory is zero-filled");
	memset(a, 0x5a, 4 * PG);
	check_eq(a[4 * PG - 1], 0x5a, "anonymous memory is writable");

	/* Shared anonymous memory is shared with a forked child. */
	volatile int *sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*sh = 1;
	pid_t p = tap_fork();
	if (p == 0) {
		_exit(*sh == 1 ? (*sh = 2, 0) : 1);
	}
	check_eq(tap_wait(p), 0, "child sees the parent's shared write");
	check_eq(*sh, 2, "parent sees the child's shared write");

	/* munmap: access afterwards faults with SEGV_MAPERR at the address. */
	check_ok(munmap(a + PG, PG), "munmap one page in the middle");
	check_eq(touch(a, 0), 0, "page before the hole still mapped");
	check_eq(touch(a + 2 * PG, 1), 0, "page after the hole still mapped");
	check_eq(touch(a + PG + 8, 0), SIGSEGV, "read of an unmapped page: SIGSEGV");
	ok(fault_addr == a + PG + 8 && fault_code == SEGV_MAPERR, "si_addr is the address, si_code SEGV_MAPERR");
	check_ok(munmap(a + PG, PG), "munmap of an already unmapped range succeeds");

	/* MAP_FIXED replaces, NOREPLACE refuses. */
	char *f = mmap(a + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ok(f == a + PG, "MAP_FIXED maps at the hole");
	check_eq(f[5], 0, "MAP_FIXED page is fresh zeroes");
	char *f2 = mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ok(f2 == a && a[0] == 0, "MAP_FIXED over an existing page replaces it");
	errno = 0;
	void *nr = mmap(a, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ok(nr == MAP_FAILED && errno == EEXIST, "MAP_FIXED_NOREPLACE over a mapping EEXIST");
	munmap(a, 4 * PG);
	nr = mmap(a, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ok(nr == a, "MAP_FIXED_NOREPLACE on a free range maps there");
	munmap(nr, PG);

	/* A hint is just a hint when the range is free: we get it. */
	void *h = mmap(a, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok(h == a, "a free hint address is honoured");
	munmap(h, PG);

	/* MAP_NORESERVE: a huge sparse mapping, touched sparsely. */
	size_t big = (size_t)64 << 30;
	char *n = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ok(n != MAP_FAILED, "64 GiB MAP_NORESERVE mapping");
	if (n != MAP_FAILED) {
		n[0] = 1;
		n[big / 2] = 2;
		n[big - 1] = 3;
		ok(n[0] == 1 && n[big / 2] == 2 && n[big - 1] == 3, "sparse pages of it are usable");
		munmap(n, big);
	} else {
		ok(0, "sparse pages of it are usable");
	}

	/* MAP_POPULATE */
	char *pp = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	unsigned char vec[16];
	ok(pp != MAP_FAILED && mincore(pp, 16 * PG, vec) == 0 && (vec[0] & 1) && (vec[15] & 1), "MAP_POPULATE pages are resident");
	munmap(pp, 16 * PG);

	/* MAP_GROWSDOWN: a fault just below the mapping grows it. */
	char *g = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	ok(g != MAP_FAILED, "MAP_GROWSDOWN mapping");
	check_eq(touch(g + PG, 1), 0, "MAP_GROWSDOWN mapping is usable");
	check_eq(touch(g - 16, 1), 0, "a write just below a MAP_GROWSDOWN mapping grows it");

	/* The main stack grows on demand (VM_GROWSDOWN stack VMA). */
	check_eq(deep_stack(2 << 20), 1 + (char)(2 << 20), "main stack grows by 2 MiB on demand");

	/* Errors. */
	errno = 0;
	ok(mmap((void *)0x1001, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED && errno == EINVAL,
	   "MAP_FIXED unaligned address EINVAL");
	errno = 0;
	ok(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "length 0 EINVAL");
	errno = 0;
	ok(mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "neither PRIVATE nor SHARED EINVAL");
	errno = 0;
	ok(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, -1, 0) == MAP_FAILED && errno == EBADF, "file mapping of fd -1 EBADF");
	errno = 0;
	ok(mmap(NULL, (size_t)1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == ENOMEM,
	   "2^62 bytes ENOMEM");
	errno = 0;
	ok(mmap((void *)0x7ffffffff000, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED &&
		   errno == ENOMEM,
	   "MAP_FIXED beyond the user address space ENOMEM");
	errno = 0;
	ok(mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0x1001) == MAP_FAILED && errno == EINVAL,
	   "unaligned offset EINVAL");
	check_err(munmap((void *)0x1001, PG), EINVAL, "munmap unaligned EINVAL");
	check_err(munmap(a, 0), EINVAL, "munmap length 0 EINVAL");
	check_err(munmap((void *)0xffff800000000000, PG), EINVAL, "munmap kernel address EINVAL");
	return tap_done();
}
