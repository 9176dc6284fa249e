/*
 * mmap_memfd.c - file-backed mappings, over memfd so no filesystem is
 * needed: MAP_SHARED coherent with read/write, MAP_PRIVATE copy-on-write
 * against the file, SIGBUS (BUS_ADRERR) past end of file and after a
 * truncate, sharing across fork, seals refusing writable shared maps, and
 * mremap growing a shared file mapping.
 *
 * Linux: mm/filemap.c (filemap_fault: VM_FAULT_SIGBUS past EOF),
 * mm/shmem.c, mm/memfd.c; mmap(2) "SIGBUS", memfd_create(2).
 */
#include "tap.h"
#include "abi.h"
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_WRITE 0x0008
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2
#endif
#define PG 4096

static sigjmp_buf jb;
static volatile int sig_seen, code_seen;
static volatile void *addr_seen;
static void on_fault(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	sig_seen = s;
	code_seen = si->si_code;
	addr_seen = si->si_addr;
	siglongjmp(jb, 1);
}

/* touch returns 0 or the signal the access raised. */
static int touch(volatile char *p, int write)
{
	sig_seen = 0;
	if (sigsetjmp(jb, 1))
		return sig_seen;
	if (write)
		*p = 1;
	else
		(void)*p;
	return 0;
}

int main(void)
{
	tap_init();
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	int fd = memfd_create("ringbox-test", MFD_ALLOW_SEALING);
	if (fd < 0) {
		skip("no memfd_create", "memfd-backed mappings");
		return tap_done();
	}
	check_ok(ftruncate(fd, 2 * PG), "ftruncate memfd to 2 pages");
	char *sh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ok(sh != MAP_FAILED, "MAP_SHARED of a memfd, 4 pages over a 2-page file");
	strcpy(sh, "through-map");
	char buf[32] = { 0 };
	pread(fd, buf, 11, 0);
	check_eq(strcmp(buf, "through-map"), 0, "a store through the shared map is seen by pread");
	pwrite(fd, "via-pwrite", 10, PG);
	check_eq(strncmp(sh + PG, "via-pwrite", 10), 0, "pwrite is seen through the shared map");

	/* Past end of file: SIGBUS, BUS_ADRERR, the address. */
	check_eq(touch(sh + 2 * PG + 5, 0), SIGBUS, "access past EOF inside the mapping: SIGBUS");
	ok(code_seen == BUS_ADRERR && addr_seen == sh + 2 * PG + 5, "SIGBUS si_code BUS_ADRERR with si_addr");
	check_ok(ftruncate(fd, 3 * PG), "grow the file");
	check_eq(touch(sh + 2 * PG + 5, 1), 0, "the page is accessible once the file covers it");
	check_ok(ftruncate(fd, PG), "shrink the file to one page");
	check_eq(touch(sh + PG, 0), SIGBUS, "access to a truncated page: SIGBUS");
	check_eq(sh[0], 't', "the page still inside the file keeps its data");
	ftruncate(fd, 2 * PG);
	check_eq(sh[PG], 0, "re-extended file reads zeroes where it was truncated");

	/* MAP_PRIVATE: copy on write against the file. */
	char *pv = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	pwrite(fd, "A", 1, PG);
	check_eq(pv[PG], 'A', "an unwritten private page sees the file's changes");
	pv[PG] = 'B';
	pread(fd, buf, 1, PG);
	check_eq(buf[0], 'A', "a private store does not reach the file");
	pwrite(fd, "C", 1, PG);
	check_eq(pv[PG], 'B', "after the private copy, file changes are not seen");

	/* Shared across fork. */
	pid_t p = tap_fork();
	if (p == 0) {
		sh[100] = 'k';
		_exit(pv[PG] == 'B' ? 0 : 1);
	}
	check_eq(tap_wait(p), 0, "the child inherits the private copy");
	check_eq(sh[100], 'k', "the child's store to the shared file map is seen");

	/* mremap grows a shared file mapping. */
	ftruncate(fd, 4 * PG);
	char *g = mremap(sh, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
	ok(g != MAP_FAILED && g[100] == 'k', "mremap grows a shared file mapping, data kept");
	check_eq(touch(g + 3 * PG, 1), 0, "grown part inside the file is usable");
	check_eq(touch(g + 5 * PG, 1), SIGBUS, "grown part beyond the file: SIGBUS");
	check_ok(msync(g, 4 * PG, MS_SYNC), "msync of a shared file mapping");

	/* Seals. */
	munmap(g, 8 * PG);
	munmap(pv, 2 * PG);
	check_ok(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), "F_ADD_SEALS F_SEAL_WRITE");
	errno = 0;
	ok(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM,
	   "writable MAP_SHARED of a write-sealed memfd EPERM");
	char *ro = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	ok(ro != MAP_FAILED && ro[100] == 'k', "read-only MAP_SHARED of it works");
	check_err(mprotect(ro, PG, PROT_READ | PROT_WRITE), EACCES, "mprotect it writable EACCES");
	check_err(pwrite(fd, "x", 1, 0), EPERM, "write to a write-sealed memfd EPERM");
	char *cow = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ok(cow != MAP_FAILED && (cow[0] = 'z') == 'z', "MAP_PRIVATE writable map of a sealed memfd is allowed");
	close(fd);
	check_eq(ro[100], 'k', "the mapping outlives the fd");
	return tap_done();
}
