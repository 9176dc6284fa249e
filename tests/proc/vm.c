/*
 * vm.c - changing mappings: mprotect (SEGV_ACCERR with si_addr), mremap
 * (grow in place, move, MREMAP_FIXED), madvise(MADV_DONTNEED) zeroing
 * private anonymous pages, brk, mincore, msync, RLIMIT_AS.
 *
 * Linux: mm/mprotect.c, mm/mremap.c, mm/madvise.c, mm/mmap.c (brk),
 * mm/mincore.c, mm/msync.c.
 */
#include "tap.h"
#include "abi.h"
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/resource.h>

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

static int touch(volatile char *p, int write)
{
	fault_addr = NULL;
	fault_code = 0;
	if (sigsetjmp(jb, 1))
		return SIGSEGV;
	if (write)
		*p = 1;
	else
		(void)*p;
	return 0;
}

/* fresh_hole returns an address that was just unmapped, so that no later
 * mapping can have reused it yet. */
static char *fresh_hole(void)
{
	char *h = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(h, PG);
	return h;
}

int main(void)
{
	tap_init();
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);

	/* mprotect */
	char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a[PG] = 'x';
	check_ok(mprotect(a + PG, PG, PROT_READ), "mprotect a page read-only");
	check_eq(touch(a + PG + 100, 0), 0, "read-only page is readable");
	check_eq(a[PG], 'x', "contents kept");
	check_eq(touch(a + PG + 100, 1), SIGSEGV, "write to a read-only page: SIGSEGV");
	ok(fault_addr == a + PG + 100 && fault_code == SEGV_ACCERR, "si_code SEGV_ACCERR with the faulting si_addr");
	check_eq(touch(a, 1), 0, "neighbouring page still writable");
	mprotect(a + PG, PG, PROT_NONE);
	check_eq(touch(a + PG, 0), SIGSEGV, "read of a PROT_NONE page: SIGSEGV");
	check_eq(fault_code, SEGV_ACCERR, "PROT_NONE fault is SEGV_ACCERR");
	check_ok(mprotect(a + PG, PG, PROT_READ | PROT_WRITE), "mprotect back to read-write");
	check_eq(touch(a + PG, 1), 0, "writable again");
	/* raw: musl rounds the address down itself */
	check_err(syscall(SYS_mprotect, a + 1, PG, PROT_READ), EINVAL, "mprotect unaligned EINVAL");
	check_err(mprotect(a, PG, 0x100), EINVAL, "mprotect unknown prot bit EINVAL");
	munmap(a + 3 * PG, PG);
	check_err(mprotect(a + 2 * PG, 2 * PG, PROT_READ), ENOMEM, "mprotect over an unmapped page ENOMEM");

	/* mremap */
	char *r = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(r + PG, PG); /* keep room to grow in place, probably */
	strcpy(r, "keep");
	char *r2 = mremap(r, PG, 4 * PG, MREMAP_MAYMOVE);
	ok(r2 != MAP_FAILED && strcmp(r2, "keep") == 0, "mremap grow keeps the contents");
	check_eq(touch(r2 + 3 * PG, 1), 0, "grown part is usable");
	char *r3 = mremap(r2, 4 * PG, PG, 0);
	ok(r3 == r2, "mremap shrink stays in place");
	check_eq(touch(r2 + 2 * PG, 0), SIGSEGV, "shrunk-away part faults");
	/* Force a move: block growth with a mapping right after. */
	char *blk = mmap(r3 + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	errno = 0;
	ok(mremap(r3, PG, 2 * PG, 0) == MAP_FAILED && errno == ENOMEM, "mremap grow without MAYMOVE, blocked: ENOMEM");
	char *m = mremap(r3, PG, 2 * PG, MREMAP_MAYMOVE);
	ok(m != MAP_FAILED && m != r3 && strcmp(m, "keep") == 0, "mremap MAYMOVE moves and keeps the contents");
	check_eq(touch(r3, 0), SIGSEGV, "old address unmapped after the move");
	/* MREMAP_FIXED to a chosen address. */
	char *target = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *fx = mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target + 4 * PG);
	ok(fx == target + 4 * PG && strcmp(fx, "keep") == 0, "MREMAP_FIXED moves to the chosen address");
	check_eq(touch(fx + PG, 1), 0, "MREMAP_FIXED target is read-write (prot moved with it)");
	errno = 0;
	ok(mremap(fx, PG, PG, MREMAP_FIXED, target) == MAP_FAILED && errno == EINVAL, "MREMAP_FIXED without MAYMOVE EINVAL");
	errno = 0;
	ok(mremap(fx + 1, PG, PG, 0) == MAP_FAILED && errno == EINVAL, "mremap unaligned EINVAL");
	errno = 0;
	ok(mremap(fresh_hole(), PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT, "mremap of an unmapped address EFAULT");
	munmap(target, 8 * PG);
	munmap(blk, PG);

	/* madvise(MADV_DONTNEED) zeroes private anonymous pages. */
	char *d = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(d, 7, 2 * PG);
	check_ok(madvise(d, PG, MADV_DONTNEED), "madvise MADV_DONTNEED");
	ok(d[0] == 0 && d[PG - 1] == 0 && d[PG] == 7, "MADV_DONTNEED zeroed the page, not its neighbour");
	char *ds = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ds[0] = 7;
	madvise(ds, PG, MADV_DONTNEED);
	check_eq(ds[0], 7, "MADV_DONTNEED keeps shared memory contents");
	check_err(madvise(d + 1, PG, MADV_DONTNEED), EINVAL, "madvise unaligned EINVAL");
	check_err(madvise(d, PG, 12345), EINVAL, "madvise unknown advice EINVAL");
	check_ok(madvise(d, PG, MADV_NORMAL), "madvise MADV_NORMAL");

	/* mincore */
	unsigned char vec[2] = { 0xff, 0xff };
	madvise(d, 2 * PG, MADV_DONTNEED);
	d[PG] = 1;
	check_ok(mincore(d, 2 * PG, vec), "mincore");
	ok((vec[0] & 1) == 0 && (vec[1] & 1) == 1, "mincore: dropped page not resident, touched one resident");
	check_err(mincore(d + 1, PG, vec), EINVAL, "mincore unaligned EINVAL");
	check_err(mincore(fresh_hole(), PG, vec), ENOMEM, "mincore unmapped ENOMEM");
	check_err(mincore(d, PG, (unsigned char *)8), EFAULT, "mincore bad vector EFAULT");

	/* msync */
	check_ok(msync(ds, PG, MS_SYNC), "msync MS_SYNC on shared anonymous memory");
	check_ok(msync(d, PG, MS_ASYNC), "msync MS_ASYNC");
	check_err(msync(d, PG, MS_SYNC | MS_ASYNC), EINVAL, "msync MS_SYNC|MS_ASYNC EINVAL");
	check_err(msync(d + 1, PG, MS_SYNC), EINVAL, "msync unaligned EINVAL");
	check_err(msync(fresh_hole(), PG, MS_SYNC), ENOMEM, "msync unmapped ENOMEM");

	/* brk */
	uintptr_t b0 = (uintptr_t)syscall(SYS_brk, 0);
	ok(b0 != 0, "brk(0) returns the current break");
	uintptr_t b1 = (uintptr_t)syscall(SYS_brk, b0 + 8 * PG);
	check_eq(b1 - b0, 8 * PG, "brk grows by 8 pages");
	check_eq(touch((char *)b0 + 8 * PG - 1, 1), 0, "new heap memory is writable");
	check_eq(((char *)b0)[0], 0, "new heap memory starts zeroed");
	uintptr_t b2 = (uintptr_t)syscall(SYS_brk, b0);
	check_eq(b2, b0, "brk shrinks back");
	check_eq(touch((char *)b0 + 4 * PG, 0), SIGSEGV, "released heap faults");
	uintptr_t b3 = (uintptr_t)syscall(SYS_brk, 1);
	check_eq(b3, b0, "brk below the data segment fails by returning the old break");

	/* PROT_EXEC: code written to a page runs once it is executable; a
	 * jump into a non-executable page faults with SEGV_ACCERR. */
	static const unsigned char ret42[] = { 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 }; /* mov $42,%eax; ret */
	unsigned char *code = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(code, ret42, sizeof ret42);
	check_ok(mprotect(code, PG, PROT_READ | PROT_EXEC), "mprotect PROT_READ|PROT_EXEC");
	int (*fn)(void) = (int (*)(void))code;
	check_eq(fn(), 42, "code in an executable anonymous page runs");
	mprotect(code, PG, PROT_READ | PROT_WRITE);
	fault_code = 0;
	int ran = -1;
	if (sigsetjmp(jb, 1) == 0)
		ran = fn();
	ok(ran == -1 && fault_addr == code && fault_code == SEGV_ACCERR, "executing a non-executable page: SIGSEGV SEGV_ACCERR at the entry");
	munmap(code, PG);

	/* MADV_WIPEONFORK and MADV_DONTFORK. */
	char *wipe = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dont = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wipe[0] = dont[0] = 9;
	check_ok(madvise(wipe, PG, MADV_WIPEONFORK), "madvise MADV_WIPEONFORK");
	check_ok(madvise(dont, PG, MADV_DONTFORK), "madvise MADV_DONTFORK");
	pid_t c = tap_fork();
	if (c == 0)
		_exit((wipe[0] == 0 ? 0 : 1) | (touch(dont, 0) == SIGSEGV ? 0 : 2));
	check_eq(tap_wait(c), 0, "child sees the WIPEONFORK page zeroed and no DONTFORK page");
	ok(wipe[0] == 9 && dont[0] == 9, "the parent keeps both");
	check_err(madvise(ds, PG, MADV_WIPEONFORK), EINVAL, "MADV_WIPEONFORK on a shared mapping EINVAL");

	/* RLIMIT_AS */
	pid_t p = tap_fork();
	if (p == 0) {
		struct rlimit rl = { 256 << 20, 256 << 20 };
		setrlimit(RLIMIT_AS, &rl);
		errno = 0;
		void *x = mmap(NULL, 512 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (x != MAP_FAILED || errno != ENOMEM)
			_exit(1);
		x = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (x == MAP_FAILED)
			_exit(2);
		uintptr_t cb = (uintptr_t)syscall(SYS_brk, 0);
		if ((uintptr_t)syscall(SYS_brk, cb + (512 << 20)) != cb)
			_exit(3);
		_exit(0);
	}
	check_eq(tap_wait(p), 0, "RLIMIT_AS: big mmap ENOMEM, small ok, brk refused");
	return tap_done();
}
